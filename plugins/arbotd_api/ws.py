"""The WebSocket at ``/api/v1/ws``.

Connections are rate limited per IP address (``ws_per_minute``/``ws_burst``); a refused
handshake gets the 429 error object. When auth is required, the first message must be
``{"type": "auth", "token": <JWT or API key>}`` (within 10 s), else the socket is closed
with code 1008 and the reason. The server answers ``{"type": "authenticated", "scope"}``.

Then ``{"type": "subscribe" | "unsubscribe", "channel": "prices" | "signals" | "trades",
"symbols": [...]}`` (``symbols`` optional, filtering that channel; answered with
``subscribed``/``unsubscribed``), and the server sends ``price_update``, ``signal`` and
``trade_update`` messages, each ``{"type", "data"}``. A malformed message is answered
``{"type": "error", "error": {...}}`` (the REST error object) and the socket stays open.

Prices are coalesced per (symbol, exchange) by the bus, so a slow client gets the latest
prices; a client more than ``[api] ws_max_pending`` signals and trades behind is closed
(1008, "subscriber too slow: ..."). At shutdown clients are closed with 1001.
"""

from __future__ import annotations

import collections
import logging
from decimal import Decimal
from typing import Any

import orjson
import trio
from quart import Quart, Response, websocket

from arbotd import Quote, Signal, SubscriptionClosed, Trade, iso_utc, split_symbol
from arbotd.figures import money, size, trade_figures
from arbotd_api.context import loads_json, state
from arbotd_api.errors import ApiError, error_body, error_response

__all__ = ["register_websocket"]

log = logging.getLogger(__name__)

AUTH_TIMEOUT = 10.0
CHANNELS = {"prices": "price", "signals": "signal", "trades": "trade"}
POLICY_VIOLATION = 1008
GOING_AWAY = 1001
_TRADES_REMEMBERED = 1000


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else iso_utc(timestamp)


def price_data(q: Quote) -> dict[str, Any]:
    return {"symbol": q.symbol, "exchange": q.exchange, "bid": q.bid, "ask": q.ask,
            "bid_size": q.bid_size, "ask_size": q.ask_size, "timestamp": q.received_ts}


def signal_data(s: Signal) -> dict[str, Any]:
    """A signal as ``GET /signals`` lists it: prices are the volume-weighted ones of
    ``quantity``, limits the worst book levels it takes."""
    return {"id": s.id, "symbol": s.symbol, "buy_exchange": s.buy_exchange,
            "sell_exchange": s.sell_exchange, "buy_price": s.buy_price,
            "sell_price": s.sell_price, "profit": money(s.profit, _currency(s.symbol)),
            "profit_percent": round(s.profit_percent, 6), "confidence": s.confidence,
            "executed": s.executed, "reject_reason": s.reject_reason,
            "timestamp": s.timestamp,
            "quantity": size(s.quantity), "buy_limit": s.buy_limit,
            "sell_limit": s.sell_limit, "threshold": s.threshold,
            "threshold_reason": s.threshold_reason,
            "buy_native_price": s.buy_native_price, "sell_native_price": s.sell_native_price,
            "buy_rate": s.buy_rate, "sell_rate": s.sell_rate}


def _currency(symbol: str) -> str:
    try:
        return split_symbol(symbol)[1]
    except ValueError:
        return ""


def trade_data(t: Trade) -> dict[str, Any]:
    """A trade as ``GET /trades`` lists it: the same figures (:mod:`arbotd.figures`),
    ``actual_profit`` ``None`` until the trade is final, and the signal's native prices
    and rates on a venue quoted in another currency."""
    figures = trade_figures(t)
    currency = figures.currency
    return {"id": t.id, "symbol": t.symbol, "buy_exchange": t.buy_exchange,
            "sell_exchange": t.sell_exchange, "quantity": size(figures.filled_quantity),
            "planned_quantity": size(figures.planned_quantity),
            "planned_profit": money(figures.planned_profit, currency),
            "actual_profit": money(figures.realized_profit, currency),
            "fees_paid": money(figures.fees, currency),
            "status": str(t.state), "started_at": _iso(t.started_at),
            "completed_at": _iso(t.completed_at),
            "buy_native_price": _money_or_none(t.buy_native_price),
            "sell_native_price": _money_or_none(t.sell_native_price),
            "buy_rate": _money_or_none(t.buy_rate), "sell_rate": _money_or_none(t.sell_rate)}


def _money_or_none(value: Decimal | None) -> float | None:
    """A native price or rate as GET /trades shows it (8 decimal places)."""
    return None if value is None else money(value)


MESSAGES = {"price": ("price_update", price_data), "signal": ("signal", signal_data),
            "trade": ("trade_update", trade_data)}


class _Connection:
    def __init__(self) -> None:
        self.send_lock = trio.Lock()
        self.filters: dict[str, frozenset[str] | None] = {}

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await websocket.send(orjson.dumps(message).decode())

    async def send_error(self, err: ApiError) -> None:
        await self.send({"type": "error", **error_body(err.code, err.message, err.details)})


