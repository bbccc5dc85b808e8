"""A fake Bitget v2 spot exchange on 127.0.0.1: the public WebSocket and the REST API, for
the Bitget plugin's tests.

One :class:`FakeBitget` holds a book per symbol; the WebSocket pushes its best level on
``books1``, its top 15 on ``books15`` and, on ``books``, a snapshot then the changes since
the last push, each with ``seq`` (growing by varying steps, as nothing promises it grows
by one) and the CRC32 checksum of its top 25 levels, as bitget-upbit-protocols.md 1.1
describes them. It answers ``ping`` with ``pong`` and ``unsubscribe``. The REST matching
engine fills IOC limit and market orders against its levels, partly when they hold less
than asked, keeps to the price band of each symbol, refuses a ``clientOid`` it holds
(43118) and a placement received after its ``requestTime + receiveWindow`` (40078).
REST verifies the real signature, key, passphrase and timestamp (1.2), keeps balances,
orders and fills, and answers in Bitget's shapes.

Faults, set by the tests: ``drop_connections``, ``stalled`` (nothing at all, not even
pongs), ``quiet`` (no data, pongs still answered), ``no_pong`` (data, but pings go
unanswered), ``inject`` (raw payloads: garbage, error events), ``fault_next_push`` (the
next ``books`` push of a symbol with a wrong checksum, a lost update (``gap``: its seq
moves on, its changes never come), a ``seq`` going back, or a crossed level;
``books15``: crossed), ``rest_fault`` (``"429"``, ``"45001"``, ``"500"``, ``"stall"``,
``"garbage"``: every request), ``stall_orders`` (an order is placed, then its answer never comes in
time), ``reject_next`` (a code for the next order), ``pending_queries`` (an order reads
``live`` for that many queries), ``fills_lag`` (the fills list is empty).

Every order change is told to ``order_listeners`` (the private orders channel of
``fake_bitget_private``) as it happens, before the REST answer leaves.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import itertools
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import ROUND_FLOOR, Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import orjson
import trio
from exchanges.fakebook import SentBook
from exchanges.fakehttp import Answer, Request, serve
from exchanges.fakews import FakeConnection, FakeWebSocketServer
from trio_websocket import WebSocketRequest, serve_websocket

WS_PATH = "/v2/ws/public"
BOOK_CHANNELS = ("books1", "books5", "books15", "books")
BOOKS_LEVELS = 150
BOOK_FAULTS = ("checksum", "gap", "backwards", "crossed")

# Per-endpoint limits per second (bitget-upbit-protocols.md 1.2).
LIMITS = {"/api/v2/public/time": 20, "/api/v2/spot/public/symbols": 20,
          "/api/v2/spot/market/tickers": 20, "/api/v2/spot/trade/place-order": 10,
          "/api/v2/spot/trade/cancel-order": 10, "/api/v2/spot/trade/orderInfo": 20,
          "/api/v2/spot/trade/fills": 10, "/api/v2/spot/account/assets": 10}
TAKER_FEE = Decimal("0.001")
CLIENT_OID = re.compile(r"[0-9A-Za-z+_#-]{1,49}")


def bitget_checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """Bitget's book checksum: signed CRC32 of the first 25 levels, bid and ask
    alternating, each ``price:size`` as written."""
    parts = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


@attrs.define
class Book:
    """Levels as (price, size): bids best (highest) first, asks best (lowest) first."""

    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


def symbol_info(symbol: str, base: str, quote: str, price_precision: int = 2,
                quantity_precision: int = 6, min_usdt: str = "1",
                status: str = "online") -> dict[str, Any]:
    """A spot symbol in the shape of ``/api/v2/spot/public/symbols`` (the doc's BTCUSDT
    example, bitget-upbit-protocols.md 1.2)."""
    return {"symbol": symbol, "baseCoin": base, "quoteCoin": quote, "minTradeAmount": "0",
            "maxTradeAmount": "900000000000000000000", "takerFeeRate": "0.002",
            "makerFeeRate": "0.002", "pricePrecision": str(price_precision),
            "quantityPrecision": str(quantity_precision), "quotePrecision": "8",
            "status": status, "minTradeUSDT": min_usdt, "buyLimitPriceRatio": "0.05",
            "sellLimitPriceRatio": "0.05", "areaSymbol": "no", "orderQuantity": "200",
            "openTime": "1532454360000", "offTime": ""}


@attrs.define(eq=False)
class FakeBitget(FakeWebSocketServer):
    api_key: str
    api_secret: str
    passphrase: str
    ws_url: str = ""
    rest_url: str = ""
    interval: float = 0.01
    # WebSocket faults
    stalled: bool = False
    quiet: bool = False
    no_pong: bool = False
    # REST faults
    rest_fault: str | None = None
    stall_seconds: float = 5.0
    stall_orders: bool = False
    reject_next: tuple[str, str] | None = None
    pending_queries: int = 0
    fills_lag: bool = False
    skew_ms: int = 0
    limit_window: float = 1.0
    rate_limited: int = 0
    books: dict[str, Book] = attrs.field(factory=dict)
    symbols: dict[str, dict[str, Any]] = attrs.field(factory=lambda: {
        s["symbol"]: s for s in (symbol_info("BTCUSDT", "BTC", "USDT"),
                                 symbol_info("ETHUSDT", "ETH", "USDT", 2, 4, "5"),
                                 symbol_info("XRPUSDT", "XRP", "USDT", 4, 2, "1", "halt"))})
    balances: dict[str, list[Decimal]] = attrs.field(factory=lambda: {
        "BTC": [Decimal("2"), Decimal("0")], "USDT": [Decimal("100000"), Decimal("0")]})
    # clientOid -> the order record (orderInfo's shape).
    orders: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    # The body of every placement that arrived, duplicates and refusals included.
    arrivals: list[dict[str, Any]] = attrs.field(factory=list)
    fills: list[dict[str, Any]] = attrs.field(factory=list)
    order_listeners: list[Callable[[dict[str, Any], list[dict[str, Any]]], None]] = attrs.field(
        factory=list)
    requests: list[Request] = attrs.field(factory=list)
    connections: list[FakeConnection] = attrs.field(factory=list)
    subscribe_requests: list[Any] = attrs.field(factory=list)
    unsubscribe_requests: list[Any] = attrs.field(factory=list)
    pings: int = 0
    book_faults: dict[str, list[str]] = attrs.field(factory=dict)
    # Per connection, its depth subscriptions: instId -> (channel, what it was sent).
    _depth: dict[FakeConnection, dict[str, tuple[str, SentBook]]] = attrs.field(factory=dict)
    _books_seq: dict[tuple[FakeConnection, str], int] = attrs.field(factory=dict)
    _seq: itertools.count = attrs.field(factory=lambda: itertools.count(20_000_000, 3))
    _order_ids: itertools.count = attrs.field(factory=lambda: itertools.count(1_100_000_000))
    _trade_ids: itertools.count = attrs.field(factory=lambda: itertools.count(1_200_000_000))
    _recent: dict[str, collections.deque[float]] = attrs.field(factory=dict)
    _pending: dict[str, int] = attrs.field(factory=dict)

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.skew_ms

    def book(self, symbol: str) -> Book:
        if symbol not in self.books:
            self.books[symbol] = Book([(Decimal("26274.8"), Decimal("0.0009")),
                                       (Decimal("26274.7"), Decimal("0.0027"))],
                                      [(Decimal("26274.9"), Decimal("0.0009")),
                                       (Decimal("26275.0"), Decimal("0.05"))])
        return self.books[symbol]

    def set_book(self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
                 ) -> None:
        self.books[symbol] = Book([(Decimal(p), Decimal(s)) for p, s in bids],
                                  [(Decimal(p), Decimal(s)) for p, s in asks])

    # --- WebSocket -----------------------------------------------------------------------

    def bbo(self, symbol: str, seq: int | None = None, bid: str | None = None,
            ask: str | None = None) -> bytes:
        """A books1 push of ``symbol``'s book (prices overridable), with the next seq
        unless one is given."""
        book = self.book(symbol)
        (bid_px, bid_sz), (ask_px, ask_sz) = book.bids[0], book.asks[0]
        now = self.now_ms()
        data = {"asks": [[ask or text(ask_px), text(ask_sz)]],
                "bids": [[bid or text(bid_px), text(bid_sz)]], "checksum": 0,
                "seq": next(self._seq) if seq is None else seq, "ts": str(now)}
        return orjson.dumps({"action": "snapshot", "arg": _arg("books1", symbol),
                             "data": [data], "ts": now})

    async def handle_ws(self, request: WebSocketRequest) -> None:
        if urlsplit(request.path).path != WS_PATH:
            await request.reject(404)
            return
        await self.run_connection(request, FakeConnection(), self._ws_answer, self._ws_stream)

    async def _ws_answer(self, ws: Any, connection: FakeConnection) -> None:
        while True:
            message = await ws.get_message()
            if message == "ping":
                self.pings += 1
                if not self.stalled and not self.no_pong:
                    await ws.send_message("pong")
                continue
            try:
                request = orjson.loads(message)
                assert request["op"] in ("subscribe", "unsubscribe")
                args = request["args"]
                assert len(message) <= 4096
                assert all(a["instType"] == "SPOT" and a["instId"] for a in args)
            except (ValueError, KeyError, TypeError, AssertionError):
                await ws.send_message(orjson.dumps({
                    "event": "error", "code": 30016, "msg": "Param error"}).decode())
                continue
            if request["op"] == "unsubscribe":
                self.unsubscribe_requests.append(request)
            else:
                self.subscribe_requests.append(request)
            for arg in args:
                if arg["channel"] not in BOOK_CHANNELS:
                    await ws.send_message(orjson.dumps({
                        "event": "error", "arg": arg, "code": 30001,
                        "msg": f"instType:SPOT,channel:{arg['channel']},instId:"
                               f"{arg['instId']} doesn't exist"}).decode())
                    continue
                self._subscription(connection, request["op"], arg)
                await ws.send_message(orjson.dumps({"event": request["op"], "arg": arg})
                                      .decode())

    def _subscription(self, connection: FakeConnection, op: str, arg: dict[str, str]) -> None:
        symbol, channel = arg["instId"], arg["channel"]
        if channel == "books1":
            if op == "subscribe":
                connection.subscribed.append(symbol)
            elif symbol in connection.subscribed:
                connection.subscribed.remove(symbol)
            return
        depth = self._depth.setdefault(connection, {})
        if op == "subscribe":
            depth[symbol] = (channel, SentBook())
            self._books_seq.pop((connection, symbol), None)  # a snapshot comes first
        else:
            depth.pop(symbol, None)

    async def _ws_stream(self, ws: Any, connection: FakeConnection) -> None:
        while True:
            await connection.send_injected(ws)
            if not self.stalled and not self.quiet:
                for symbol in list(connection.subscribed):
                    await ws.send_message(self.bbo(symbol).decode())
                for symbol, (channel, sent) in list(self._depth.get(connection, {}).items()):
                    await ws.send_message(self.depth_push(connection, symbol, channel, sent))
            await trio.sleep(self.interval)

    # --- WebSocket: depth channels ------------------------------------------------------

    def fault_next_push(self, symbol: str, fault: str) -> None:
        """Spoil the next books/books15 push of ``symbol`` on each connection that gets
        it: ``checksum`` (off by one), ``gap`` (an update lost on the way: its seq is
        spent, its changes never sent), ``backwards`` (its seq below the last),
        ``crossed`` (a bid at the best ask, the checksum matching it)."""
        assert fault in BOOK_FAULTS, fault
        self.book_faults.setdefault(symbol, []).append(fault)

    def depth_push(self, connection: FakeConnection, symbol: str, channel: str,
                   sent: SentBook) -> str:
        """The next push of ``channel`` for ``symbol`` on ``connection``: a books5/15
        snapshot, or the books snapshot, then the changes since (``sent``)."""
        book = self.book(symbol)
        faults = self.book_faults.get(symbol)
        fault = faults.pop(0) if faults else None
        now = self.now_ms()
        levels = {"books5": 5, "books15": 15}.get(channel, BOOKS_LEVELS)
        bids, asks = book.bids[:levels], book.asks[:levels]
        message: dict[str, Any] = {"arg": _arg(channel, symbol), "ts": now}
        if channel != "books":
            bids = [*bids, (asks[0][0], Decimal(1))] if fault == "crossed" else bids
            message |= {"action": "snapshot", "data": [{
                "asks": _wire(asks), "bids": _wire(sorted(bids, reverse=True)),
                "checksum": 0, "seq": next(self._seq), "ts": str(now)}]}
            return orjson.dumps(message).decode()
        key = (connection, symbol)
        last = self._books_seq.get(key)
        if last is None:
            sent.snapshot(bids, asks)
            message["action"] = "snapshot"
            seq = next(self._seq)
            bid_wire, ask_wire = _wire(bids), _wire(asks)
        else:
            message["action"] = "update"
            bid_changes, ask_changes = sent.changes(bids, asks)
            if fault == "crossed":
                best_ask = min(sent.asks)
                bid_changes.insert(0, (best_ask, Decimal(1)))
                sent.add("bids", best_ask, Decimal(1))
            if fault == "gap":
                # This update is lost on the way; the next one carries only its own.
                sent.add("bids", max(sent.bids) + 1, Decimal("0.5"))
                bid_changes, ask_changes = [], []
            changed = bool(bid_changes or ask_changes) or fault == "gap"
            seq = next(self._seq) if changed else last
            if fault == "backwards":
                seq = last - 5
            bid_wire, ask_wire = _wire(bid_changes), _wire(ask_changes)
        self._books_seq[key] = max(seq, last or 0)
        top_bids, top_asks = sent.top(25)
        checksum = bitget_checksum(_wire(top_bids), _wire(top_asks))
        if fault == "checksum":
            checksum = checksum + 1 if checksum < (1 << 31) - 1 else -(1 << 31)
        message["data"] = [{"asks": ask_wire, "bids": bid_wire, "checksum": checksum,
                            "seq": seq, "ts": str(now)}]
        return orjson.dumps(message).decode()

    # --- REST: the API ------------------------------------------------------------------

    async def respond(self, seen: Request) -> Answer:
        if self.rest_fault == "garbage":  # a proxy's page, not Bitget's JSON
            return 200, {}, b"<html>gateway</html>"
        status, answer = await self.answer(seen)
        return status, {}, answer

    async def answer(self, seen: Request) -> tuple[int, dict[str, Any]]:
        if self.rest_fault == "stall":
            await trio.sleep(self.stall_seconds)
        if self.rest_fault == "429" or self._over_limit(seen.path):
            return error(429, "429", "Too Many Requests")
        if self.rest_fault == "45001":
            return error(400, "45001", "Unknown error")
        if self.rest_fault == "500":
            return 500, {"code": "50000", "msg": "Internal error", "data": None}
        query = dict(parse_qsl(seen.query))
        route = (seen.method, seen.path)
        if route == ("GET", "/api/v2/public/time"):
            return ok({"serverTime": str(self.now_ms())})
        if route == ("GET", "/api/v2/spot/public/symbols"):
            wanted = query.get("symbol")
            return ok([s for s in self.symbols.values() if wanted in (None, s["symbol"])])
        if route == ("GET", "/api/v2/spot/market/tickers"):
            return ok([self._ticker(s) for s in self.symbols
                       if query.get("symbol") in (None, s)])
        if seen.path.startswith(("/api/v2/spot/account/", "/api/v2/spot/trade/")):
            refused = self._authenticate(seen)
            if refused is not None:
                return refused
        if route == ("GET", "/api/v2/spot/account/assets"):
            return ok([{"coin": coin, "available": text(avail), "frozen": text(frozen),
                        "locked": "0", "limitAvailable": "0", "uTime": str(self.now_ms())}
                       for coin, (avail, frozen) in self.balances.items()])
        if route == ("POST", "/api/v2/spot/trade/place-order"):
            status, answer = self.place(orjson.loads(seen.body))
            if self.stall_orders:
                await trio.sleep(self.stall_seconds)
            return status, answer
        if route == ("GET", "/api/v2/spot/trade/orderInfo"):
            return self.order_info(query)
        if route == ("POST", "/api/v2/spot/trade/cancel-order"):
            return self.cancel(orjson.loads(seen.body))
        if route == ("GET", "/api/v2/spot/trade/fills"):
            rows = [] if self.fills_lag else [
                f for f in self.fills
                if f["symbol"] == query.get("symbol") and f["orderId"] == query.get("orderId")]
            return ok(rows)
        return error(404, "40404", "Request URL NOT FOUND")

    def _ticker(self, symbol: str) -> dict[str, Any]:
        book = self.book(symbol)
        (bid, bid_sz), (ask, ask_sz) = book.bids[0], book.asks[0]
        return {"symbol": symbol, "bidPr": text(bid), "askPr": text(ask), "bidSz": text(bid_sz),
                "askSz": text(ask_sz), "lastPr": text(bid), "ts": str(self.now_ms())}

    def _over_limit(self, path: str) -> bool:
        """Whether a request passes the endpoint's limit over the last ``limit_window``
        seconds (a sliding window: stricter than any fixed one)."""
        now = time.monotonic()
        recent = self._recent.setdefault(path, collections.deque())
        while recent and recent[0] <= now - self.limit_window:
            recent.popleft()
        recent.append(now)
        if len(recent) > LIMITS.get(path, 10):
            self.rate_limited += 1
            return True
        return False

    def _authenticate(self, seen: Request) -> tuple[int, dict[str, Any]] | None:
        headers = seen.headers
        if headers.get("access-key") != self.api_key:
            return error(400, "40006", "Invalid ACCESS_KEY")
        if headers.get("access-passphrase") != self.passphrase:
            return error(400, "40012", "apikey/password is incorrect")
        timestamp = headers.get("access-timestamp", "")
        if not timestamp.isdigit():
            return error(400, "40005", "Invalid ACCESS_TIMESTAMP")
        if abs(int(timestamp) - self.now_ms()) > 30_000:
            return error(400, "40008", "Request timestamp expired")
        payload = f"{timestamp}{seen.method}{seen.target}{seen.body}"
        expected = base64.b64encode(hmac.new(
            self.api_secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()
        seen.signature_valid = hmac.compare_digest(expected, headers.get("access-sign", ""))
        if not seen.signature_valid:
            return error(400, "40009", "sign signature error")
        return None

    # --- the matching engine --------------------------------------------------------------

    def place(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.arrivals.append(body)
        oid = body.get("clientOid", "")
        if self.reject_next is not None:
            code, msg = self.reject_next
            self.reject_next = None
            return error(400, code, msg)
        info = self.symbols.get(body.get("symbol", ""))
        if info is None:
            return error(400, "40102", "Symbol does not exist")
        if "requestTime" in body:
            window = int(body.get("receiveWindow") or 5000)
            if window > 60_000:
                return error(400, "40079", "receiveWindow is over 60 s")
            if int(body["requestTime"]) + window < self.now_ms():
                return error(400, "40078", "Request outside receiveWindow")
        if body.get("side") not in ("buy", "sell") or not CLIENT_OID.fullmatch(oid):
            return error(400, "40017", "Parameter verification failed")
        if oid in self.orders:
            return error(400, "43118", "Duplicate clientOid")
        if info["status"] != "online":
            return error(400, "43119", "Trading is not open")
        order_type, side, force = body.get("orderType"), body["side"], body.get("force")
        size = Decimal(body["size"])
        tick = Decimal(1).scaleb(-int(info["pricePrecision"]))
        step = Decimal(1).scaleb(-int(info["quantityPrecision"]))
        market_quote = order_type == "market" and side == "buy"  # sized in the quote coin
        book = self.book(info["symbol"])
        if order_type == "limit":
            if force != "ioc":
                return error(400, "40017", "the fake fills IOC limit orders only")
            price = Decimal(body["price"])
            if price % tick:
                return error(400, "45035", "Price step is wrong")
            band = Decimal(info["buyLimitPriceRatio"])
            if side == "buy" and price > book.asks[0][0] * (1 + band):
                return error(400, "43008", "The buy price cannot be higher than the band")
        elif order_type == "market":
            price = None
        else:
            return error(400, "40017", "orderType must be limit or market")
        if not market_quote and size % step:
            return error(400, "43125", "Quantity has too many decimals")
        base, quote = info["baseCoin"], info["quoteCoin"]
        executions = self._match(book, side, size, price, market_quote, step)
        notional = sum((p * q for p, q in executions), Decimal(0))
        if price is not None and size * price < Decimal(info["minTradeUSDT"]):
            return error(400, "45110", f"less than the minimum order quantity "
                                       f"{info['minTradeUSDT']} USDT")
        if not self._affordable(side, base, quote, executions):
            return error(400, "43012", "Insufficient balance")
        order_id = str(next(self._order_ids))
        now = str(self.now_ms())
        fee_total = Decimal(0)
        for px, qty in executions:
            self._take(book, side, px, qty)
            fee_coin = base if side == "buy" else quote
            fee = (qty if side == "buy" else px * qty) * TAKER_FEE
            fee_total += fee
            if side == "buy":
                self._credit(quote, -px * qty)
                self._credit(base, qty - fee)
            else:
                self._credit(base, -qty)
                self._credit(quote, px * qty - fee)
            self.fills.append({
                "userId": "1234567890", "symbol": info["symbol"], "orderId": order_id,
                "tradeId": str(next(self._trade_ids)), "orderType": order_type, "side": side,
                "priceAvg": text(px), "size": text(qty), "amount": text(px * qty),
                "feeDetail": {"deduction": "no", "feeCoin": fee_coin, "totalDeductionFee": "",
                              "totalFee": text(-fee)},
                "tradeScope": "taker", "cTime": now, "uTime": now, "clientOid": oid})
        filled = sum((q for _, q in executions), Decimal(0))
        done = filled > 0 if market_quote else filled == size
        self.orders[oid] = {
            "userId": "1234567890", "symbol": info["symbol"], "orderId": order_id,
            "clientOid": oid, "price": body.get("price", "0"), "size": body["size"],
            "orderType": order_type, "side": side, "force": force or "gtc",
            "status": "filled" if done else "cancelled",
            "priceAvg": text(notional / filled) if filled else "0",
            "baseVolume": text(filled), "quoteVolume": text(notional),
            "enterPointSource": "API",
            "feeDetail": orjson.dumps({"newFees": {
                "c": 0, "d": 0, "deduction": False, "r": float(-fee_total),
                "t": float(-fee_total), "totalDeductionFee": 0}}).decode(),
            "orderSource": order_type, "cancelReason": "" if done else "normal_cancel",
            "cTime": now, "uTime": now}
        self._announce(self.orders[oid], [f for f in self.fills if f["clientOid"] == oid])
        if self.pending_queries:
            self._pending[oid] = self.pending_queries
        return ok({"orderId": order_id, "clientOid": oid})

    def _match(self, book: Book, side: str, size: Decimal, price: Decimal | None,
               market_quote: bool, step: Decimal) -> list[tuple[Decimal, Decimal]]:
        levels = book.asks if side == "buy" else book.bids
        executions = []
        remaining = size
        for px, available in levels:
            if price is not None and (px > price if side == "buy" else px < price):
                break
            if market_quote:  # size is quote coin to spend
                qty = min(available, (remaining / px / step).to_integral_value(ROUND_FLOOR) * step)
                remaining -= qty * px
            else:
                qty = min(available, remaining)
                remaining -= qty
            if qty > 0:
                executions.append((px, qty))
            if remaining <= 0 or (market_quote and qty < available):
                break
        return executions

    def _affordable(self, side: str, base: str, quote: str,
                    executions: list[tuple[Decimal, Decimal]]) -> bool:
        if side == "buy":
            need = sum((p * q for p, q in executions), Decimal(0))
            return self.balances.get(quote, [Decimal(0)])[0] >= need
        return self.balances.get(base, [Decimal(0)])[0] >= sum(q for _, q in executions)

    @staticmethod
    def _take(book: Book, side: str, px: Decimal, qty: Decimal) -> None:
        levels = book.asks if side == "buy" else book.bids
        for i, (level_px, size) in enumerate(levels):
            if level_px == px:
                if size - qty > 0:
                    levels[i] = (px, size - qty)
                else:
                    del levels[i]
                return

    def _credit(self, coin: str, amount: Decimal) -> None:
        self.balances.setdefault(coin, [Decimal(0), Decimal(0)])[0] += amount

    def order_info(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(query.get("clientOid", ""))
        if order is None and query.get("orderId"):
            order = next((o for o in self.orders.values() if o["orderId"] == query["orderId"]),
                         None)
        if order is None:
            return error(400, "43001", "The order does not exist")
        pending = self._pending.get(order["clientOid"], 0)
        if pending:
            self._pending[order["clientOid"]] = pending - 1
            return ok([{**order, "status": "live", "baseVolume": "0", "priceAvg": "0"}])
        return ok([order])

    def cancel(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        oid = body.get("clientOid", "")
        order = self.orders.get(oid)
        if order is None:
            return error(400, "43001", "The order does not exist")
        if self._pending.pop(oid, 0):
            return ok({"orderId": order["orderId"], "clientOid": oid})
        return error(400, "45031", "Order is already finalized")

    def _announce(self, order: dict[str, Any], fills: list[dict[str, Any]]) -> None:
        for listener in self.order_listeners:
            listener(order, fills)


def _arg(channel: str, symbol: str) -> dict[str, str]:
    return {"instType": "SPOT", "channel": channel, "instId": symbol}


def _wire(levels: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
    """Levels as Bitget writes them: ``[price, size]`` strings."""
    return [[text(p), text(s)] for p, s in levels]


def text(value: Decimal | str) -> str:
    """A decimal as Bitget writes it: plain notation, never an exponent."""
    return format(value, "f") if isinstance(value, Decimal) else value


def ok(data: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"code": "00000", "msg": "success", "requestTime": int(time.time() * 1000),
                 "data": data}


def error(status: int, code: str, msg: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "msg": msg, "requestTime": int(time.time() * 1000),
                    "data": None}


@asynccontextmanager
async def open_fake_bitget(
    api_key: str = "test-bitget-key", api_secret: str = "test-bitget-secret",
    passphrase: str = "test-bitget-passphrase", interval: float = 0.01,
) -> AsyncIterator[FakeBitget]:
    """The fake exchange serving its WebSocket and REST API on two loopback ports."""
    fake = FakeBitget(api_key=api_key, api_secret=api_secret, passphrase=passphrase,
                      interval=interval)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, fake.handle_ws, "127.0.0.1", 0, None)
        fake.ws_url = f"ws://127.0.0.1:{server.port}{WS_PATH}"
        fake.rest_url = await nursery.start(partial(serve, fake.respond, requests=fake.requests))
        yield fake
        nursery.cancel_scope.cancel()
