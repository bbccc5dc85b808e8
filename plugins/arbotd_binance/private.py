"""Binance's user data stream: the account's order events, pushed as they happen.

Facts (binance-spot-api-docs @a5e0bc3: ``web-socket-api.md``, ``user-data-stream.md``,
``CHANGELOG.md``):

* The listenKey streams (``POST /api/v3/userDataStream`` and
  ``wss://stream.binance.com/ws/<listenKey>``) were retired on 2026-02-20. The user data
  stream is subscribed on the WebSocket API (``wss://ws-api.binance.com:443/ws-api/v3``)
  with ``userDataStream.subscribe.signature``, which works with any key type (HMAC
  included) and needs no session logon: params ``apiKey``, ``timestamp``,
  ``recvWindow`` and ``signature``, the hex HMAC-SHA256 of every other param sorted by
  name as ``name=value`` pairs joined by ``&``. The answer is
  ``{"id", "status": 200, "result": {"subscriptionId": n}}``, or a status >= 400 with
  ``{"error": {"code", "msg"}}`` (-2015 bad key, -1022 bad signature, -1021 timestamp).
* Events come as ``{"subscriptionId": n, "event": {...}}``. ``executionReport`` carries
  the order: ``c`` client order id (``C`` the original one when ``x`` is ``CANCELED``),
  ``i`` order id, ``x`` execution type (``TRADE`` for a fill), ``X`` order status, ``z``
  cumulative filled quantity, and for a fill ``t`` trade id, ``L`` price, ``l``
  quantity, ``n`` commission in asset ``N``, ``T`` time; ``r`` a reject reason.
  ``serverShutdown`` and ``eventStreamTerminated`` mean: connect again.
* The server pings every 20 s (the WebSocket client answers); the ``ping`` method is the
  client's own heartbeat, answered ``{"id", "status": 200, "result": {}}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson

from arbotd.exchange import (
    OrderReport,
    OrderTracker,
    ReportedFill,
    Resync,
    SignedOrderStream,
    StreamRefused,
)
from arbotd.exchange.wsclient import WebSocketConnection
from arbotd_binance.orders import final_status
from arbotd_binance.rest import sign

__all__ = ["BinanceOrderStream", "execution_report", "subscribe_request"]

_SUBSCRIBE_ID = "arbotd-user-data"
_PING_ID = "arbotd-ping"
_HEARTBEAT = orjson.dumps({"id": _PING_ID, "method": "ping"}).decode()
# Events after which the subscription no longer delivers (user-data-stream.md).
_ENDED = {"serverShutdown", "eventStreamTerminated"}


def subscribe_request(api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
                      ) -> dict[str, Any]:
    """The signed ``userDataStream.subscribe.signature`` request."""
    params: dict[str, Any] = {"apiKey": api_key, "recvWindow": recv_window_ms,
                              "timestamp": timestamp_ms}
    payload = "&".join(f"{name}={params[name]}" for name in sorted(params))
    params["signature"] = sign(api_secret, payload)
    return {"id": _SUBSCRIBE_ID, "method": "userDataStream.subscribe.signature",
            "params": params}


def execution_report(event: dict[str, Any]) -> OrderReport:
    """An ``executionReport`` event -> what it says of the order."""
    execution = event["x"]
    cid = event.get("C") if execution == "CANCELED" and event.get("C") else event["c"]
    filled = Decimal(event["z"])
    fills: tuple[ReportedFill, ...] = ()
    if execution == "TRADE":
        fills = (ReportedFill(
            fill_id=str(event["t"]),
            price=Decimal(event["L"]),
            quantity=Decimal(event["l"]),
            fee=Decimal(event["n"]),
            fee_asset=str(event.get("N") or ""),
            timestamp=int(event["T"]) / 1000.0,
        ),)
    reason = event.get("r")
    return OrderReport(
        client_order_id=str(cid),
        exchange_order_id=str(event["i"]),
        status=final_status(str(event["X"]), filled),
        filled=filled,
        fills=fills,
        reason=str(reason) if reason and reason != "NONE" else None,
    )


class BinanceOrderStream(SignedOrderStream):
    """The account's user data stream on Binance's WebSocket API."""

    name = "binance"
    refused_advice = ("check the key in {0} and its secret in {1} (the key needs the "
                      "USER_STREAM permission, as for reading orders)")

    def __init__(self, tracker: OrderTracker, url: str, *, recv_window_ms: int = 5000,
                 **options: Any) -> None:
        super().__init__(tracker, url, **options)
        self.recv_window_ms = recv_window_ms
        self.subscription_id: int | None = None

    async def login(self, ws: WebSocketConnection) -> None:
        key, secret = self.secrets()
        answer = await self.request(
            ws, subscribe_request(key, secret, self.timestamp_ms(), self.recv_window_ms),
            lambda message: message.get("id") == _SUBSCRIBE_ID)
        if answer.get("status") != 200:
            error = answer.get("error") or {}
            raise StreamRefused(
                f"userDataStream.subscribe.signature answered {answer.get('status')}: "
                f"code {error.get('code')}: {error.get('msg')}")
        self.subscription_id = int(answer["result"]["subscriptionId"])

    def heartbeat(self) -> str:
        return _HEARTBEAT

    def parse(self, message: Any) -> Iterable[OrderReport]:
        event = message.get("event")
        if event is None:
            if message.get("id") == _PING_ID and message.get("status") != 200:
                self.problems.warning("ping", "the ping method answered %r", message)
            return ()
        kind = event["e"]
        if kind == "executionReport":
            return (execution_report(event),)
        if kind in _ENDED:
            raise Resync(f"Binance sent {kind}")
        return ()
