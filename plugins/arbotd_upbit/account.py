"""The Upbit KRW-market trading account of ``live`` mode: rules, balances, orders.

Facts (bitget-upbit-protocols.md 2.2, docs.upbit.com/kr/reference):

* Markets come from ``GET /v1/market/all``; each KRW market's listed tick from ``GET
  /v1/orderbook/instruments?markets=`` (:mod:`arbotd_upbit.ticks` for the bands).
* Orders are ``POST /v1/orders`` with ``market``, ``side`` (``bid``/``ask``), ``ord_type``
  and the client ``identifier``. An immediate-or-cancel limit order is ``ord_type:
  "limit"`` with ``time_in_force: "ioc"``, ``price`` and ``volume``; a market sell is
  ``ord_type: "market"`` with ``volume``; a market *buy* is ``ord_type: "price"`` whose
  ``price`` is the KRW total to spend. That total buys more than asked when the book
  moves down meanwhile, so a market buy (an order with price 0, as a hedge or an unwind
  sends) goes out instead as an IOC limit buy of the quantity, at the price of the ask
  level that covers it in ``GET /v1/orderbook`` raised by ``market_buy_margin_percent``:
  it never buys more than asked, and pays at most that.
* ``identifier`` is unique per account forever, even for an order that failed: sending
  it again can never make a second order. ``GET /v1/order?identifier=`` tells the order
  (``state``, ``volume``, ``executed_volume``, ``paid_fee``, ``trades[]`` with each
  trade's ``uuid``, ``price``, ``volume``, ``funds``); ``DELETE /v1/order?identifier=``
  cancels it; ``order_not_found`` (404) when Upbit has none.
* Prices and fees are KRW. The fee (0.05 %) is charged in KRW on both sides; the order's
  ``paid_fee`` is shared among its trades by their ``funds``.

The order contract of a venue quoted in another currency: an :class:`~arbotd.Order` here
carries its price in KRW, already on the tick (the executor rounds it with these rules);
the account checks it again and refuses locally a price off its band's tick, naming it.
Fills carry Upbit's KRW prices in ``price`` (and fees in KRW), ``native_price`` left
unset: the executor converts them at the order's rate and records the KRW price as the
native one (:func:`arbotd.fx.converted_fill` passes a fill that has one as it is).

A placement whose answer was lost is never sent blindly again: the account first asks
for the order by its identifier, and a refusal it cannot explain is looked up too (the
error name of an identifier used before is not documented (unverified), so any refusal
other than the order's own faults is taken as possibly that). The
private ``myOrder`` stream (:mod:`arbotd_upbit.private`) tells fills first when it is up.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import httpx
import trio

from arbotd import (
    Fill,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Side,
    TemporaryExchangeError,
)
from arbotd.exchange import RecentIds, TrackedOrder, VenueAccount, decimal_text, merge_fills
from arbotd_upbit.config import UpbitConfig
from arbotd_upbit.errors import ORDER_NOT_FOUND, UpbitError
from arbotd_upbit.orders import FINAL_STATES, final_status, outcome_reason
from arbotd_upbit.private import UpbitOrderStream
from arbotd_upbit.rest import UpbitRest
from arbotd_upbit.symbols import RATE_MARKET, RATE_QUOTED, RATE_SYMBOL
from arbotd_upbit.ticks import MIN_TOTAL_KRW, VOLUME_STEP, KrwRules

__all__ = ["UpbitAccount", "parse_balances", "parse_markets"]

log = logging.getLogger(__name__)

EXCHANGE = "upbit"
CURRENCY = "KRW"
MARKETS = "/v1/market/all"
INSTRUMENTS = "/v1/orderbook/instruments"
ACCOUNTS = "/v1/accounts"
ORDERS = "/v1/orders"
ORDER = "/v1/order"
ORDERBOOK = "/v1/orderbook"
# Markets per /v1/orderbook/instruments request.
INSTRUMENTS_PER_REQUEST = 50
# Refusals that say what is wrong with the order itself: rejected, nothing to look up.
_CLEAR_REFUSALS = frozenset({
    "insufficient_funds_bid", "insufficient_funds_ask", "under_min_total_bid",
    "under_min_total_ask", "invalid_price_bid", "invalid_price_ask", "create_bid_error",
    "create_ask_error", "market_does_not_exist", "out_of_scope",
})


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in ("", None) else Decimal(0)


def neutral_symbol(market: str) -> str | None:
    """``"KRW-BTC"`` -> ``"BTCUSDT"`` (converted at KRW-USDT), ``"KRW-USDT"`` ->
    ``"USDTKRW"``; ``None`` for a market that is not a KRW one."""
    quote, _, base = market.partition("-")
    if quote != CURRENCY or not base:
        return None
    return RATE_SYMBOL if market == RATE_MARKET else f"{base}{RATE_QUOTED}"


def _market_of(symbol: str) -> str:
    """``"BTCUSDT"`` -> ``"KRW-BTC"``, ``"USDTKRW"`` -> ``"KRW-USDT"``."""
    symbol = symbol.upper()
    if symbol == RATE_SYMBOL:
        return RATE_MARKET
    return f"{CURRENCY}-{symbol.removesuffix(RATE_QUOTED)}"


def parse_markets(markets: Iterable[Any], ticks: Mapping[str, Decimal]) -> dict[str, KrwRules]:
    """``/v1/market/all`` and the ticks listed per market -> rules per neutral symbol."""
    rules: dict[str, KrwRules] = {}
    for item in markets:
        try:
            market = str(item["market"])
        except (KeyError, TypeError):
            continue
        symbol = neutral_symbol(market)
        if symbol is None:
            continue
        rules[symbol] = KrwRules(
            symbol, tick_size=ticks.get(market, Decimal(0)), step_size=VOLUME_STEP,
            min_notional=MIN_TOTAL_KRW, status="active")
    return rules


def parse_balances(data: Iterable[Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """``/v1/accounts`` -> asset -> (free, locked)."""
    return {str(d["currency"]): (_decimal(d.get("balance")), _decimal(d.get("locked")))
            for d in data}


def _timestamp(value: Any) -> float:
    """Upbit's ISO times (``2018-04-10T15:42:23+09:00``) in seconds."""
    try:
        return dt.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return time.time()


