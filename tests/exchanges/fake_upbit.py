"""A fake Upbit (KRW markets) on 127.0.0.1: the public WebSocket and the REST API, for the
Upbit plugin's tests.

One :class:`FakeUpbit` holds a book per market in KRW, its own KRW-USDT book among them.
The WebSocket answers the request array (``[{"ticket"}, {"type": "orderbook", "codes":
["KRW-BTC.5"]}, ...]``) with a full top-N snapshot of each market every push, in *binary*
frames as Upbit sends them (``text_frames`` for text), and answers the text ``PING`` with
``{"status":"UP"}`` (bitget-upbit-protocols.md 2.1). A request it cannot read is answered
``{"error": {"name": "WRONG_FORMAT"}}``.

REST (2.2, 2.3) verifies the JWT for real (the signature with the secret, the access key,
a nonce never seen before, the query hash of the query or of the JSON body's fields),
sends ``Remaining-Req`` on every answer and 429 past 8 orders a second (418 once blocked),
matches IOC limit orders, market sells by volume and market buys by KRW total against its
book, refuses an off-tick price (``invalid_price_bid``/``_ask``), a total under 5,000 KRW
and an identifier used before, and keeps balances, orders and trades.

Faults, set by the tests: ``drop_connections``, ``stalled`` (nothing, not even
``{"status":"UP"}``), ``quiet`` (no books, status answers still), ``inject`` (raw payloads:
garbage, an error message), ``silent`` (markets not pushed), ``text_frames``,
``rest_fault`` (``"429"``, ``"418"``, ``"500"``, ``"stall"``), ``stall_orders`` (the
order is made, then its answer comes too late), ``reject_next`` (an error name for the
next order), ``pending_queries`` (an order reads ``wait`` for that many queries).
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import ROUND_FLOOR, Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import attrs
import jwt
import orjson
import trio
from exchanges.fakehttp import Answer, Request, serve
from exchanges.fakews import FakeConnection, FakeWebSocketServer
from trio_websocket import WebSocketRequest, serve_websocket

WS_PATH = "/websocket/v1"
FEE = Decimal("0.0005")
MIN_TOTAL = Decimal(5000)
ORDER_LIMIT_PER_SECOND = 8
D = Decimal

# The KRW-ETH book of Upbit.Net's recorded orderbook transcript (its first level, as in
# bitget-upbit-protocols.md 2.1) under five levels per side.
DOC_ORDERBOOK = (
    '{"type":"orderbook","code":"KRW-ETH","timestamp":1746601573804,'
    '"total_ask_size":4.79158413,"total_bid_size":2.65609625,"orderbook_units":'
    '[{"ask_price":137002000,"bid_price":137001000,"ask_size":0.10623869,'
    '"bid_size":0.03656812}],"level":0,"stream_type":"REALTIME"}')


def krw_tick(price: Decimal) -> Decimal:
    """The KRW band ticks of 2.2 (at and above 100 KRW; finer below)."""
    for low, tick in ((1_000_000, 1000), (500_000, 500), (100_000, 100), (50_000, 50),
                      (10_000, 10), (5_000, 5), (100, 1), (10, D("0.01")), (0, D("0.001"))):
        if price >= low:
            return D(tick)
    return D("0.001")


@attrs.define
class Book:
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


def hash_of(pairs: list[tuple[str, str]]) -> str:
    return hashlib.sha512(unquote(urlencode(pairs)).encode()).hexdigest()


@attrs.define(eq=False)
class FakeUpbit(FakeWebSocketServer):
    access_key: str
    secret_key: str
    ws_url: str = ""
    rest_url: str = ""
    interval: float = 0.01
    text_frames: bool = False
    stalled: bool = False
    quiet: bool = False
    rest_fault: str | None = None
    stall_seconds: float = 5.0
    stall_orders: bool = False
    reject_next: str | None = None
    pending_queries: int = 0
    blocked_until: float = 0.0
    books: dict[str, Book] = attrs.field(factory=lambda: {
        "KRW-BTC": Book([(D("137001000"), D("0.5")), (D("137000000"), D("1"))],
                        [(D("137002000"), D("0.5")), (D("137010000"), D("1"))]),
        "KRW-USDT": Book([(D("1375"), D("100000"))], [(D("1376"), D("100000"))]),
    })
    balances: dict[str, list[Decimal]] = attrs.field(factory=lambda: {
        "KRW": [D("100000000"), D(0)], "BTC": [D("1"), D(0)], "USDT": [D(0), D(0)]})
    orders: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    # Every identifier an order request carried, duplicates and refusals included.
    arrivals: list[str] = attrs.field(factory=list)
    used_identifiers: set[str] = attrs.field(factory=set)
    nonces: set[str] = attrs.field(factory=set)
    order_listeners: list[Callable[[dict[str, Any], list[dict[str, Any]]], None]] = (
        attrs.field(factory=list))
    requests: list[Request] = attrs.field(factory=list)
    connections: list[FakeConnection] = attrs.field(factory=list)
    subscriptions: list[Any] = attrs.field(factory=list)
    pings: int = 0
    rate_limited: int = 0
    # Markets whose books are not pushed (a rate market gone quiet).
    silent: set[str] = attrs.field(factory=set)
    _levels: dict[FakeConnection, dict[str, int]] = attrs.field(factory=dict)
    _recent_orders: collections.deque[float] = attrs.field(factory=collections.deque)
    _pending: dict[str, int] = attrs.field(factory=dict)
    _ids: itertools.count = attrs.field(factory=itertools.count)

    def set_book(self, market: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
                 ) -> None:
        self.books[market] = Book([(D(p), D(s)) for p, s in bids],
                                  [(D(p), D(s)) for p, s in asks])

    # --- WebSocket ------------------------------------------------------------------------

    def push(self, market: str, levels: int = 1, timestamp: int | None = None) -> bytes:
        """A full top-``levels`` snapshot of ``market``'s book."""
        book = self.books[market]
        units = []
        for i in range(max(min(levels, max(len(book.bids), len(book.asks))), 1)):
            ask = book.asks[i] if i < len(book.asks) else (D(0), D(0))
            bid = book.bids[i] if i < len(book.bids) else (D(0), D(0))
            units.append({"ask_price": float(ask[0]), "bid_price": float(bid[0]),
                          "ask_size": float(ask[1]), "bid_size": float(bid[1])})
        return orjson.dumps({
            "type": "orderbook", "code": market,
            "timestamp": int(time.time() * 1000) if timestamp is None else timestamp,
            "total_ask_size": sum(u["ask_size"] for u in units),
            "total_bid_size": sum(u["bid_size"] for u in units),
            "orderbook_units": units, "level": 0, "stream_type": "REALTIME"})

    async def _send(self, ws: Any, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        await ws.send_message(payload.decode() if self.text_frames else payload)

    async def handle_ws(self, request: WebSocketRequest) -> None:
        if urlsplit(request.path).path != WS_PATH:
            await request.reject(404)
            return
        await self.run_connection(request, FakeConnection(), self._ws_answer, self._ws_stream)

    async def _ws_answer(self, ws: Any, connection: FakeConnection) -> None:
        while True:
            message = await ws.get_message()
            if message == "PING":
                self.pings += 1
                if not self.stalled:
                    await self._send(ws, b'{"status":"UP"}')
                continue
            try:
                request = orjson.loads(message)
                assert isinstance(request, list) and "ticket" in request[0]
                kinds = [item for item in request[1:] if "type" in item]
                assert kinds and all(k["type"] == "orderbook" and k["codes"] for k in kinds)
                levels = {}
                for kind in kinds:
                    for code in kind["codes"]:
                        market, _, n = code.partition(".")
                        assert market in self.books, market
                        levels[market] = int(n) if n in ("1", "5", "15", "30") else 30
            except (ValueError, KeyError, TypeError, IndexError, AssertionError):
                await self._send(ws, orjson.dumps({"error": {
                    "name": "WRONG_FORMAT", "message": "request is not valid"}}))
                continue
            self.subscriptions.append(request)
            self._levels[connection] = levels
            connection.subscribed = list(levels)

    async def _ws_stream(self, ws: Any, connection: FakeConnection) -> None:
        while True:
            await connection.send_injected(ws)
            if not self.stalled and not self.quiet:
                for market, levels in list(self._levels.get(connection, {}).items()):
                    if market in self.silent:
                        continue
                    await self._send(ws, self.push(market, levels))
            await trio.sleep(self.interval)

    # --- REST -----------------------------------------------------------------------------

    def _headers(self, group: str, remaining: int) -> dict[str, str]:
        return {"Remaining-Req": f"group={group}; min=1800; sec={max(remaining, 0)}"}

    async def respond(self, seen: Request) -> Answer:
        if self.rest_fault == "stall":
            await trio.sleep(self.stall_seconds)
        route = (seen.method, seen.path)
        group = "order" if route == ("POST", "/v1/orders") else "default"
        if self.rest_fault == "418" or time.monotonic() < self.blocked_until:
            return 418, self._headers(group, 0), error("too_many_requests_blocked",
                                                        "blocked")
        if self.rest_fault == "429":
            self.rate_limited += 1
            return 429, self._headers(group, 0), error("too_many_requests", "Too many requests")
        remaining = 29
        if group == "order":
            now = time.monotonic()
            while self._recent_orders and self._recent_orders[0] <= now - 1.0:
                self._recent_orders.popleft()
            self._recent_orders.append(now)
            remaining = ORDER_LIMIT_PER_SECOND - len(self._recent_orders)
            if remaining < 0:
                self.rate_limited += 1
                return 429, self._headers(group, 0), error("too_many_requests",
                                                            "Too many requests")
        headers = self._headers(group, remaining)
        if self.rest_fault == "500":
            return 500, headers, error("server_error", "maintenance")
        status, body = await self._route(seen, route)
        return status, headers, body

    async def _route(self, seen: Request, route: tuple[str, str]) -> tuple[int, Any]:
        query = dict(parse_qsl(seen.query))
        if route == ("GET", "/v1/market/all"):
            return 200, [{"market": m, "korean_name": m, "english_name": m,
                          "market_event": {"warning": False}} for m in self.books]
        if route == ("GET", "/v1/orderbook/instruments"):
            return 200, [{"market": m, "quote_currency": "KRW",
                          "tick_size": format(krw_tick(self.books[m].bids[0][0]), "f"),
                          "supported_levels": [0]}
                         for m in query.get("markets", "").split(",") if m in self.books]
        if route == ("GET", "/v1/orderbook"):
            return 200, [{**orjson.loads(self.push(m, 30)), "market": m}
                         for m in query.get("markets", "").split(",") if m in self.books]
        refused = self._authenticate(seen)
        if refused is not None:
            return refused
        if route == ("GET", "/v1/accounts"):
            return 200, [{"currency": c, "balance": format(b, "f"), "locked": format(lk, "f"),
                          "avg_buy_price": "0", "avg_buy_price_modified": False,
                          "unit_currency": "KRW"} for c, (b, lk) in self.balances.items()]
        if route == ("POST", "/v1/orders"):
            status, body = self.place(orjson.loads(seen.body))
            if self.stall_orders:
                await trio.sleep(self.stall_seconds)
            return status, body
        if route == ("GET", "/v1/order"):
            return self.order_detail(query.get("identifier", ""))
        if route == ("DELETE", "/v1/order"):
            order = self.orders.get(query.get("identifier", ""))
            if order is None:
                return error_answer(404, "order_not_found", "주문을 찾지 못했습니다.")
            if self._pending.pop(order["identifier"], 0):
                return 200, order
            return error_answer(400, "order_not_cancellable", "already done")
        return error_answer(404, "not_found", "unknown endpoint")

    def _authenticate(self, seen: Request) -> tuple[int, Any] | None:
        header = seen.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return error_answer(401, "no_authorization_token", "no token")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                claims = jwt.decode(header[7:], self.secret_key,
                                    algorithms=["HS512", "HS256"])
        except jwt.InvalidTokenError:
            seen.signature_valid = False
            return error_answer(401, "jwt_verification", "Failed to verify Jwt token.")
        seen.signature_valid = True
        if claims.get("access_key") != self.access_key:
            return error_answer(401, "invalid_access_key", "unknown key")
        nonce = claims.get("nonce")
        if not nonce or nonce in self.nonces:
            return error_answer(401, "nonce_used", "nonce used")
        self.nonces.add(nonce)
        if seen.method == "POST":
            body = orjson.loads(seen.body) if seen.body else {}
            pairs = [(k, str(v)) for k, v in body.items()]
        else:
            pairs = parse_qsl(seen.query)
        expected = hash_of(pairs) if pairs else None
        if claims.get("query_hash") != expected or (
                expected and claims.get("query_hash_alg") != "SHA512"):
            return error_answer(401, "invalid_query_payload", "query hash mismatch")
        return None

    # --- the matching engine --------------------------------------------------------------

    def place(self, body: dict[str, Any]) -> tuple[int, Any]:
        identifier = str(body.get("identifier", ""))
        self.arrivals.append(identifier)
        side = body.get("side")
        suffix = "bid" if side == "bid" else "ask"
        if identifier in self.used_identifiers:
            return error_answer(400, "validation_error", "identifier already used")
        if identifier:
            self.used_identifiers.add(identifier)
        if self.reject_next is not None:
            name, self.reject_next = self.reject_next, None
            return error_answer(400, name, "refused")
        market = body.get("market", "")
        if market not in self.books or side not in ("bid", "ask"):
            return error_answer(400, "validation_error", "market or side")
        ord_type = body.get("ord_type")
        price = D(body["price"]) if "price" in body else None
        volume = D(body["volume"]) if "volume" in body else None
        if ord_type == "limit":
            if price is None or volume is None or body.get("time_in_force") not in (
                    None, "ioc", "fok"):
                return error_answer(400, f"create_{suffix}_error", "limit needs price, volume")
            if price % krw_tick(price):
                return error_answer(400, f"invalid_price_{suffix}", "호가 단위 오류")
            if price * volume < MIN_TOTAL:
                return error_answer(400, f"under_min_total_{suffix}", "최소주문금액 미달")
        elif ord_type == "market":
            if side != "ask" or volume is None or price is not None:
                return error_answer(400, "create_ask_error", "market sells take volume only")
        elif ord_type == "price":
            if side != "bid" or price is None or volume is not None:
                return error_answer(400, "create_bid_error", "price buys take price only")
        else:
            return error_answer(400, "validation_error", f"ord_type {ord_type}")
        base = market.split("-")[1]
        executions = self._match(market, side, ord_type, price, volume)
        cost = sum((p * q for p, q in executions), D(0))
        if side == "bid" and cost * (1 + FEE) > self.balances["KRW"][0]:
            return error_answer(400, "insufficient_funds_bid", "잔고 부족")
        if side == "ask" and sum((q for _, q in executions), D(0)) > self.balances.get(
                base, [D(0)])[0]:
            return error_answer(400, "insufficient_funds_ask", "잔고 부족")
        order_uuid = str(uuid.uuid4())
        now = time.strftime("%Y-%m-%dT%H:%M:%S+09:00", time.localtime())
        trades = []
        paid_fee = D(0)
        for px, qty in executions:
            self._take(market, side, px, qty)
            funds = px * qty
            fee = funds * FEE
            paid_fee += fee
            sign = 1 if side == "bid" else -1
            self.balances.setdefault(base, [D(0), D(0)])[0] += sign * qty
            self.balances["KRW"][0] += -sign * funds - fee
            trades.append({"market": market, "uuid": str(uuid.uuid4()), "price": format(px, "f"),
                           "volume": format(qty, "f"), "funds": format(funds, "f"),
                           "trend": "up", "created_at": now, "side": side})
        executed = sum((q for _, q in executions), D(0))
        filled = volume is not None and executed == volume
        state = "done" if filled else "cancel"
        order = {
            "uuid": order_uuid, "side": side, "ord_type": ord_type,
            "price": body.get("price"), "state": state, "market": market, "created_at": now,
            "volume": body.get("volume"),
            "remaining_volume": format(volume - executed, "f") if volume is not None else None,
            "reserved_fee": "0", "remaining_fee": "0", "paid_fee": format(paid_fee, "f"),
            "locked": "0", "executed_volume": format(executed, "f"),
            "executed_funds": format(sum((p * q for p, q in executions), D(0)), "f"),
            "trades_count": len(trades), "time_in_force": body.get("time_in_force"),
            "identifier": identifier, "trades": trades}
        self.orders[identifier] = order
        for listener in self.order_listeners:
            listener(order, trades)
        if self.pending_queries:
            self._pending[identifier] = self.pending_queries
        answer = {k: v for k, v in order.items() if k != "trades"}
        return 201, {**answer, "state": "wait", "executed_volume": "0", "trades_count": 0}

    def _match(self, market: str, side: str, ord_type: str, price: Decimal | None,
               volume: Decimal | None) -> list[tuple[Decimal, Decimal]]:
        book = self.books[market]
        levels = book.asks if side == "bid" else book.bids
        executions = []
        remaining = volume if ord_type != "price" else price
        assert remaining is not None
        for px, available in levels:
            if ord_type == "limit" and (px > price if side == "bid" else px < price):  # type: ignore[operator]
                break
            if ord_type == "price":
                qty = min(available, (remaining / px).quantize(D("0.00000001"), ROUND_FLOOR))
                remaining -= qty * px
            else:
                qty = min(available, remaining)
                remaining -= qty
            if qty > 0:
                executions.append((px, qty))
            if remaining <= 0:
                break
        return executions

    def _take(self, market: str, side: str, px: Decimal, qty: Decimal) -> None:
        levels = self.books[market].asks if side == "bid" else self.books[market].bids
        for i, (level_px, size) in enumerate(levels):
            if level_px == px:
                if size - qty > 0:
                    levels[i] = (px, size - qty)
                else:
                    del levels[i]
                return

    def order_detail(self, identifier: str) -> tuple[int, Any]:
        order = self.orders.get(identifier)
        if order is None:
            return error_answer(404, "order_not_found", "주문을 찾지 못했습니다.")
        pending = self._pending.get(identifier, 0)
        if pending:
            self._pending[identifier] = pending - 1
            return 200, {**order, "state": "wait", "executed_volume": "0", "trades": [],
                         "trades_count": 0, "paid_fee": "0"}
        return 200, order


def error(name: str, message: str) -> dict[str, Any]:
    return {"error": {"name": name, "message": message}}


def error_answer(status: int, name: str, message: str) -> tuple[int, Any]:
    return status, error(name, message)


@asynccontextmanager
async def open_fake_upbit(access_key: str = "test-upbit-access",
                          secret_key: str = "test-upbit-secret", interval: float = 0.01
                          ) -> AsyncIterator[FakeUpbit]:
    """The fake serving its WebSocket and REST API on two loopback ports."""
    fake = FakeUpbit(access_key=access_key, secret_key=secret_key, interval=interval)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, fake.handle_ws, "127.0.0.1", 0, None)
        fake.ws_url = f"ws://127.0.0.1:{server.port}{WS_PATH}"
        fake.rest_url = await nursery.start(partial(serve, fake.respond, requests=fake.requests))
        yield fake
        nursery.cancel_scope.cancel()
