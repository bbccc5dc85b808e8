"""A fake Binance spot REST server on 127.0.0.1 (trio + h11), for the REST client's and
the trading account's tests.

It answers in Binance's response shapes (exchange-protocols.md 1.2; captured answers in
nautilus_trader's Binance test data):

* public ``GET /api/v3/time`` and ``GET /api/v3/exchangeInfo`` (``symbols=[...]`` or all;
  one unknown symbol refuses the list with ``-1121``), from the exchangeInfo capture in
  ``binance_exchange_info.json`` (BTCUSDT and ETHUSDT as captured in 2021 with
  ``MIN_NOTIONAL``; BNBUSDT with today's ``NOTIONAL``; LUNAUSDT in ``BREAK``);
* signed ``GET /api/v3/account``, ``POST``/``GET``/``DELETE /api/v3/order`` and
  ``GET /api/v3/myTrades``, with the signature verified for real (HMAC-SHA256 over the
  query string followed by the body, minus ``signature``), ``X-MBX-APIKEY`` checked, and
  the timestamp checked against its own clock (shifted by ``skew_ms``) and ``recvWindow``.

Orders are matched at once against a book the test sets (:meth:`FakeBinanceRest.set_book`):
IOC LIMIT up to its price, MARKET through the whole book, partial fills when the book is
smaller, levels consumed, 0.1 % commission (in the asset received), balances moved; the
order is checked against the symbol's filters (``-1013``) and the balance (``-2010``).
A client order id of an *open* order is refused as a duplicate, as on Binance.

Public ``GET /api/v3/depth?symbol=&limit=`` answers from ``depth_source`` (the fake
WebSocket server's books, so that snapshots and the diff-depth stream agree), weighed by
its limit as on Binance.

Every answer carries ``X-MBX-USED-WEIGHT-1M``; with ``weight_limit`` set, going past it
in a ``weight_window`` answers 429 with ``Retry-After`` by itself.

Faults: ``fault`` (every request) ``"429"``/``"418"`` (with ``Retry-After``), ``"500"``,
``"-1021"``, ``"-1022"``, ``"stall"``; :meth:`FakeBinanceRest.ban` (418 until the ban
ends, counting the requests that come anyway); ``order_fault`` (placements only)
``"stall"`` (the order is booked and matched, the answer stalls), ``"duplicate"``
(a known client order id is refused as a duplicate even when final), ``"reject"``
(``-2010`` with ``reject_message``), ``"pending"`` (answered ``NEW``; matched after
``settle_after_queries`` queries, or at once by :meth:`FakeBinanceRest.release_pending`),
``"500"`` (matched, then HTTP 500).

Every change of an order is told to ``order_listeners`` (the user data stream of
``fake_binance_private``) as it happens, before the HTTP answer leaves.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio
from exchanges.fakehttp import Answer, Request, serve

EXCHANGE_INFO = Path(__file__).with_name("binance_exchange_info.json")

WEIGHTS = {
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/account"): 20,
    ("POST", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/myTrades"): 5,
}
SIGNED = {"/api/v3/account", "/api/v3/order", "/api/v3/myTrades"}
BAD_SIGNATURE = {"code": -1022, "msg": "Signature for this request is not valid."}
BAD_TIMESTAMP = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
BAD_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
BAD_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
NO_SUCH_ORDER = {"code": -2013, "msg": "Order does not exist."}
UNKNOWN_ORDER = {"code": -2011, "msg": "Unknown order sent."}
DUPLICATE = {"code": -2010, "msg": "Duplicate order sent."}
INSUFFICIENT = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
TAKER_FEE = Decimal("0.001")
ZERO = Decimal(0)


def request_weight(seen: Request) -> int:
    """A request's weight: the depth snapshot's grows with its limit."""
    if (seen.method, seen.path) == ("GET", "/api/v3/depth"):
        try:
            limit = int(seen.params.get("limit", "100"))
        except ValueError:
            return 1
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return WEIGHTS.get((seen.method, seen.path), 1)


def _text(value: Decimal) -> str:
    return f"{value:.8f}"


@attrs.define
class FakeOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    quantity: Decimal
    time_ms: int
    status: str = "NEW"
    executed: Decimal = ZERO
    quote: Decimal = ZERO
    trades: list[dict[str, Any]] = attrs.field(factory=list)
    queries: int = 0

    def record(self) -> dict[str, Any]:
        """The order as ``GET /api/v3/order`` answers it."""
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "price": _text(self.price),
            "origQty": _text(self.quantity), "executedQty": _text(self.executed),
            "cummulativeQuoteQty": _text(self.quote), "status": self.status,
            "timeInForce": self.time_in_force, "type": self.type, "side": self.side,
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": self.time_ms,
            "updateTime": self.time_ms, "isWorking": True, "workingTime": self.time_ms,
            "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "NONE",
        }

    def full(self) -> dict[str, Any]:
        """The order as ``POST /api/v3/order`` answers it with ``newOrderRespType=FULL``."""
        record = self.record()
        for key in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
            del record[key]
        record["transactTime"] = self.time_ms
        record["fills"] = [
            {"price": t["price"], "qty": t["qty"], "commission": t["commission"],
             "commissionAsset": t["commissionAsset"], "tradeId": t["id"]}
            for t in self.trades
        ]
        return record


@attrs.define
class FakeBinanceRest:
    api_key: str
    api_secret: str
    url: str = ""
    skew_ms: int = 0
    fault: str | None = None
    order_fault: str | None = None
    reject_message: str = "Account has insufficient balance for requested action."
    retry_after: int = 7
    stall_seconds: float = 5.0
    settle_after_queries: int = 2
    used_weight: int = 0
    weight_limit: int | None = None
    weight_window: float | None = None
    banned_until: float = 0.0
    requests_during_ban: int = 0
    balances: dict[str, tuple[Decimal, Decimal]] = attrs.field(
        factory=lambda: {"BTC": (Decimal("0.5"), Decimal("0.1")),
                         "USDT": (Decimal("1000"), ZERO)}
    )
    books: dict[str, dict[str, list[tuple[Decimal, Decimal]]]] = attrs.field(factory=dict)
    orders: dict[int, FakeOrder] = attrs.field(factory=dict)
    requests: list[Request] = attrs.field(factory=list)
    exchange_info: dict[str, Any] = attrs.field(
        factory=lambda: orjson.loads(EXCHANGE_INFO.read_bytes()))
    # Told of every order change: the order and the trades it just made.
    order_listeners: list[Callable[[FakeOrder, list[dict[str, Any]]], None]] = attrs.field(
        factory=list)
    # Where GET /api/v3/depth takes its books: an object with ``depth_snapshot(symbol,
    # limit) -> dict | None`` (None: no such symbol).
    depth_source: Any = None
    _ids: Any = attrs.field(factory=lambda: itertools.count(28))
    _trade_ids: Any = attrs.field(factory=lambda: itertools.count(56))
    _window_start: float = 0.0

    # --- what tests set and read ----------------------------------------------------------

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.skew_ms

    def set_book(self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
                 ) -> None:
        """Levels as (price, quantity) strings, best first."""
        self.books[symbol] = {
            "bids": [(Decimal(p), Decimal(q)) for p, q in bids],
            "asks": [(Decimal(p), Decimal(q)) for p, q in asks],
        }

    def ban(self, seconds: int) -> None:
        """Answer 418 with ``Retry-After`` to every request for ``seconds``."""
        self.banned_until = time.time() + seconds
        self.retry_after = seconds

    def order(self, client_order_id: str) -> FakeOrder | None:
        for order in self.orders.values():
            if order.client_order_id == client_order_id:
                return order
        return None

    def placements(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/api/v3/order"]

    def verify(self, total_params: str) -> bool:
        """Recompute the signature over the parameters minus ``signature``."""
        parts = total_params.split("&")
        given = [p.partition("=")[2] for p in parts if p.startswith("signature=")]
        rest = "&".join(p for p in parts if not p.startswith("signature="))
        if len(given) != 1:
            return False
        expected = hmac.new(self.api_secret.encode(), rest.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, given[0])

    def rules(self, symbol: str) -> dict[str, Any] | None:
        for entry in self.exchange_info["symbols"]:
            if entry["symbol"] == symbol:
                return entry
        return None

    # --- answering ----------------------------------------------------------------------

    def _count_weight(self, seen: Request) -> bool:
        """Add the request's weight to the window; False when that passes the limit."""
        if self.weight_window is not None:
            start = seen.arrived - seen.arrived % self.weight_window
            if start != self._window_start:
                self._window_start = start
                self.used_weight = 0
        self.used_weight += request_weight(seen)
        return self.weight_limit is None or self.used_weight <= self.weight_limit

    async def answer(self, seen: Request) -> tuple[int, dict[str, str], Any]:
        if seen.arrived < self.banned_until:
            self.requests_during_ban += 1
            left = max(int(self.banned_until - seen.arrived + 0.999), 1)
            return 418, {"Retry-After": str(left)}, {
                "code": -1003, "msg": "Way too much request weight used; IP banned."}
        if not self._count_weight(seen):
            assert self.weight_window is not None
            left = self._window_start + self.weight_window - seen.arrived
            return 429, {"Retry-After": str(max(int(left + 0.999), 1))}, {
                "code": -1003, "msg": "Too much request weight used."}
        headers: dict[str, str] = {}
        if self.fault == "stall":
            await trio.sleep(self.stall_seconds)
        if self.fault in ("429", "418"):
            headers["Retry-After"] = str(self.retry_after)
            msg = "Way too many requests; IP banned." if self.fault == "418" else (
                "Too many requests.")
            return int(self.fault), headers, {"code": -1003, "msg": msg}
        if self.fault == "500":
            return 500, headers, {"code": -1000, "msg": "An unknown error occurred."}
        if self.fault == "-1021" and seen.path in SIGNED:
            return 400, headers, BAD_TIMESTAMP
        if self.fault == "-1022":
            return 400, headers, BAD_SIGNATURE
        route = (seen.method, seen.path)
        if route == ("GET", "/api/v3/time"):
            return 200, headers, {"serverTime": self.now_ms()}
        if route == ("GET", "/api/v3/exchangeInfo"):
            return self.answer_exchange_info(seen)
        if route == ("GET", "/api/v3/depth"):
            return self.answer_depth(seen)
        if seen.path in SIGNED:
            refused = self.authenticate(seen)
            if refused is not None:
                return refused
            if route == ("GET", "/api/v3/account"):
                return self.account()
            if route == ("POST", "/api/v3/order"):
                return await self.place(seen.params)
            if route == ("GET", "/api/v3/order"):
                return self.query(seen.params)
            if route == ("DELETE", "/api/v3/order"):
                return self.cancel(seen.params)
            if route == ("GET", "/api/v3/myTrades"):
                return self.my_trades(seen.params)
        return 404, headers, {"code": -1000, "msg": "Unknown endpoint."}

    def authenticate(self, seen: Request) -> tuple[int, dict[str, str], Any] | None:
        if seen.headers.get("x-mbx-apikey") != self.api_key:
            return 401, {}, BAD_KEY
        params = seen.params
        try:
            timestamp = int(params["timestamp"])
            recv_window = int(params.get("recvWindow", 5000))
        except (KeyError, ValueError):
            return 400, {}, {"code": -1102, "msg": "Mandatory parameter 'timestamp' was not sent."}
        server = self.now_ms()
        if timestamp >= server + 1000 or server - timestamp > recv_window:
            return 400, {}, BAD_TIMESTAMP
        seen.signature_valid = self.verify(seen.query + seen.body)
        if not seen.signature_valid:
            return 400, {}, BAD_SIGNATURE
        return None

    def answer_exchange_info(self, seen: Request) -> tuple[int, dict[str, str], Any]:
        listed = seen.params.get("symbols")
        if listed is None:
            return 200, {}, self.exchange_info
        try:
            wanted = orjson.loads(listed)
        except orjson.JSONDecodeError:
            return 400, {}, {"code": -1100, "msg": "Illegal characters found in parameter."}
        entries = [self.rules(s) for s in wanted]
        if any(e is None for e in entries):
            return 400, {}, BAD_SYMBOL
        return 200, {}, {**self.exchange_info, "symbols": entries}

    def answer_depth(self, seen: Request) -> tuple[int, dict[str, str], Any]:
        params = seen.params
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 5000:
            return 400, {}, {"code": -1100, "msg": "Illegal characters found in parameter "
                                                   "'limit'; legal range is '1-5000'."}
        source = self.depth_source
        snapshot = (source.depth_snapshot(params.get("symbol", ""), limit)
                    if source is not None else None)
        if snapshot is None:
            return 400, {}, BAD_SYMBOL
        return 200, {}, snapshot

    def account(self) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000",
                                "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": self.now_ms(), "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": _text(free), "locked": _text(locked)}
                for a, (free, locked) in self.balances.items()
            ],
            "permissions": ["SPOT"], "uid": 354937868,
        }

    # --- orders -------------------------------------------------------------------------

    def _filter_failure(self, entry: dict[str, Any], order: FakeOrder) -> str | None:
        filters = {f["filterType"]: f for f in entry["filters"]}
        price_filter = filters.get("PRICE_FILTER")
        if order.type == "LIMIT" and price_filter is not None:
            tick = Decimal(price_filter["tickSize"])
            if tick > 0 and order.price % tick != 0:
                return "PRICE_FILTER"
        lot = filters.get("LOT_SIZE")
        if lot is not None:
            step = Decimal(lot["stepSize"])
            if ((step > 0 and order.quantity % step != 0)
                    or order.quantity < Decimal(lot["minQty"])
                    or order.quantity > Decimal(lot["maxQty"])):
                return "LOT_SIZE"
        market_lot = filters.get("MARKET_LOT_SIZE")
        if order.type == "MARKET" and market_lot is not None:
            top = Decimal(market_lot["maxQty"])
            if top > 0 and order.quantity > top:
                return "MARKET_LOT_SIZE"
        for kind in ("NOTIONAL", "MIN_NOTIONAL"):
            notional = filters.get(kind)
            if notional is not None and order.type == "LIMIT" and (
                order.price * order.quantity < Decimal(notional["minNotional"])
            ):
                return kind
        return None

    async def place(self, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        symbol = params.get("symbol", "")
        entry = self.rules(symbol)
        if entry is None:
            return 400, {}, BAD_SYMBOL
        cid = params.get("newClientOrderId") or f"auto{next(self._ids)}"
        known = self.order(cid)
        if known is not None and (known.status == "NEW" or self.order_fault == "duplicate"):
            return 400, {}, DUPLICATE
        if self.order_fault == "reject":
            return 400, {}, {"code": -2010, "msg": self.reject_message}
        order = FakeOrder(
            order_id=next(self._ids), client_order_id=cid, symbol=symbol,
            side=params["side"], type=params["type"],
            time_in_force=params.get("timeInForce", "GTC"),
            price=Decimal(params.get("price", "0")), quantity=Decimal(params["quantity"]),
            time_ms=self.now_ms(),
        )
        failure = self._filter_failure(entry, order)
        if failure is not None:
            return 400, {}, {"code": -1013, "msg": f"Filter failure: {failure}"}
        if not self._affordable(entry, order):
            return 400, {}, INSUFFICIENT
        self.orders[order.order_id] = order
        if self.order_fault == "pending":
            self._announce(order, [])
            return 200, {}, order.full()
        self.match(order)
        if self.order_fault == "stall":
            await trio.sleep(self.stall_seconds)
        if self.order_fault == "500":
            return 500, {}, {"code": -1000, "msg": "An unknown error occurred."}
        return 200, {}, order.full()

    def _affordable(self, entry: dict[str, Any], order: FakeOrder) -> bool:
        base, quote = entry["baseAsset"], entry["quoteAsset"]
        if order.side == "SELL":
            return self.balances.get(base, (ZERO, ZERO))[0] >= order.quantity
        if order.type == "LIMIT":
            cost = order.price * order.quantity
        else:
            cost, left = ZERO, order.quantity
            for price, size in self.books.get(order.symbol, {}).get("asks", []):
                take = min(left, size)
                cost, left = cost + take * price, left - take
        return self.balances.get(quote, (ZERO, ZERO))[0] >= cost

    def match(self, order: FakeOrder) -> None:
        """Fill ``order`` against the book, then end it: FILLED or EXPIRED (IOC/MARKET)."""
        entry = self.rules(order.symbol)
        assert entry is not None
        base, quote = entry["baseAsset"], entry["quoteAsset"]
        book = self.books.setdefault(order.symbol, {"bids": [], "asks": []})
        levels = book["asks"] if order.side == "BUY" else book["bids"]
        made = len(order.trades)
        left = order.quantity - order.executed
        while left > 0 and levels:
            price, size = levels[0]
            if order.type == "LIMIT" and (
                price > order.price if order.side == "BUY" else price < order.price
            ):
                break
            take = min(left, size)
            if take == size:
                levels.pop(0)
            else:
                levels[0] = (price, size - take)
            left -= take
            self._execute(order, price, take, base, quote)
        order.status = "FILLED" if left == 0 else "EXPIRED"
        self._announce(order, order.trades[made:])

    def release_pending(self) -> None:
        """Match every order still open (placed with ``order_fault = "pending"``) now."""
        for order in list(self.orders.values()):
            if order.status == "NEW":
                self.match(order)

    def _announce(self, order: FakeOrder, trades: list[dict[str, Any]]) -> None:
        for listener in self.order_listeners:
            listener(order, trades)

    def _execute(self, order: FakeOrder, price: Decimal, qty: Decimal, base: str, quote: str
                 ) -> None:
        notional = price * qty
        if order.side == "BUY":
            fee, fee_asset = qty * TAKER_FEE, base
            self._move(quote, -notional)
            self._move(base, qty - fee)
        else:
            fee, fee_asset = notional * TAKER_FEE, quote
            self._move(base, -qty)
            self._move(quote, notional - fee)
        order.executed += qty
        order.quote += notional
        order.trades.append({
            "symbol": order.symbol, "id": next(self._trade_ids), "orderId": order.order_id,
            "orderListId": -1, "price": _text(price), "qty": _text(qty),
            "quoteQty": _text(notional), "commission": _text(fee),
            "commissionAsset": fee_asset, "time": self.now_ms(),
            "isBuyer": order.side == "BUY", "isMaker": False, "isBestMatch": True,
        })

    def _move(self, asset: str, amount: Decimal) -> None:
        free, locked = self.balances.get(asset, (ZERO, ZERO))
        self.balances[asset] = (free + amount, locked)

    def _find(self, params: dict[str, str]) -> FakeOrder | None:
        if "orderId" in params:
            found = self.orders.get(int(params["orderId"]))
        else:
            found = self.order(params.get("origClientOrderId", ""))
        return found if found is not None and found.symbol == params.get("symbol") else None

    def query(self, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        order = self._find(params)
        if order is None:
            return 400, {}, NO_SUCH_ORDER
        order.queries += 1
        if order.status == "NEW" and self.order_fault == "pending" and (
            order.queries >= self.settle_after_queries
        ):
            self.match(order)
        return 200, {}, order.record()

    def cancel(self, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        order = self._find(params)
        if order is None or order.status != "NEW":
            return 400, {}, UNKNOWN_ORDER
        order.status = "CANCELED"
        self._announce(order, [])
        record = order.record()
        return 200, {}, {
            "symbol": order.symbol, "origClientOrderId": order.client_order_id,
            "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": f"cancel{order.order_id}", "transactTime": self.now_ms(),
            **{k: record[k] for k in ("price", "origQty", "executedQty",
                                      "cummulativeQuoteQty", "status", "timeInForce",
                                      "type", "side", "selfTradePreventionMode")},
        }

    def my_trades(self, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        symbol = params.get("symbol")
        if self.rules(symbol or "") is None:
            return 400, {}, BAD_SYMBOL
        wanted = params.get("orderId")
        return 200, {}, [
            t for o in self.orders.values() if o.symbol == symbol
            and (wanted is None or str(o.order_id) == wanted) for t in o.trades
        ]

    # --- HTTP ---------------------------------------------------------------------------

    async def respond(self, seen: Request) -> Answer:
        """:meth:`answer` with the weight used, which Binance reports in every answer."""
        status, headers, body = await self.answer(seen)
        return status, {**headers, "X-MBX-USED-WEIGHT-1M": str(self.used_weight)}, body


@asynccontextmanager
async def open_fake_binance_rest(
    api_key: str = "test-api-key", api_secret: str = "test-api-secret"
) -> AsyncIterator[FakeBinanceRest]:
    fake = FakeBinanceRest(api_key=api_key, api_secret=api_secret)
    async with trio.open_nursery() as nursery:
        fake.url = await nursery.start(partial(
            serve, fake.respond, requests=fake.requests,
            content_type="application/json;charset=UTF-8"))
        yield fake
        nursery.cancel_scope.cancel()