async def _receive_json() -> dict[str, Any]:
    raw = await websocket.receive()
    message = loads_json(raw, "The message")
    if not isinstance(message, dict):
        raise ApiError("VALIDATION_ERROR", "Messages must be JSON objects")
    return message


async def _authenticate(conn: _Connection) -> str | None:
    """The scope of the first message's credentials, or ``None`` after closing."""
    with trio.move_on_after(AUTH_TIMEOUT):
        try:
            message = await _receive_json()
            if message.get("type") != "auth" or not isinstance(message.get("token"), str):
                raise ApiError("UNAUTHORIZED", "The first message must be "
                               '{"type": "auth", "token": ...}')
            current = state()
            principal = await current.credentials.check_token_or_key(
                message["token"], current.runtime.storage)
        except ApiError as err:
            await conn.send_error(err)
            await websocket.close(POLICY_VIOLATION, err.message[:120])
            return None
        return principal.scope
    await websocket.close(POLICY_VIOLATION, "authentication timed out")
    return None


def _apply(conn: _Connection, subscription: Any, message: dict[str, Any]) -> dict[str, Any]:
    kind = message.get("type")
    if kind == "auth":
        raise ApiError("VALIDATION_ERROR", "Already authenticated", {"field": "type"})
    if kind not in ("subscribe", "unsubscribe"):
        raise ApiError("VALIDATION_ERROR", "type must be subscribe, unsubscribe or auth",
                       {"field": "type", "provided": kind})
    channel = message.get("channel")
    if channel not in CHANNELS:
        raise ApiError("VALIDATION_ERROR", "Unknown channel",
                       {"field": "channel", "allowed": sorted(CHANNELS)})
    symbols = message.get("symbols")
    if symbols is not None and (
        not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols)
    ):
        raise ApiError("VALIDATION_ERROR", "symbols must be a list of strings",
                       {"field": "symbols"})
    event_kind = CHANNELS[channel]
    if kind == "subscribe":
        conn.filters[event_kind] = frozenset(symbols) if symbols else None
    else:
        conn.filters.pop(event_kind, None)
    subscription.set_kinds(conn.filters)
    if event_kind == "price":
        subscription.set_symbols(conn.filters.get("price"))
    reply: dict[str, Any] = {"type": f"{kind}d", "channel": channel}
    if kind == "subscribe":
        reply["symbols"] = symbols
    return reply


async def _read_commands(conn: _Connection, subscription: Any) -> None:
    while True:
        try:
            reply = _apply(conn, subscription, await _receive_json())
        except ApiError as err:
            await conn.send_error(err)
            continue
        await conn.send(reply)


async def _forward(conn: _Connection, subscription: Any) -> None:
    # A trade changes in ways its message does not show (an order's status): the same
    # message twice in a row tells nothing, so it is sent once. Bounded by the trades of
    # the last while.
    last_sent: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()
    async for event in subscription:
        symbols = conn.filters.get(event.kind)
        if symbols is not None and event.kind != "price" and \
                getattr(event.payload, "symbol", None) not in symbols:
            continue
        name, to_data = MESSAGES[event.kind]
        data = to_data(event.payload)
        if event.kind == "trade":
            if last_sent.get(data["id"]) == data:
                continue
            last_sent[data["id"]] = data
            last_sent.move_to_end(data["id"])
            if len(last_sent) > _TRADES_REMEMBERED:
                last_sent.popitem(last=False)
        await conn.send({"type": name, "data": data})


async def _close_at_shutdown(runtime: Any, subscription: Any) -> None:
    await runtime.shutdown_requested.wait()
    subscription.close("shutting down")


def register_websocket(app: Quart) -> None:
    @app.websocket("/api/v1/ws")
    async def stream() -> Response | None:
        current = state()
        decision = current.limiter.take(f"ip:{websocket.remote_addr}", "websocket")
        if not decision.allowed:
            err = ApiError("RATE_LIMIT_EXCEEDED", "Too many WebSocket connections",
                           {"limit": decision.limit, "retry_after": decision.retry_after,
                            "type": "websocket"}, headers=decision.headers())
            return error_response(err)
        await websocket.accept(headers=decision.headers())
        with current.metrics.websocket_clients.track_inprogress():
            await _serve_client(current)
        return None


async def _serve_client(current: Any) -> None:
    """One accepted client, until it leaves, falls too far behind, or the daemon stops."""
    conn = _Connection()
    if current.settings.auth_required:
        scope = await _authenticate(conn)
        if scope is None:
            return
        await conn.send({"type": "authenticated", "scope": scope})
    runtime = current.runtime
    subscription = runtime.bus.subscribe(kinds=(), max_pending=current.settings.ws_max_pending)
    with subscription:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_read_commands, conn, subscription)
            nursery.start_soon(_close_at_shutdown, runtime, subscription)
            try:
                await _forward(conn, subscription)
            except SubscriptionClosed as closed:
                code = GOING_AWAY if closed.reason == "shutting down" else POLICY_VIOLATION
                await websocket.close(code, closed.reason[:120])
            nursery.cancel_scope.cancel()
