"""A fake Bybit v5 spot exchange on 127.0.0.1: the public WebSocket and the REST API, for
the Bybit plugin's tests.

One :class:`FakeBybit` serves both, sharing one order book per symbol:

* ``ws://.../v5/public/spot`` answers ``subscribe`` (refusing more than 10 args, and topics
  of unknown symbols, as Bybit does), ``unsubscribe`` and ``ping`` in Bybit's shapes, and
  pushes every ``interval`` seconds a level-1 ``orderbook.1.<SYMBOL>`` snapshot of each
  subscribed book, and on ``orderbook.50.<SYMBOL>`` a snapshot of its top 50 levels then
  deltas of what changed since (``u`` counting up by one), built like the documented
  examples (exchange-protocols.md 2.1).
* REST answers ``/v5/market/time``, ``/v5/market/instruments-info`` (the documented spot
  shape) and the signed ``/v5/account/wallet-balance``, ``/v5/order/create``,
  ``/v5/order/cancel``, ``/v5/order/realtime``, ``/v5/order/history`` and
  ``/v5/execution/list``. It checks the API key, the timestamp against its clock (shifted
  by ``skew_ms``) and ``X-BAPI-RECV-WINDOW``, and the signature over the exact query
  string or body received, and counts each endpoint's per-second limit into
  ``X-Bapi-Limit*`` headers (``retCode 10006`` past it). IOC limit and market orders are
  matched against the book level by level (a book smaller than the order fills it
  partly), with fees in Bybit's spot fee currencies, and move the balances.

Faults: ``drop_connections``, ``stalled`` (no pushes), ``inject`` (raw payloads:
garbage, a ``u`` going backwards, a delta), ``fault_next_push`` (the next orderbook.50
push of a symbol skips a ``u``, crosses the book, or is a service restart's snapshot with
``u = 1``), ``fault`` on REST (``"429"``, ``"403"``,
``"500"``, ``"malformed"``, ``"stall"``), ``reject_next`` (a retCode for the next
order), ``stall_create`` (the order is placed, its answer is late), ``order_lag`` /
``executions_lag`` (a new order looks open, or has no executions listed, for that many
queries), ``unlisted_lag`` (a placed order is in neither order list for that many
queries) and ``forget_realtime`` (closed orders only in history, as after a Bybit
restart).

Every order change is told to ``order_listeners`` (the private stream of
``fake_bybit_private``) as it happens, before the REST answer leaves.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import trio
from exchanges.fakebook import SentBook
from exchanges.fakehttp import Request, serve
from exchanges.fakews import FakeConnection, FakeWebSocketServer
from trio_websocket import WebSocketRequest, serve_websocket

# The spot instrument of Bybit's market/instrument.mdx response example, as is.
DOC_SPOT_INSTRUMENT: dict[str, Any] = {
    "symbolId": 9, "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT",
    "innovation": "0", "status": "Trading", "marginTrading": "utaOnly", "stTag": "0",
    "lotSizeFilter": {
        "basePrecision": "0.000001", "quotePrecision": "0.0000001", "minOrderQty": "0.000011",
        "maxOrderQty": "83", "minOrderAmt": "5", "maxOrderAmt": "8000000",
        "maxLimitOrderQty": "83", "maxMarketOrderQty": "41.5",
        "postOnlyMaxLimitOrderSize": "60000",
    },
    "priceFilter": {"tickSize": "0.1"},
    "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
    "symbolType": "",
}


def _instrument(symbol: str, base: str, tick: str, step: str, min_qty: str,
                status: str = "Trading") -> dict[str, Any]:
    item = orjson.loads(orjson.dumps(DOC_SPOT_INSTRUMENT))
    item.update(symbol=symbol, baseCoin=base, status=status)
    item["priceFilter"]["tickSize"] = tick
    item["lotSizeFilter"].update(basePrecision=step, minOrderQty=min_qty)
    return item


BOOK_FAULTS = ("gap", "crossed", "restart")


def _default_instruments() -> dict[str, dict[str, Any]]:
    return {
        "BTCUSDT": DOC_SPOT_INSTRUMENT,
        "ETHUSDT": _instrument("ETHUSDT", "ETH", "0.01", "0.00001", "0.00062"),
        "SOLUSDT": _instrument("SOLUSDT", "SOL", "0.01", "0.001", "0.001"),
        "XRPUSDT": _instrument("XRPUSDT", "XRP", "0.0001", "0.01", "1"),
    }


def _default_books() -> dict[str, dict[str, list[list[Decimal]]]]:
    """Top of book for each default instrument; prices from the doc's examples."""
    def book(bid: str, ask: str, size: str) -> dict[str, list[list[Decimal]]]:
        return {"b": [[Decimal(bid), Decimal(size)]], "a": [[Decimal(ask), Decimal(size)]]}
    return {
        "BTCUSDT": book("16493.5", "16611.0", "0.5"),
        "ETHUSDT": book("1600.10", "1600.20", "3"),
        "SOLUSDT": book("20.01", "20.02", "100"),
        "XRPUSDT": book("0.3410", "0.3411", "10000"),
    }


