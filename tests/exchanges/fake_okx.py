"""A fake OKX v5 exchange on 127.0.0.1: the public WebSocket and the REST API, for the
OKX plugin's tests.

One :class:`FakeOkx` holds a book per instrument; the WebSocket pushes its best level on
``bbo-tbt``, its top 5 levels on ``books5`` and, on ``books``, a snapshot then the changes
since the last push (with ``seqId``/``prevSeqId`` and the checksum; an update with no
levels and ``prevSeqId == seqId`` when nothing changed), as exchange-protocols.md 3.1
describes them; it answers ``unsubscribe``. The REST matching engine fills IOC and market
orders against its levels, partly when they hold less than asked. REST verifies the real
signature, key, passphrase and timestamp (3.2), keeps balances, orders and fills, and
answers in OKX's shapes. The default book and the parsing tests come from real captured
traffic (``OKX.ws.1.0``: the ``books`` channel of May 2022, rebuilt level by level and
checked against its CRC32 checksums).

Faults, set by the tests: ``drop_connections``, ``stalled`` (nothing at all, not even
pongs), ``quiet`` (no data, pongs still answered), ``inject`` (raw payloads: garbage,
seqId going back, the 64008 notice), ``fault_next_push`` (the next ``books`` push of an
instrument with a wrong checksum, a seqId gap or a crossed level; ``books5``: crossed),
``checksums = False`` (0, as after OKX's 2026 deprecation), ``rest_fault`` (``"429"``,
``"50011"``, ``"500"``, ``"stall"``: every request), ``stall_orders`` (an order is
placed, then its answer never comes in time), ``reject_next`` (an sCode for the next
order), ``pending_queries`` (an order reads ``live`` for that many queries),
``fills_lag`` (the fills list is empty).

Every order change is told to ``order_listeners`` (the private orders channel of
``fake_okx_private``) as it happens, before the REST answer leaves.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import hmac
import itertools
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import ROUND_FLOOR, Decimal
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import orjson
import trio
from exchanges.fakebook import SentBook
from exchanges.fakehttp import Answer, Request, serve
from exchanges.fakews import FakeConnection, FakeWebSocketServer
from trio_websocket import WebSocketRequest, serve_websocket

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "data" / "recorded" / "OKX.ws.1.0"
WS_PATH = "/ws/v5/public"
# The public order book channels the fake serves (exchange-protocols.md 3.1).
BOOK_CHANNELS = ("bbo-tbt", "books5", "books")
BOOKS_LEVELS = 400
BOOK_FAULTS = ("checksum", "gap", "crossed")

# The bbo-tbt example of OKX's order book channel page (exchange-protocols.md 3.1), the
# book used when the recording is missing.
DOC_BBO = {"asks": [["8476.98", "415", "0", "13"]], "bids": [["8476.97", "256", "0", "12"]],
           "ts": "1597026383085", "seqId": 123456}

# Per-endpoint limits per 2 s (exchange-protocols.md 3.2).
LIMITS = {"/api/v5/public/time": 10, "/api/v5/public/instruments": 20,
          "/api/v5/trade/order": 60, "/api/v5/trade/cancel-order": 60,
          "/api/v5/trade/fills": 60, "/api/v5/account/balance": 10}
TAKER_FEE = Decimal("0.001")
CL_ORD_ID = re.compile(r"[A-Za-z0-9]{1,32}")


# --- recorded traffic ------------------------------------------------------------------------


def recorded_messages(path: Path = RECORDED) -> list[str]:
    """Every message the exchange sent in a recording, as received."""
    messages = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("wss://"):
                continue  # a connection opened, or a message the client sent
            messages.append(line.partition(": ")[2].rstrip("\n"))
    return messages


def okx_checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's (deprecated) book checksum: signed CRC32 of the first 25 levels, bid and
    ask alternating, each ``price:size``."""
    parts = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def recorded_tops(path: Path = RECORDED) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(instId, bbo-tbt data)`` for every ``books`` message of a recording: each book
    rebuilt from its snapshot and updates, checked against the message's checksum, and
    its best level per side written as the bbo-tbt channel pushes it."""
    books: dict[str, tuple[dict[str, list[str]], dict[str, list[str]]]] = {}
    for raw in recorded_messages(path):
        message = orjson.loads(raw)
        if message.get("arg", {}).get("channel") != "books" or "data" not in message:
            continue
        inst_id = message["arg"]["instId"]
        data = message["data"][0]
        if message["action"] == "snapshot":
            books[inst_id] = ({}, {})
        bids, asks = books[inst_id]
        for side, levels in ((bids, data["bids"]), (asks, data["asks"])):
            for level in levels:
                if Decimal(level[1]) == 0:
                    side.pop(level[0], None)
                else:
                    side[level[0]] = level
        best_bids = sorted(bids.values(), key=lambda lv: -Decimal(lv[0]))
        best_asks = sorted(asks.values(), key=lambda lv: Decimal(lv[0]))
        if okx_checksum(best_bids, best_asks) != data["checksum"]:
            raise AssertionError(f"rebuilt {inst_id} book does not match its checksum")
        yield inst_id, {"asks": best_asks[:1], "bids": best_bids[:1], "ts": data["ts"]}


def _default_book() -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """Five levels per side of BTC-USDT from the recording (the doc example without it)."""
    if RECORDED.exists():
        for raw in recorded_messages():
            message = orjson.loads(raw)
            if message.get("action") == "snapshot" and message["arg"]["instId"] == "BTC-USDT":
                data = message["data"][0]
                return ([(Decimal(p), Decimal(s)) for p, s, *_ in data["bids"][:5]],
                        [(Decimal(p), Decimal(s)) for p, s, *_ in data["asks"][:5]])
    return ([(Decimal("8476.97"), Decimal("256"))], [(Decimal("8476.98"), Decimal("415"))])


# --- the exchange --------------------------------------------------------------------------------


@attrs.define
class Book:
    """Levels as (price, size): bids best (highest) first, asks best (lowest) first."""

    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


def instrument(inst_id: str, tick: str = "0.1", lot: str = "0.00000001", min_sz: str = "0.00001",
               state: str = "live") -> dict[str, Any]:
    """A spot instrument in the shape of ``/api/v5/public/instruments`` (nautilus_trader's
    recorded ``http_get_instruments_spot.json``)."""
    base, quote = inst_id.split("-")
    return {"alias": "", "auctionEndTime": "", "baseCcy": base, "category": "1", "ctMult": "",
            "ctType": "", "ctVal": "", "ctValCcy": "", "expTime": "", "instFamily": "",
            "instId": inst_id, "instType": "SPOT", "lever": "", "listTime": "1733454000000",
            "lotSz": lot, "maxIcebergSz": "9999999999.0000000000000000", "maxLmtAmt": "20000000",
            "maxLmtSz": "9999999999", "maxMktAmt": "1000000", "maxMktSz": "1000000",
            "maxStopSz": "1000000", "maxTriggerSz": "9999999999.0000000000000000",
            "maxTwapSz": "9999999999.0000000000000000", "minSz": min_sz, "optType": "",
            "quoteCcy": quote, "ruleType": "normal", "settleCcy": "", "state": state, "stk": "",
            "tickSz": tick, "uly": ""}


@attrs.define(eq=False)
class FakeOkx(FakeWebSocketServer):
    api_key: str
    api_secret: str
    passphrase: str
    ws_url: str = ""
    rest_url: str = ""
    interval: float = 0.01
    # WebSocket faults
    stalled: bool = False
    quiet: bool = False
    # REST faults
    rest_fault: str | None = None
    stall_seconds: float = 5.0
    stall_orders: bool = False
    reject_next: tuple[str, str] | None = None
    pending_queries: int = 0
    fills_lag: bool = False
    skew_ms: int = 0
    limit_window: float = 2.0
    rate_limited: int = 0
    books: dict[str, Book] = attrs.field(factory=dict)
    instruments: dict[str, dict[str, Any]] = attrs.field(factory=lambda: {
        i["instId"]: i for i in (instrument("BTC-USDT"), instrument("ETH-USDT", "0.01", "0.000001",
                                                                   "0.0001"),
                                 instrument("XRP-USDT", "0.0001", "0.000001", "1", "suspend"))})
    balances: dict[str, list[Decimal]] = attrs.field(factory=lambda: {
        "BTC": [Decimal("2"), Decimal("0")], "USDT": [Decimal("100000"), Decimal("0")]})
    orders: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    # Every order request that arrived, by client order id, duplicates included.
    arrivals: list[str] = attrs.field(factory=list)
    fills: list[dict[str, Any]] = attrs.field(factory=list)
    # Told of every order change: the order and its new fills.
    order_listeners: list[Callable[[dict[str, Any], list[dict[str, Any]]], None]] = attrs.field(
        factory=list)
    requests: list[Request] = attrs.field(factory=list)
    connections: list[FakeConnection] = attrs.field(factory=list)
    subscribe_requests: list[Any] = attrs.field(factory=list)
    unsubscribe_requests: list[Any] = attrs.field(factory=list)
    pings: int = 0
    # books channel checksums (False: 0, as OKX sends since deprecating them).
    checksums: bool = True
    # instId -> faults for its next books/books5 pushes, one per push (BOOK_FAULTS).
    book_faults: dict[str, list[str]] = attrs.field(factory=dict)
    # Per connection, its books/books5 subscriptions: instId -> (channel, what it was sent).
    _depth: dict[FakeConnection, dict[str, tuple[str, SentBook]]] = attrs.field(factory=dict)
    _books_seq: dict[tuple[FakeConnection, str], int] = attrs.field(factory=dict)
    _seq: itertools.count = attrs.field(factory=lambda: itertools.count(363996337))
    _ord_ids: itertools.count = attrs.field(factory=lambda: itertools.count(680800019749904384))
    _trade_ids: itertools.count = attrs.field(factory=lambda: itertools.count(744876980))
    _recent: dict[str, collections.deque[float]] = attrs.field(factory=dict)
    _pending: dict[str, int] = attrs.field(factory=dict)

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.skew_ms

    def book(self, inst_id: str) -> Book:
        if inst_id not in self.books:
            bids, asks = _default_book()
            self.books[inst_id] = Book(bids, asks)
        return self.books[inst_id]

    def set_book(self, inst_id: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
                 ) -> None:
        self.books[inst_id] = Book([(Decimal(p), Decimal(s)) for p, s in bids],
                                   [(Decimal(p), Decimal(s)) for p, s in asks])

    # --- WebSocket -----------------------------------------------------------------------

    def bbo(self, inst_id: str, seq_id: int | None = None, prev_seq_id: int | None = None,
            bid: str | None = None, ask: str | None = None) -> bytes:
        """A bbo-tbt push of ``inst_id``'s book (prices overridable), with the next seqId
        unless one is given."""
        book = self.book(inst_id)
        (bid_px, bid_sz), (ask_px, ask_sz) = book.bids[0], book.asks[0]
        data: dict[str, Any] = {
            "asks": [[ask or text(ask_px), text(ask_sz), "0", "2"]],
            "bids": [[bid or text(bid_px), text(bid_sz), "0", "3"]],
            "ts": str(self.now_ms()),
            "seqId": next(self._seq) if seq_id is None else seq_id,
        }
        if prev_seq_id is not None:
            data["prevSeqId"] = prev_seq_id
        return orjson.dumps({"arg": {"channel": "bbo-tbt", "instId": inst_id}, "data": [data]})

    async def handle_ws(self, request: WebSocketRequest) -> None:
        if urlsplit(request.path).path != WS_PATH:
            await request.reject(404)
            return
        await self.run_connection(request, FakeConnection(), self._ws_answer,
                                  self._ws_stream)

    async def _ws_answer(self, ws: Any, connection: FakeConnection) -> None:
        conn_id = f"{id(connection) & 0xFFFFFFFF:08x}"
        while True:
            message = await ws.get_message()
            if message == "ping":
                self.pings += 1
                if not self.stalled:
                    await ws.send_message("pong")
                continue
            try:
                request = orjson.loads(message)
                assert request["op"] in ("subscribe", "unsubscribe")
                args = request["args"]
                assert all(a["channel"] in BOOK_CHANNELS and a["instId"] for a in args)
            except (ValueError, KeyError, TypeError, AssertionError):
                await ws.send_message(orjson.dumps({
                    "event": "error", "code": "60012",
                    "msg": f"Invalid request: {message[:100]}", "connId": conn_id}).decode())
                continue
            if request["op"] == "unsubscribe":
                self.unsubscribe_requests.append(request)
            else:
                self.subscribe_requests.append(request)
            for arg in args:
                self._subscription(connection, request["op"], arg)
                await ws.send_message(orjson.dumps(
                    {"event": request["op"], "arg": arg, "connId": conn_id}).decode())

    def _subscription(self, connection: FakeConnection, op: str, arg: dict[str, str]) -> None:
        inst_id, channel = arg["instId"], arg["channel"]
        if channel == "bbo-tbt":
            if op == "subscribe":
                connection.subscribed.append(inst_id)
            elif inst_id in connection.subscribed:
                connection.subscribed.remove(inst_id)
            return
        depth = self._depth.setdefault(connection, {})
        if op == "subscribe":
            depth[inst_id] = (channel, SentBook())
            self._books_seq.pop((connection, inst_id), None)  # a snapshot comes first
        else:
            depth.pop(inst_id, None)

    async def _ws_stream(self, ws: Any, connection: FakeConnection) -> None:
        while True:
            await connection.send_injected(ws)
            if not self.stalled and not self.quiet:
                for inst_id in list(connection.subscribed):
                    await ws.send_message(self.bbo(inst_id).decode())
                for inst_id, (channel, sent) in list(self._depth.get(connection, {}).items()):
                    await ws.send_message(self.depth_push(connection, inst_id, channel, sent))
            await trio.sleep(self.interval)

    # --- WebSocket: depth channels ------------------------------------------------------

    def fault_next_push(self, inst_id: str, fault: str) -> None:
        """Spoil the next books/books5 push of ``inst_id`` on each connection that gets
        it: ``checksum`` (off by one), ``gap`` (its prevSeqId skips ahead), ``crossed`` (a
        bid at the best ask, the checksum matching it)."""
        assert fault in BOOK_FAULTS, fault
        self.book_faults.setdefault(inst_id, []).append(fault)

    def depth_push(self, connection: FakeConnection, inst_id: str, channel: str,
                   sent: SentBook) -> str:
        """The next push of ``channel`` for ``inst_id`` on ``connection``: a books5
        snapshot, or the books snapshot, then the changes since (``sent``)."""
        book = self.book(inst_id)
        faults = self.book_faults.get(inst_id)
        fault = faults.pop(0) if faults else None
        levels = BOOKS_LEVELS if channel == "books" else 5
        bids, asks = book.bids[:levels], book.asks[:levels]
        data: dict[str, Any] = {"ts": str(self.now_ms())}
        if channel == "books5":
            bids = [*bids, (asks[0][0], Decimal(1))] if fault == "crossed" else bids
            data |= {"asks": _wire(asks), "bids": _wire(sorted(bids, reverse=True)),
                     "instId": inst_id, "seqId": next(self._seq)}
            return orjson.dumps({"arg": {"channel": channel, "instId": inst_id},
                                 "data": [data]}).decode()
        key = (connection, inst_id)
        last = self._books_seq.get(key)
        message: dict[str, Any] = {"arg": {"channel": channel, "instId": inst_id}}
        if last is None:
            sent.snapshot(bids, asks)
            message["action"] = "snapshot"
            seq, prev = next(self._seq), -1
            data |= {"asks": _wire(asks), "bids": _wire(bids)}
        else:
            message["action"] = "update"
            bid_changes, ask_changes = sent.changes(bids, asks)
            if fault == "crossed":
                best_ask = min(sent.asks)
                bid_changes.insert(0, (best_ask, Decimal(1)))
                sent.add("bids", best_ask, Decimal(1))
            changed = bool(bid_changes or ask_changes)
            # Nothing changed: the documented keep-alive update, prevSeqId == seqId.
            seq = next(self._seq) if changed else last
            prev = last + 7 if fault == "gap" else last
            data |= {"asks": _wire(ask_changes), "bids": _wire(bid_changes)}
        self._books_seq[key] = seq
        top_bids, top_asks = sent.top(25)
        checksum = okx_checksum(_wire(top_bids), _wire(top_asks)) if self.checksums else 0
        if fault == "checksum":
            checksum = checksum + 1 if checksum < (1 << 31) - 1 else -(1 << 31)
        data |= {"checksum": checksum, "prevSeqId": prev, "seqId": seq}
        message["data"] = [data]
        return orjson.dumps(message).decode()

    # --- REST: the API ------------------------------------------------------------------

    async def respond(self, seen: Request) -> Answer:
        """:meth:`answer` in the shape :func:`exchanges.fakehttp.serve` takes: the OKX
        answers here carry no headers of their own."""
        status, answer = await self.answer(seen)
        return status, {}, answer

    async def answer(self, seen: Request) -> tuple[int, dict[str, Any]]:
        if self.rest_fault == "stall":
            await trio.sleep(self.stall_seconds)
        if self.rest_fault == "429" or self._over_limit(seen.path):
            return 429, {"msg": "Too Many Requests", "code": "50011"}
        if self.rest_fault == "50011":
            return 200, {"code": "50011", "data": [], "msg": "Rate limit reached. Please refer "
                         "to API documentation and throttle requests accordingly"}
        if self.rest_fault == "500":
            return 500, {"code": "50001", "data": [], "msg": "Service temporarily unavailable"}
        query = dict(parse_qsl(seen.query))
        route = (seen.method, seen.path)
        if route == ("GET", "/api/v5/public/time"):
            return ok([{"ts": str(self.now_ms())}])
        if route == ("GET", "/api/v5/public/instruments"):
            if query.get("instType") != "SPOT":
                return error(400, "51000", "Parameter instType error")
            return ok(list(self.instruments.values()))
        if seen.path.startswith(("/api/v5/account/", "/api/v5/trade/")):
            refused = self._authenticate(seen)
            if refused is not None:
                return refused
        if route == ("GET", "/api/v5/account/balance"):
            return ok([{"details": [
                {"ccy": ccy, "availBal": text(avail), "frozenBal": text(frozen),
                 "cashBal": text(avail + frozen), "eq": text(avail + frozen)}
                for ccy, (avail, frozen) in self.balances.items()], "totalEq": "0"}])
        if route == ("POST", "/api/v5/trade/order"):
            status, answer = self.place(orjson.loads(seen.body))
            if self.stall_orders:
                await trio.sleep(self.stall_seconds)
            return status, answer
        if route == ("GET", "/api/v5/trade/order"):
            return self.order_detail(query)
        if route == ("POST", "/api/v5/trade/cancel-order"):
            return self.cancel(orjson.loads(seen.body))
        if route == ("GET", "/api/v5/trade/fills"):
            rows = [] if self.fills_lag else [
                f for f in self.fills
                if f["instId"] == query.get("instId") and f["ordId"] == query.get("ordId")]
            return ok(rows)
        return error(404, "50000", "Unknown endpoint")

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
        if headers.get("ok-access-key") != self.api_key:
            return error(401, "50111", "Invalid OK-ACCESS-KEY")
        if headers.get("ok-access-passphrase") != self.passphrase:
            return error(401, "50105", "Invalid OK-ACCESS-PASSPHRASE")
        timestamp = headers.get("ok-access-timestamp", "")
        try:
            moment = dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=dt.UTC)
        except ValueError:
            return error(401, "50112", "Invalid OK-ACCESS-TIMESTAMP")
        if abs(moment.timestamp() * 1000 - self.now_ms()) > 30_000:
            return error(401, "50102", "Timestamp request expired")
        payload = f"{timestamp}{seen.method}{seen.target}{seen.body}"
        expected = base64.b64encode(hmac.new(
            self.api_secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()
        seen.signature_valid = hmac.compare_digest(expected, headers.get("ok-access-sign", ""))
        if not seen.signature_valid:
            return error(401, "50113", "Invalid Sign")
        return None

    # --- the matching engine --------------------------------------------------------------

    def place(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        cl_ord_id = body.get("clOrdId", "")
        self.arrivals.append(cl_ord_id)

        def refuse(s_code: str, s_msg: str) -> tuple[int, dict[str, Any]]:
            return 200, {"code": "1", "msg": "All operations failed", "data": [
                {"ordId": "", "clOrdId": cl_ord_id, "tag": "", "ts": str(self.now_ms()),
                 "sCode": s_code, "sMsg": s_msg}], "inTime": "", "outTime": ""}

        if self.reject_next is not None:
            s_code, s_msg = self.reject_next
            self.reject_next = None
            return refuse(s_code, s_msg)
        inst = self.instruments.get(body.get("instId", ""))
        if inst is None:
            return refuse("51001", "Instrument ID does not exist")
        if body.get("tdMode") != "cash" or body.get("side") not in ("buy", "sell"):
            return refuse("51000", "Parameter tdMode error")
        if not CL_ORD_ID.fullmatch(cl_ord_id):
            return refuse("51000", "Parameter clOrdId error")
        if cl_ord_id in self.orders:
            return refuse("51016", "Duplicated clOrdId")
        if inst["state"] != "live":
            return refuse("51001", "Instrument ID does not exist")
        ord_type = body.get("ordType")
        side = body["side"]
        size = Decimal(body["sz"])
        market_quote = ord_type == "market" and side == "buy" and body.get("tgtCcy") != "base_ccy"
        if ord_type == "ioc":
            price = Decimal(body["px"])
            if price % Decimal(inst["tickSz"]):
                return refuse("51000", "Parameter px error")
        elif ord_type == "market":
            price = None
        else:
            return refuse("51000", "Parameter ordType error")
        if not market_quote and (size % Decimal(inst["lotSz"]) or size < Decimal(inst["minSz"])):
            return refuse("51000", "Parameter sz error")
        base, quote = inst["baseCcy"], inst["quoteCcy"]
        ord_id = str(next(self._ord_ids))
        executions = self._match(inst, side, size, price, market_quote)
        if not self._affordable(side, base, quote, executions):
            return refuse("51008", f"Order failed. Insufficient {base if side == 'sell' else quote}"
                          " balance")
        now = str(self.now_ms())
        fee_total = Decimal(0)
        for px, qty in executions:
            self._take(inst["instId"], side, px, qty)
            fee_ccy = base if side == "buy" else quote
            fee = (qty if side == "buy" else px * qty) * TAKER_FEE
            fee_total += fee
            if side == "buy":
                self._credit(quote, -px * qty)
                self._credit(base, qty - fee)
            else:
                self._credit(base, -qty)
                self._credit(quote, px * qty - fee)
            self.fills.append({
                "instType": "SPOT", "instId": inst["instId"], "tradeId": str(next(self._trade_ids)),
                "ordId": ord_id, "clOrdId": cl_ord_id, "billId": str(next(self._trade_ids)),
                "tag": "", "fillPx": text(px), "fillSz": text(qty), "side": side,
                "posSide": "net", "execType": "T", "feeCcy": fee_ccy, "fee": text(-fee),
                "ts": now, "fillTime": now})
        filled = sum((q for _, q in executions), Decimal(0))
        notional = sum((p * q for p, q in executions), Decimal(0))
        # A market buy sized in quote currency is done once it spent what the book had.
        done = filled > 0 if market_quote else filled == size
        state = "filled" if done else "canceled"
        last = executions[-1] if executions else ("", "")
        self.orders[cl_ord_id] = {
            "instType": "SPOT", "instId": inst["instId"], "ordId": ord_id, "clOrdId": cl_ord_id,
            "px": body.get("px", ""), "sz": body["sz"], "ordType": ord_type, "side": side,
            "tdMode": "cash", "tgtCcy": body.get("tgtCcy", ""), "state": state,
            "accFillSz": text(filled), "avgPx": text(notional / filled) if filled else "",
            "fillPx": text(last[0]), "fillSz": text(last[1]),
            "fee": text(-fee_total), "feeCcy": base if side == "buy" else quote,
            "cTime": now, "uTime": now}
        self._announce(self.orders[cl_ord_id],
                       [f for f in self.fills if f["clOrdId"] == cl_ord_id])
        if self.pending_queries:
            self._pending[cl_ord_id] = self.pending_queries
        return 200, {"code": "0", "msg": "", "data": [
            {"clOrdId": cl_ord_id, "ordId": ord_id, "tag": "", "ts": now, "sCode": "0",
             "sMsg": "Order placed"}], "inTime": now + "000", "outTime": now + "000"}

    def _match(self, inst: dict[str, Any], side: str, size: Decimal, price: Decimal | None,
               market_quote: bool) -> list[tuple[Decimal, Decimal]]:
        book = self.book(inst["instId"])
        levels = book.asks if side == "buy" else book.bids
        lot = Decimal(inst["lotSz"])
        executions = []
        remaining = size
        for px, available in levels:
            if price is not None and (px > price if side == "buy" else px < price):
                break
            if market_quote:  # sz is quote currency to spend
                qty = min(available, (remaining / px / lot).to_integral_value(ROUND_FLOOR) * lot)
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

    def _take(self, inst_id: str, side: str, px: Decimal, qty: Decimal) -> None:
        book = self.book(inst_id)
        levels = book.asks if side == "buy" else book.bids
        for i, (level_px, size) in enumerate(levels):
            if level_px == px:
                if size - qty > 0:
                    levels[i] = (px, size - qty)
                else:
                    del levels[i]
                return

    def _credit(self, ccy: str, amount: Decimal) -> None:
        self.balances.setdefault(ccy, [Decimal(0), Decimal(0)])[0] += amount

    def order_detail(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(query.get("clOrdId", ""))
        if order is None:
            order = next((o for o in self.orders.values() if o["ordId"] == query.get("ordId")),
                         None)
        if order is None or order["instId"] != query.get("instId"):
            return error(200, "51603", "Order does not exist")
        pending = self._pending.get(order["clOrdId"], 0)
        if pending:
            self._pending[order["clOrdId"]] = pending - 1
            return ok([{**order, "state": "live", "accFillSz": "0", "avgPx": "", "fee": "0"}])
        return ok([order])

    def cancel(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(body.get("clOrdId", ""))
        cl_ord_id = body.get("clOrdId", "")
        if order is not None and self._pending.pop(cl_ord_id, 0):
            return ok([{"clOrdId": cl_ord_id, "ordId": order["ordId"], "sCode": "0", "sMsg": ""}])
        return 200, {"code": "1", "msg": "All operations failed", "data": [
            {"clOrdId": cl_ord_id, "ordId": order["ordId"] if order else "", "sCode": "51400",
             "sMsg": "Order cancellation failed as the order has been filled, canceled or does "
                     "not exist"}]}

    def _announce(self, order: dict[str, Any], fills: list[dict[str, Any]]) -> None:
        for listener in self.order_listeners:
            listener(order, fills)


def _wire(levels: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
    """Levels as OKX writes them: ``[price, size, "0", orders]``."""
    return [[text(p), text(s), "0", "1" if s else "0"] for p, s in levels]


def text(value: Decimal | str) -> str:
    """A decimal as OKX writes it: plain notation, never an exponent."""
    return format(value, "f") if isinstance(value, Decimal) else value


def ok(data: list[Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"code": "0", "msg": "", "data": data}


def error(status: int, code: str, msg: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "msg": msg, "data": []}


@asynccontextmanager
async def open_fake_okx(
    api_key: str = "test-okx-key", api_secret: str = "test-okx-secret",
    passphrase: str = "test-okx-passphrase", interval: float = 0.01,
) -> AsyncIterator[FakeOkx]:
    """The fake exchange serving its WebSocket and REST API on two loopback ports."""
    fake = FakeOkx(api_key=api_key, api_secret=api_secret, passphrase=passphrase,
                   interval=interval)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, fake.handle_ws, "127.0.0.1", 0, None)
        fake.ws_url = f"ws://127.0.0.1:{server.port}{WS_PATH}"
        fake.rest_url = await nursery.start(partial(serve, fake.respond, requests=fake.requests))
        yield fake
        nursery.cancel_scope.cancel()