class UpbitAccount(VenueAccount[UpbitConfig, UpbitRest]):
    """An Upbit account's KRW markets: an :class:`arbotd.ExchangeAccount`. Two accounts
    built from equal settings compare equal."""

    name = EXCHANGE
    stream_title = "the myOrder stream"
    keys_read_at_start = True

    def __init__(
        self,
        settings: UpbitConfig,
        *,
        timeout: float = 10.0,
        poll_interval: float = 0.2,
        poll_attempts: int = 25,
        transport: httpx.AsyncBaseTransport | None = None,
        stream_wait: float = 1.0,
        stream_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.poll_attempts = poll_attempts
        # Identifiers of the orders this account sent, to look up before any resend.
        self._sent: RecentIds[None] = RecentIds()
        super().__init__(settings, transport=transport, stream_wait=stream_wait,
                         stream_options=stream_options)

    def make_rest(self) -> UpbitRest:
        access, secret = self.credentials()
        return UpbitRest(
            access, secret, self.settings.resolved_rest_url(),
            timeout=self.timeout, budget_fraction=self.settings.request_budget_fraction,
            transport=self._transport)

    def make_order_stream(self, url: str, **options: Any) -> UpbitOrderStream:
        return UpbitOrderStream(
            self.orders, url, credentials=self.credentials, timestamp_ms=self.timestamp_ms,
            key_names=self.settings.credential_variables(), **options)

    async def load_rules(self) -> None:
        markets = await self.rest.request("GET", MARKETS, {"is_details": "true"})
        krw = [str(m["market"]) for m in markets
               if isinstance(m, dict) and str(m.get("market", "")).startswith("KRW-")]
        if not krw:
            raise TemporaryExchangeError(EXCHANGE, f"{MARKETS} listed no KRW market")
        ticks: dict[str, Decimal] = {}
        for start in range(0, len(krw), INSTRUMENTS_PER_REQUEST):
            group = krw[start : start + INSTRUMENTS_PER_REQUEST]
            rows = await self.rest.request("GET", INSTRUMENTS, {"markets": ",".join(group)})
            for row in rows:
                try:
                    ticks[str(row["market"])] = Decimal(str(row["tick_size"]))
                except (KeyError, TypeError, InvalidOperation):
                    continue
        self._rules = parse_markets(markets, ticks)

    def rules(self, symbol: str) -> KrwRules | None:
        return self._rules.get(symbol.upper())

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        data = await self.rest.request("GET", ACCOUNTS, private=True)
        try:
            return parse_balances(data)
        except (KeyError, TypeError, InvalidOperation) as err:
            raise TemporaryExchangeError(EXCHANGE, f"malformed {ACCOUNTS} answer") from err

    # --- orders ------------------------------------------------------------------------------

    def _local_problem(self, order: Order) -> str | None:
        """Why Upbit would refuse ``order`` (its price in KRW), checked before sending."""
        market = order.price == 0
        rules = self._rules.get(order.symbol.upper())
        if rules is None:
            return None
        if not market and (problem := rules.price_problem(order.price)) is not None:
            return problem
        problem = rules.problem(order.quantity, None if market else order.price, market=market)
        return None if problem is None else f"{problem} (KRW)"

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        if order.price == 0 and order.side is Side.BUY:
            limit = await self._market_buy_limit(order)
            if limit is None:
                return attrs.evolve(order, status=OrderStatus.REJECTED, reason=(
                    f"not sent: Upbit's book of {order.symbol} holds less than "
                    f"{decimal_text(order.quantity)} to buy at market")), []
            order = attrs.evolve(order, price=limit)
        problem = self._local_problem(order)
        if problem is not None:
            return attrs.evolve(order, status=OrderStatus.REJECTED, reason=problem), []
        identifier = order.client_order_id
        if identifier in self._sent:
            # Sent before and its answer lost: Upbit may hold it. Ask first; a resend of
            # the same identifier could not create a second order, but asking is cheaper.
            detail = await self._detail(identifier)
            if detail is not None:
                return await self._settle(order, detail)
        self._sent.remember(identifier, None)
        session = self.orders.session_if_up()
        try:
            await self.rest.request("POST", ORDERS, body=self._order_body(order), private=True)
        except UpbitError as err:
            if err.name in _CLEAR_REFUSALS:
                return attrs.evolve(order, status=OrderStatus.REJECTED,
                                    reason=f"Upbit refused the order: {err.name}"), []
            # Perhaps the identifier is taken by the order sent before: look it up.
            detail = await self._detail(identifier)
            if detail is not None:
                log.info("upbit: order %s exists already; following it", identifier)
                return await self._settle(order, detail)
            return attrs.evolve(order, status=OrderStatus.REJECTED,
                                reason=f"Upbit refused the order: {err.name}"), []
        except TemporaryExchangeError:
            heard = await self.heard(order, session)
            if heard is not None:
                return heard
            raise
        heard = await self.heard(order, session)
        if heard is not None:
            return heard
        return await self._settle(order)

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        tracked = self.orders.complete(order.client_order_id)
        if tracked is not None:
            return self.told(order, tracked)
        detail = await self._detail(order.client_order_id)
        if detail is None:
            raise PermanentExchangeError(
                EXCHANGE, f"order {order.client_order_id} is not known to Upbit (never placed)")
        return await self._settle(order, detail)

    async def cancel_order(self, order: Order) -> None:
        try:
            await self.rest.request("DELETE", ORDER, {"identifier": order.client_order_id},
                                    private=True)
            return
        except UpbitError as err:
            if err.name == ORDER_NOT_FOUND:
                return
            refusal = err
        detail = await self._detail(order.client_order_id)
        if detail is None or detail.get("state") in FINAL_STATES:
            return
        raise PermanentExchangeError(
            EXCHANGE, f"cancelling order {order.client_order_id}: {refusal.name}")

    # --- helpers -------------------------------------------------------------------------------

    async def _market_buy_limit(self, order: Order) -> Decimal | None:
        """The limit of an IOC buy standing in for a market buy: the ask level that covers
        the quantity, raised by the margin and put on its band's tick (rounded up), or
        ``None`` when the book's 30 levels hold less."""
        market = _market_of(order.symbol)
        books = await self.rest.request("GET", ORDERBOOK, {"markets": market})
        try:
            units = next(b for b in books if b.get("market") == market)["orderbook_units"]
            needed = order.quantity
            for unit in units:
                needed -= _decimal(unit["ask_size"])
                if needed <= 0:
                    level = _decimal(unit["ask_price"])
                    break
            else:
                return None
        except (StopIteration, KeyError, TypeError, AttributeError, InvalidOperation) as err:
            raise TemporaryExchangeError(
                EXCHANGE, f"{ORDERBOOK}: malformed answer for {market}") from err
        limit = level * (1 + Decimal(str(self.settings.market_buy_margin_percent)) / 100)
        rules = self._rules.get(order.symbol.upper()) or KrwRules(order.symbol)
        return rules.round_price(limit, "sell")  # up: the margin is a ceiling, kept whole

    @staticmethod
    def _order_body(order: Order) -> dict[str, str]:
        body = {"market": _market_of(order.symbol),
                "side": "bid" if order.side is Side.BUY else "ask"}
        if order.price > 0:
            body |= {"ord_type": "limit", "price": decimal_text(order.price),
                     "volume": decimal_text(order.quantity), "time_in_force": "ioc"}
        else:  # a market sell, by volume (market buys went out as IOC limits)
            body |= {"ord_type": "market", "volume": decimal_text(order.quantity)}
        body["identifier"] = order.client_order_id
        return body

    def told(self, order: Order, tracked: TrackedOrder) -> tuple[Order, list[Fill]]:
        assert tracked.status is not None and tracked.filled is not None
        final = attrs.evolve(
            order, status=tracked.status, filled_quantity=tracked.filled,
            exchange_order_id=tracked.exchange_order_id or order.exchange_order_id,
            reason=outcome_reason(tracked.status, tracked.filled, order.quantity))
        return final, merge_fills(tracked.fills_of(order, EXCHANGE, CURRENCY))

    async def _detail(self, identifier: str) -> dict[str, Any] | None:
        """The order by identifier, ``None`` when Upbit has none."""
        try:
            detail = await self.rest.request("GET", ORDER, {"identifier": identifier},
                                             private=True)
        except UpbitError as err:
            if err.name == ORDER_NOT_FOUND:
                return None
            raise
        return detail if isinstance(detail, dict) else None

    async def _settle(self, order: Order, detail: dict[str, Any] | None = None
                      ) -> tuple[Order, list[Fill]]:
        """Wait (boundedly) until the order is final, then return it with its fills."""
        queries = 0
        while detail is None or detail.get("state") not in FINAL_STATES:
            if queries >= self.poll_attempts:
                state = detail.get("state") if detail else "unknown"
                raise TemporaryExchangeError(
                    EXCHANGE, f"order {order.client_order_id} is still {state} after "
                    f"{queries} queries; its outcome is not known yet")
            if detail is not None or queries:
                await trio.sleep(self.poll_interval)
            detail = await self._detail(order.client_order_id)
            queries += 1
        try:
            return self._result(order, detail)
        except (KeyError, TypeError, InvalidOperation) as err:
            raise TemporaryExchangeError(
                EXCHANGE, f"order {order.client_order_id}: malformed order details") from err

    def _result(self, order: Order, detail: dict[str, Any]) -> tuple[Order, list[Fill]]:
        executed = _decimal(detail.get("executed_volume"))
        volume = detail.get("volume")
        immediate = detail.get("ord_type") != "limit" or detail.get("time_in_force") in (
            "ioc", "fok")
        status = final_status(str(detail["state"]), executed,
                              None if volume in (None, "") else _decimal(volume), immediate)
        assert status is not None
        final = attrs.evolve(order, status=status, filled_quantity=executed,
                             exchange_order_id=str(detail["uuid"]),
                             reason=outcome_reason(status, executed, order.quantity))
        fills = self._fills(order, detail, executed) if executed else []
        return final, fills

    def _fills(self, order: Order, detail: dict[str, Any], executed: Decimal) -> list[Fill]:
        """The order's trades as fills, its ``paid_fee`` shared by their ``funds`` (the
        last trade takes what rounding leaves, so the fees add up exactly); the stream's
        fills complete a list that lags. Should they not add up, the order's totals
        stand in as one fill: no quantity or fee is ever lost."""
        trades = [t for t in detail.get("trades") or () if isinstance(t, dict)]
        paid_fee = _decimal(detail.get("paid_fee"))
        listed: dict[str, Fill] = {}
        total_funds = sum((_decimal(t.get("funds")) for t in trades), Decimal(0))
        charged = Decimal(0)
        for number, trade in enumerate(trades, 1):
            if number == len(trades):
                fee = paid_fee - charged
            elif total_funds:
                fee = (paid_fee * _decimal(trade.get("funds")) / total_funds).quantize(
                    Decimal("0.00000001"))
            else:
                fee = Decimal(0)
            charged += fee
            listed[str(trade["uuid"])] = self._fill(
                order, trade["price"], trade["volume"], fee, trade.get("created_at"))
        tracked = self.orders.get(order.client_order_id)
        heard = tracked.fills_of(order, EXCHANGE, CURRENCY) if tracked else {}
        fills = merge_fills(listed, heard)
        if sum((f.quantity for f in fills), Decimal(0)) == executed:
            return fills
        log.info("upbit: trades of order %s incomplete; using its totals",
                 order.client_order_id)
        funds = total_funds or _decimal(detail.get("executed_funds"))
        price = funds / executed if funds else order.price
        return [self._fill(order, price, executed, paid_fee, detail.get("created_at"))]

    @staticmethod
    def _fill(order: Order, price: Any, quantity: Any, fee: Decimal, created: Any) -> Fill:
        return Fill(
            order_id=order.client_order_id,
            trade_id=order.trade_id,
            exchange=EXCHANGE,
            symbol=order.symbol,
            side=order.side,
            price=_decimal(price),  # KRW: the executor converts it
            quantity=_decimal(quantity),
            fee=fee,
            fee_asset=CURRENCY,
            timestamp=_timestamp(created),
        )