def _text(value: Decimal | int) -> str:
    return format(Decimal(value).normalize(), "f")


def retcode(code: int, msg: str, result: Any = None) -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result if result is not None else {},
            "retExtInfo": {}, "time": int(time.time() * 1000)}


class FakeBybit(FakeWebSocketServer):
    """The fake exchange's state and fault switches. ``ws_url`` and ``rest_url`` are the
    base URLs to configure."""

    def __init__(self, api_key: str, api_secret: str, interval: float = 0.01) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.interval = interval
        self.ws_url = ""
        self.rest_url = ""
        self.instruments = _default_instruments()
        self.books = _default_books()
        self._u = dict.fromkeys(self.books, 1000)
        self._seq = itertools.count(7_961_638_724)
        # WebSocket
        self.stalled = False
        self.connections: list[FakeConnection] = []
        self.subscribe_requests: list[list[str]] = []
        self.unsubscribe_requests: list[list[str]] = []
        self.pings = 0
        # Per connection, its orderbook.50 topics: topic -> (what it was sent, last u).
        self._depth: dict[FakeConnection, dict[str, list[Any]]] = {}
        # symbol -> faults for its next orderbook.50 pushes, one per push (BOOK_FAULTS).
        self.book_faults: dict[str, list[str]] = {}
        # REST
        self.skew_ms = 0
        self.fault: str | None = None
        self.retry_after: float | None = None
        self.stall_seconds = 5.0
        self.stall_create = False
        self.reject_next: tuple[int, str] | None = None
        self.order_lag = 0
        # A placed order missing from both order lists for that many queries.
        self.unlisted_lag = 0
        self.executions_lag = 0
        self.forget_realtime = False
        self.fee_rate = Decimal("0.001")
        self.uid_limits: dict[str, int] = {
            "/v5/order/create": 20, "/v5/order/cancel": 20, "/v5/order/realtime": 50,
            "/v5/order/history": 50, "/v5/execution/list": 50,
            "/v5/account/wallet-balance": 50,
        }
        self._uid_window: dict[str, tuple[int, int]] = {}
        self.rate_limited = 0
        self.balances: dict[str, list[Decimal]] = {
            "BTC": [Decimal("1"), Decimal("0.1")],
            "ETH": [Decimal("10"), Decimal("0")],
            "USDT": [Decimal("100000"), Decimal("250")],
        }
        self.orders: dict[str, dict[str, Any]] = {}
        # Every order request that arrived, by client order id, duplicates included.
        self.arrivals: list[str] = []
        self.executions: list[dict[str, Any]] = []
        # Told of every order change: the order record and its new executions.
        self.order_listeners: list[Callable[[dict[str, Any], list[dict[str, Any]]], None]] = []
        self.requests: list[Request] = []
        self._order_ids = itertools.count(1321003749386327552)
        self._exec_ids = itertools.count(1)
        self._queries: dict[tuple[str, str], int] = {}

    # --- the book -----------------------------------------------------------------------

    def set_book(self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
                 ) -> None:
        """Replace a book: ``(price, size)`` levels, best first."""
        self.books[symbol] = {
            "b": [[Decimal(p), Decimal(s)] for p, s in bids],
            "a": [[Decimal(p), Decimal(s)] for p, s in asks],
        }
        self._u.setdefault(symbol, 1000)

    def orderbook_message(self, symbol: str, *, u: int | None = None, kind: str = "snapshot",
                          bids: list[list[str]] | None = None,
                          asks: list[list[str]] | None = None) -> bytes:
        """An ``orderbook.1`` message of ``symbol`` in Bybit's shape: the book's best level,
        with the next update id unless ``u`` is given."""
        if u is None:
            self._u[symbol] += 1
            u = self._u[symbol]
        book = self.books[symbol]
        now = int(time.time() * 1000)
        return orjson.dumps({
            "topic": f"orderbook.1.{symbol}",
            "type": kind,
            "ts": now,
            "data": {
                "s": symbol,
                "b": bids if bids is not None else [[_text(p), _text(s)] for p, s in book["b"][:1]],
                "a": asks if asks is not None else [[_text(p), _text(s)] for p, s in book["a"][:1]],
                "u": u,
                "seq": next(self._seq),
            },
            "cts": now - 2,
        })

    # --- WebSocket ----------------------------------------------------------------------

    async def handle_ws(self, request: WebSocketRequest) -> None:
        if urlsplit(request.path).path != "/v5/public/spot":
            await request.reject(404)
            return
        await self.run_connection(request, FakeConnection(), self._read, self._push)

    async def _read(self, ws: Any, connection: FakeConnection) -> None:
        while True:
            message = orjson.loads(await ws.get_message())
            op = message.get("op")
            answer: dict[str, Any] = {"conn_id": "cfbd2b3b-fake", "op": op}
            if "req_id" in message:
                answer["req_id"] = message["req_id"]
            if op == "ping":
                self.pings += 1
                answer |= {"success": True, "ret_msg": "pong"}
            elif op == "subscribe":
                args = list(message.get("args") or [])
                self.subscribe_requests.append(args)
                unknown = [a for a in args if a.rpartition(".")[2] not in self.books]
                if len(args) > 10:
                    answer |= {"success": False, "ret_msg": "args size >10"}
                elif unknown:
                    answer |= {"success": False,
                               "ret_msg": f"error:handler not found,topic:{unknown[0]}"}
                else:
                    self._subscribe(connection, args)
                    answer |= {"success": True, "ret_msg": "subscribe"}
            elif op == "unsubscribe":
                args = list(message.get("args") or [])
                self.unsubscribe_requests.append(args)
                self._unsubscribe(connection, args)
                answer |= {"success": True, "ret_msg": ""}
            else:
                answer |= {"success": False, "ret_msg": f"unknown op {op!r}"}
            await ws.send_message(orjson.dumps(answer).decode())

    async def _push(self, ws: Any, connection: FakeConnection) -> None:
        while True:
            await connection.send_injected(ws)
            if not self.stalled:
                for topic in list(connection.subscribed):
                    symbol = topic.rpartition(".")[2]
                    await ws.send_message(self.orderbook_message(symbol).decode())
                for topic, sent in list(self._depth.get(connection, {}).items()):
                    await ws.send_message(self.depth_message(topic, sent))
            await trio.sleep(self.interval)

    # --- WebSocket: orderbook.50 ------------------------------------------------------------

    def _subscribe(self, connection: FakeConnection, topics: list[str]) -> None:
        for topic in topics:
            if topic.startswith("orderbook.1."):
                connection.subscribed.append(topic)
            else:  # a snapshot comes first
                self._depth.setdefault(connection, {})[topic] = [SentBook(), None]

    def _unsubscribe(self, connection: FakeConnection, topics: list[str]) -> None:
        for topic in topics:
            if topic in connection.subscribed:
                connection.subscribed.remove(topic)
            self._depth.get(connection, {}).pop(topic, None)

    def fault_next_push(self, symbol: str, fault: str) -> None:
        """Spoil the next orderbook.50 push of ``symbol`` on each connection that gets it:
        ``gap`` (its ``u`` skips one), ``crossed`` (a bid at the best ask), ``restart``
        (a snapshot with ``u = 1``, as after a service restart)."""
        assert fault in BOOK_FAULTS, fault
        self.book_faults.setdefault(symbol, []).append(fault)

    def depth_message(self, topic: str, subscription: list[Any]) -> str:
        """The next push of an orderbook.50 ``topic`` for one subscription (``[what it
        was sent, last u]``): the snapshot, then the changes since."""
        sent, last = subscription
        symbol = topic.rpartition(".")[2]
        faults = self.book_faults.get(symbol)
        fault = faults.pop(0) if faults else None
        book = self.books[symbol]
        bids = [(p, q) for p, q in book["b"][:50]]
        asks = [(p, q) for p, q in book["a"][:50]]
        if last is None or fault == "restart":
            kind, u = "snapshot", 1 if fault == "restart" else 1000
            sent.snapshot(bids, asks)
        else:
            kind, u = "delta", last + (2 if fault == "gap" else 1)
            bids, asks = sent.changes(bids, asks)
            if fault == "crossed":
                best_ask = min(sent.asks)
                bids.insert(0, (best_ask, Decimal(1)))
                sent.add("bids", best_ask, Decimal(1))
        subscription[1] = u
        now = int(time.time() * 1000)
        return orjson.dumps({
            "topic": topic, "type": kind, "ts": now,
            "data": {"s": symbol, "b": [[_text(p), _text(q)] for p, q in bids],
                     "a": [[_text(p), _text(q)] for p, q in asks],
                     "u": u, "seq": next(self._seq)},
            "cts": now - 2,
        }).decode()

    # --- REST: plumbing -------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.skew_ms

    async def answer(self, seen: Request) -> tuple[int, dict[str, str], Any]:
        if self.fault == "stall":
            await trio.sleep(self.stall_seconds)
        if self.fault == "429":
            headers = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
            return 429, headers, b"Too Many Requests"
        if self.fault == "403":
            return 403, {}, b"access too frequent"
        if self.fault == "500":
            return 502, {}, b"<html>Bad Gateway</html>"
        if self.fault == "malformed":
            return 200, {}, b'{"retCode":0,"result":'
        public = {
            ("GET", "/v5/market/time"): self.market_time,
            ("GET", "/v5/market/instruments-info"): self.instruments_info,
        }
        private = {
            ("GET", "/v5/account/wallet-balance"): self.wallet_balance,
            ("POST", "/v5/order/create"): self.create_order,
            ("POST", "/v5/order/cancel"): self.cancel_order,
            ("GET", "/v5/order/realtime"): partial(self.orders_list, realtime=True),
            ("GET", "/v5/order/history"): partial(self.orders_list, realtime=False),
            ("GET", "/v5/execution/list"): self.execution_list,
        }
        key = (seen.method, seen.path)
        if key in public:
            return 200, {}, public[key](dict(parse_qsl(seen.query)))
        if key not in private:
            return 404, {}, b"Not Found"
        refusal = self.authenticate(seen)
        if refusal is not None:
            return 200, {}, refusal
        headers, over = self.count_uid_limit(seen.path)
        if over:
            self.rate_limited += 1
            return 200, headers, retcode(10006, "Too many visits!")
        params = orjson.loads(seen.body) if seen.method == "POST" else dict(
            parse_qsl(seen.query))
        return 200, headers, await private[key](params)

    def authenticate(self, seen: Request) -> dict[str, Any] | None:
        """Bybit's checks of a signed request, in its order; ``None`` when it passes."""
        headers = seen.headers
        if headers.get("x-bapi-api-key") != self.api_key:
            return retcode(10003, "API key is invalid.")
        try:
            timestamp = int(headers["x-bapi-timestamp"])
            recv_window = int(headers.get("x-bapi-recv-window", "5000"))
        except (KeyError, ValueError):
            return retcode(10001, "params error: X-BAPI-TIMESTAMP is missing")
        server = self.now_ms()
        if not server - recv_window <= timestamp < server + 1000:
            return retcode(10002, (
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{server}],"
                f"recv_window[{recv_window}]"))
        payload = seen.query if seen.method == "GET" else seen.body
        origin = f"{timestamp}{self.api_key}{recv_window}{payload}"
        expected = hmac.new(self.api_secret.encode(), origin.encode(), hashlib.sha256)
        seen.signature_valid = hmac.compare_digest(
            expected.hexdigest(), headers.get("x-bapi-sign", ""))
        if not seen.signature_valid:
            return retcode(10004, f"error sign! origin_string[{origin}]")
        return None

    def count_uid_limit(self, path: str) -> tuple[dict[str, str], bool]:
        """One request against the endpoint's per-second limit: the X-Bapi-Limit headers,
        and whether the limit is passed."""
        limit = self.uid_limits.get(path, 50)
        second = self.now_ms() // 1000
        start, count = self._uid_window.get(path, (second, 0))
        if start != second:
            start, count = second, 0
        count += 1
        self._uid_window[path] = (start, count)
        headers = {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(max(limit - count, 0)),
            "X-Bapi-Limit-Reset-Timestamp": str((second + 1) * 1000),
        }
        return headers, count > limit

    # --- REST: endpoints ------------------------------------------------------------------

    def market_time(self, params: dict[str, str]) -> dict[str, Any]:
        nanos = self.now_ms() * 1_000_000
        return retcode(0, "OK", {"timeSecond": str(nanos // 10**9), "timeNano": str(nanos)})

    def instruments_info(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("category") != "spot":
            return retcode(10001, "params error: category is wrong")
        return retcode(0, "OK", {"category": "spot", "list": list(self.instruments.values())})

    async def wallet_balance(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("accountType") != "UNIFIED":
            return retcode(10001, "accountType only support UNIFIED.")
        coins = [
            {"availableToBorrow": "", "bonus": "0", "accruedInterest": "0",
             "availableToWithdraw": "", "totalOrderIM": "0", "equity": _text(total),
             "totalPositionMM": "0", "usdValue": "", "spotHedgingQty": "0",
             "unrealisedPnl": "0", "collateralSwitch": True, "borrowAmount": "0",
             "totalPositionIM": "0", "walletBalance": _text(total), "cumRealisedPnl": "0",
             "locked": _text(locked), "marginCollateral": True, "coin": coin}
            for coin, (total, locked) in self.balances.items()
        ]
        return retcode(0, "OK", {"list": [{
            "totalEquity": "", "accountIMRate": "0", "totalMarginBalance": "",
            "totalInitialMargin": "0", "accountType": "UNIFIED", "totalAvailableBalance": "",
            "accountMMRate": "0", "totalPerpUPL": "0", "totalWalletBalance": "",
            "accountLTV": "0", "totalMaintenanceMargin": "0", "coin": coins}]})

    def _free(self, coin: str) -> Decimal:
        total, locked = self.balances.get(coin, [Decimal(0), Decimal(0)])
        return total - locked

    def _move(self, coin: str, amount: Decimal) -> None:
        self.balances.setdefault(coin, [Decimal(0), Decimal(0)])[0] += amount

    async def create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("category") != "spot":
            return retcode(10001, "params error: category is wrong")
        instrument = self.instruments.get(body.get("symbol", ""))
        if instrument is None:
            return retcode(170121, "Invalid symbol.")
        link = body.get("orderLinkId") or f"fake-{next(self._order_ids)}"
        self.arrivals.append(link)
        if link in self.orders:
            return retcode(170141, "Duplicate clientOrderId.")
        if self.reject_next is not None:
            (code, msg), self.reject_next = self.reject_next, None
            return retcode(code, msg)
        side, kind = body.get("side"), body.get("orderType")
        try:
            qty = Decimal(body["qty"])
            price = Decimal(body["price"]) if kind == "Limit" else None
        except (KeyError, ArithmeticError):
            return retcode(10001, "params error: qty or price")
        if side not in ("Buy", "Sell") or kind not in ("Limit", "Market"):
            return retcode(10001, "params error: side or orderType")
        lot, tick = instrument["lotSizeFilter"], Decimal(instrument["priceFilter"]["tickSize"])
        by_value = kind == "Market" and side == "Buy" and body.get("marketUnit") != "baseCoin"
        if not by_value and qty % Decimal(lot["basePrecision"]):
            return retcode(170137, "Order quantity has too many decimals.")
        if price is not None and price % tick:
            return retcode(170134, "Order price has too many decimals.")
        if not by_value and qty < Decimal(lot["minOrderQty"]):
            return retcode(170136, "Order quantity is lower than the minimum.")
        levels = self.books[body["symbol"]]["a" if side == "Buy" else "b"]
        estimate = price if price is not None else (levels[0][0] if levels else Decimal(0))
        value = qty if by_value else qty * estimate
        if value < Decimal(lot["minOrderAmt"]):
            return retcode(170140, "Order value exceeded lower limit.")
        base, quote = instrument["baseCoin"], instrument["quoteCoin"]
        if (side == "Buy" and self._free(quote) < value) or (
                side == "Sell" and self._free(base) < qty):
            return retcode(170131, "Insufficient balance.")
        order_id = str(next(self._order_ids))
        now = self.now_ms()
        filled, filled_value, fees = Decimal(0), Decimal(0), Decimal(0)
        for level in levels:
            level_price, size = level
            if price is not None and (
                    level_price > price if side == "Buy" else level_price < price):
                break
            wanted = (qty - filled_value) / level_price if by_value else qty - filled
            take = min(size, wanted.quantize(Decimal(lot["basePrecision"]), rounding=ROUND_DOWN))
            if take <= 0:
                break
            level[1] -= take
            filled += take
            filled_value += take * level_price
            if side == "Buy":  # a taker buy pays its fee in the base coin
                fee, fee_coin = take * self.fee_rate, base
                self._move(quote, -take * level_price)
                self._move(base, take - fee)
            else:  # a taker sell pays in the quote coin
                fee, fee_coin = take * level_price * self.fee_rate, quote
                self._move(base, -take)
                self._move(quote, take * level_price - fee)
            fees += fee
            self.executions.insert(0, {
                "symbol": body["symbol"], "orderType": kind, "underlyingPrice": "",
                "orderLinkId": link, "side": side, "indexPrice": "", "orderId": order_id,
                "stopOrderType": "",
                "leavesQty": _text(qty - filled if not by_value else Decimal(0)),
                "execTime": str(now), "feeCurrency": fee_coin, "isMaker": False,
                "execFee": _text(fee), "feeRate": _text(self.fee_rate),
                "execId": f"2100000000{next(self._exec_ids):09d}", "tradeIv": "",
                "blockTradeId": "", "markPrice": "", "execPrice": _text(level_price),
                "markIv": "", "orderQty": _text(qty), "orderPrice": _text(price or 0),
                "execValue": _text(take * level_price), "execType": "Trade",
                "execQty": _text(take), "closedSize": "", "extraFees": "", "seq": now,
            })
        self.books[body["symbol"]]["a" if side == "Buy" else "b"] = [
            lv for lv in levels if lv[1] > 0]
        complete = filled_value >= qty if by_value else filled == qty
        status = "Filled" if complete else (
            "PartiallyFilledCanceled" if filled > 0 else "Cancelled")
        self.orders[link] = {
            "orderId": order_id, "orderLinkId": link, "blockTradeId": "",
            "symbol": body["symbol"], "price": _text(price or 0), "qty": _text(qty),
            "side": side, "isLeverage": "0", "positionIdx": 0, "orderStatus": status,
            "cancelType": "UNKNOWN", "rejectReason": "EC_NoError",
            "avgPrice": _text(filled_value / filled) if filled else "",
            "leavesQty": "0", "leavesValue": "0", "cumExecQty": _text(filled),
            "cumExecValue": _text(filled_value), "cumExecFee": _text(fees),
            "timeInForce": "IOC", "orderType": kind, "stopOrderType": "",
            "marketUnit": body.get("marketUnit", ""), "orderIv": "", "triggerPrice": "0",
            "takeProfit": "0", "stopLoss": "0", "createdTime": str(now),
            "updatedTime": str(now), "smpType": "None", "smpGroup": 0, "smpOrderId": "",
        }
        self._announce(self.orders[link], [e for e in reversed(self.executions)
                                           if e["orderLinkId"] == link])
        if self.stall_create:
            await trio.sleep(self.stall_seconds)
        return retcode(0, "OK", {"orderId": order_id, "orderLinkId": link})

    async def cancel_order(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self.orders.get(body.get("orderLinkId", ""))
        if order is None or order["orderStatus"] not in ("New", "PartiallyFilled"):
            return retcode(170213, "Order does not exist.")
        order["orderStatus"] = "Cancelled"
        self._announce(order, [])
        return retcode(0, "OK", {"orderId": order["orderId"], "orderLinkId": order["orderLinkId"]})

    def _announce(self, order: dict[str, Any], executions: list[dict[str, Any]]) -> None:
        for listener in self.order_listeners:
            listener(order, executions)

    def _lagging(self, what: str, link: str, lag: int) -> bool:
        count = self._queries.get((what, link), 0)
        self._queries[(what, link)] = count + 1
        return count < lag

    async def orders_list(self, params: dict[str, str], *, realtime: bool) -> dict[str, Any]:
        link = params.get("orderLinkId")
        found = [o for o in self.orders.values() if link is None or o["orderLinkId"] == link]
        if realtime and self.forget_realtime:
            found = [o for o in found if o["orderStatus"] in ("New", "PartiallyFilled")]
        found = [o for o in found
                 if not self._lagging("unlisted", o["orderLinkId"], self.unlisted_lag)]
        shown = []
        for order in found:
            if realtime and self._lagging("order", order["orderLinkId"], self.order_lag):
                order = {**order, "orderStatus": "New", "cumExecQty": "0", "cumExecValue": "0",
                         "cumExecFee": "0", "avgPrice": "", "leavesQty": order["qty"]}
            shown.append(order)
        return retcode(0, "OK", {"list": shown, "nextPageCursor": "", "category": "spot"})

    async def execution_list(self, params: dict[str, str]) -> dict[str, Any]:
        link = params.get("orderLinkId")
        found = [e for e in self.executions if link is None or e["orderLinkId"] == link]
        if link is not None and self._lagging("executions", link, self.executions_lag):
            found = []
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 50)
        page = found[start : start + limit]
        cursor = str(start + limit) if start + limit < len(found) else ""
        return retcode(0, "OK", {"nextPageCursor": cursor, "category": "spot", "list": page})


@asynccontextmanager
async def open_fake_bybit(
    api_key: str = "test-api-key", api_secret: str = "test-api-secret", interval: float = 0.01
) -> AsyncIterator[FakeBybit]:
    fake = FakeBybit(api_key, api_secret, interval)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, fake.handle_ws, "127.0.0.1", 0, None)
        fake.ws_url = f"ws://127.0.0.1:{server.port}"
        fake.rest_url = await nursery.start(partial(
            serve, fake.answer, requests=fake.requests,
            content_type="application/json; charset=utf-8"))
        yield fake
        nursery.cancel_scope.cancel()
