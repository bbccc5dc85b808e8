"""A Binance spot trading account (``arbotd.ExchangeAccount``) for live mode.

Facts relied on (exchange-protocols.md sections 1.2 and 1.3, Binance ``rest-api.md`` and
``filters.md``):

* Trading rules come from ``GET /api/v3/exchangeInfo?symbols=[...]``: ``status``
  (``TRADING`` when open), and the filters ``PRICE_FILTER`` (``tickSize``), ``LOT_SIZE``
  (``stepSize``, ``minQty``, ``maxQty``), ``MARKET_LOT_SIZE`` (``maxQty`` of market
  orders) and ``NOTIONAL`` (``minNotional``; older listings carry ``MIN_NOTIONAL``).
* ``POST /api/v3/order``: an immediate-or-cancel order is ``type=LIMIT`` with
  ``timeInForce=IOC``; a ``MARKET`` order's ``quantity`` is in the base currency (the
  quote-currency form is the separate ``quoteOrderQty``), so market buys need no
  conversion. ``newOrderRespType=FULL`` answers with the final status and the ``fills``
  with their commission, so a placement usually needs no second request.
* An IOC or market order that fills partly ends ``EXPIRED``; one that finds nothing at
  its price ends ``EXPIRED`` with ``executedQty`` 0.
* ``-2010`` (NEW_ORDER_REJECTED) is a refused order ("Account has insufficient balance
  for requested action.", ...), except "Duplicate order sent.", which says an order
  with this client order id exists: it is looked up instead of placed again. ``-1013``
  is a filter failure. ``-2013`` (NO_SUCH_ORDER) on a query means the order never
  reached Binance; ``-2011`` on a cancel means it is no longer open.
* ``newClientOrderId`` is unique only among *open* orders: Binance accepts a second
  order with the id of one already filled or expired. A retried placement therefore
  first asks whether the id is known, and only sends when Binance has never seen it
  and the earlier attempt's ``recvWindow`` has passed (after that Binance refuses the
  earlier request if it is still in flight).
* ``GET /api/v3/order`` (by ``origClientOrderId``) answers the order without fills;
  ``GET /api/v3/myTrades?orderId=`` lists its executions with ``commission`` and
  ``commissionAsset``.
* The user data stream (:mod:`arbotd_binance.private`) reports every execution with the
  same trade id as ``myTrades``' ``id`` and the ``FULL`` answer's ``tradeId``: fills
  heard there and read from REST are merged by it. An order whose answer is lost or not
  final yet is followed on the stream first, and asked of REST only when the stream is
  down or does not tell its outcome within ``stream_wait`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import httpx
import orjson
import trio

from arbotd import (
    Fill,
    Order,
    OrderStatus,
    PermanentExchangeError,
    TemporaryExchangeError,
)
from arbotd.exchange import (
    RecentIds,
    RequestBudget,
    SymbolRules,
    TrackedOrder,
    VenueAccount,
    decimal_text,
    merge_fills,
)
from arbotd_binance.config import BinanceConfig
from arbotd_binance.orders import ended, final_status
from arbotd_binance.private import BinanceOrderStream
from arbotd_binance.rest import BinanceNotSent, BinanceRejection, BinanceRest
from arbotd_binance.symbols import to_binance

__all__ = ["BinanceAccount", "UnknownOrder", "order_state", "parse_exchange_info"]

log = logging.getLogger(__name__)

EXCHANGE = "binance"

NEW_ORDER_REJECTED = -2010
FILTER_FAILURE = -1013
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_SYMBOL = -1121
DUPLICATE_ORDER = "duplicate order sent"


class UnknownOrder(PermanentExchangeError):
    """Binance does not know the order (``-2013``): it was never placed."""


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as err:
        raise ValueError(f"{what} is not a number: {value!r}") from err


def parse_exchange_info(
    data: Mapping[str, Any], wanted: Mapping[str, str]
) -> dict[str, SymbolRules]:
    """``GET /api/v3/exchangeInfo`` -> rules of the ``wanted`` symbols (Binance form ->
    exchange-neutral form), keyed by the neutral name. Symbols not in ``wanted`` are
    ignored; filters arbotd does not apply (PERCENT_PRICE, ICEBERG_PARTS...) too."""
    rules: dict[str, SymbolRules] = {}
    for entry in data["symbols"]:
        neutral = wanted.get(entry["symbol"])
        if neutral is None:
            continue
        fields: dict[str, Any] = {}
        for f in entry.get("filters", ()):
            kind = f.get("filterType")
            if kind == "PRICE_FILTER":
                fields["tick_size"] = _decimal(f["tickSize"], "tickSize")
            elif kind == "LOT_SIZE":
                fields["step_size"] = _decimal(f["stepSize"], "stepSize")
                fields["min_qty"] = _decimal(f["minQty"], "minQty")
                max_qty = _decimal(f["maxQty"], "maxQty")
                fields["max_qty"] = max_qty if max_qty > 0 else None
            elif kind == "MARKET_LOT_SIZE":
                max_qty = _decimal(f["maxQty"], "maxQty")
                fields["max_market_qty"] = max_qty if max_qty > 0 else None
            elif kind in ("NOTIONAL", "MIN_NOTIONAL"):
                fields["min_notional"] = _decimal(f["minNotional"], "minNotional")
        status = str(entry.get("status", ""))
        trading = status == "TRADING" and entry.get("isSpotTradingAllowed", True) is not False
        rules[neutral] = SymbolRules(symbol=neutral, trading=trading, status=status, **fields)
    return rules


def order_state(order: Order, data: Mapping[str, Any]) -> tuple[Order, bool]:
    """An order answer (placement or query) -> ``(order updated, whether it is final)``."""
    executed = _decimal(data["executedQty"], "executedQty")
    exchange_id = str(data["orderId"])
    final = final_status(data["status"], executed)
    if final is None:
        return attrs.evolve(order, filled_quantity=executed,
                            exchange_order_id=exchange_id), False
    return ended(order, final, executed, exchange_id), True


def _fill(order: Order, price: Any, qty: Any, fee: Any, asset: Any, ms: Any) -> Fill:
    return Fill(
        order_id=order.client_order_id,
        trade_id=order.trade_id,
        exchange=EXCHANGE,
        symbol=order.symbol,
        side=order.side,
        price=_decimal(price, "price"),
        quantity=_decimal(qty, "qty"),
        fee=_decimal(fee, "commission"),
        fee_asset=str(asset),
        timestamp=int(ms) / 1000.0,
    )


class BinanceAccount(VenueAccount[BinanceConfig, BinanceRest]):
    """Binance spot trading through the REST API: an ``arbotd.ExchangeAccount``.

    ``symbols`` tells which symbols to load rules for at :meth:`open` (the symbols the
    strategies trade). Two accounts built from equal settings compare equal, so a reload
    that leaves ``[exchanges.binance]`` alone keeps the account and its loaded rules.
    ``poll_interval``/``poll_attempts`` bound how long an order that is not final yet is
    polled before :class:`arbotd.TemporaryExchangeError` says its outcome is unknown.
    """

    name = EXCHANGE
    stream_title = "the user data stream"

    def __init__(
        self,
        config: BinanceConfig,
        *,
        symbols: Callable[[], Sequence[str]] = tuple,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.2,
        poll_attempts: int = 15,
        budget: RequestBudget | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        stream_wait: float = 1.0,
        stream_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._symbols = symbols
        self.poll_interval = poll_interval
        self.poll_attempts = poll_attempts
        self._budget = budget
        # client order id -> local time it was last sent
        self._sent: RecentIds[float] = RecentIds()
        super().__init__(config, clock=clock, transport=transport, stream_wait=stream_wait,
                         stream_options=stream_options)

    # --- set-up ------------------------------------------------------------------------

    def make_order_stream(self, url: str, **options: Any) -> BinanceOrderStream:
        return BinanceOrderStream(
            self.orders, url, credentials=self.credentials, timestamp_ms=self.timestamp_ms,
            recv_window_ms=self.settings.recv_window_ms,
            key_names=self.settings.credential_variables(), **options)

    def make_rest(self) -> BinanceRest:
        config = self.settings
        key, secret = self.credentials()
        rest = BinanceRest(
            key, secret, config.resolved_rest_url(),
            recv_window=config.recv_window_ms,
            timeout=config.request_timeout_seconds,
            budget_fraction=config.request_budget_fraction,
            budget=self._budget,
            clock=self.clock,
            transport=self._transport,
        )
        # One budget per account, kept when the client is recreated: the weight used
        # this minute and a running ban outlive a reconnect.
        self._budget = rest.budget
        return rest

    # --- rules -------------------------------------------------------------------------

    async def load_rules(self, symbols: Sequence[str] | None = None
                         ) -> dict[str, SymbolRules]:
        """Load the trading rules of ``symbols`` (exchange-neutral names; by default those
        the strategies trade) and keep them for :meth:`rules`; symbols Binance does not
        list are logged and left out."""
        wanted = {to_binance(s): s for s in (self._symbols() if symbols is None else symbols)}
        if not wanted:
            self._rules = {}
            return {}
        listed = orjson.dumps(sorted(wanted)).decode()
        try:
            data = await self.rest.public("GET", "/api/v3/exchangeInfo", {"symbols": listed})
        except BinanceRejection as err:
            if err.code != BAD_SYMBOL:
                raise
            # One unlisted symbol makes Binance refuse the whole list: take every symbol
            # (the same weight) and keep those wanted.
            data = await self.rest.public("GET", "/api/v3/exchangeInfo")
        try:
            rules = parse_exchange_info(data, wanted)
        except (KeyError, TypeError, ValueError) as err:
            raise TemporaryExchangeError(
                EXCHANGE, f"malformed /api/v3/exchangeInfo answer ({err})") from err
        missing = sorted(set(wanted.values()) - set(rules))
        if missing:
            log.warning("binance does not list %s: no trading there", ", ".join(missing))
        for symbol, rule in sorted(rules.items()):
            if not rule.trading:
                log.warning("binance: %s is not trading (status %s)", symbol, rule.status)
        self._rules = rules
        return rules

    # --- account -----------------------------------------------------------------------

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        return await self.rest.account()

    # --- orders ------------------------------------------------------------------------

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        refused = self.refused_by_rules(order)
        if refused is not None:
            return refused
        market = order.price == 0
        cid = order.client_order_id
        if cid in self._sent:
            earlier = await self._known(order)
            if earlier is not None:
                return earlier
        params: dict[str, Any] = {
            "symbol": to_binance(order.symbol),
            "side": order.side.value.upper(),
            "type": "MARKET" if market else "LIMIT",
            "quantity": decimal_text(order.quantity),
            "newClientOrderId": cid,
            "newOrderRespType": "FULL",
        }
        if not market:
            params["timeInForce"] = "IOC"
            params["price"] = decimal_text(order.price)
        self._sent.remember(cid, self.clock())
        session = self.orders.session_if_up()
        try:
            data = await self.rest.signed("POST", "/api/v3/order", params)
        except BinanceNotSent:
            self._sent.forget(cid)  # certainly not placed: a retry may send it
            raise
        except TemporaryExchangeError:
            # The answer was lost (a timeout, a 5xx, -1007): the stream may have seen the
            # order end; otherwise the caller asks query_order.
            heard = await self.heard(order, session)
            if heard is not None:
                return heard
            raise
        except BinanceRejection as err:
            if err.code == NEW_ORDER_REJECTED and DUPLICATE_ORDER in err.msg.lower():
                log.info("binance: order %s exists already; looking it up", cid)
                return await self._settle(order)
            if err.code in (NEW_ORDER_REJECTED, FILTER_FAILURE):
                log.info("binance: order %s refused: %s", cid, err.msg)
                self._sent.forget(cid)
                return attrs.evolve(order, status=OrderStatus.REJECTED,
                                    reason=f"refused by Binance: {err.msg}"), []
            raise
        try:
            updated, final = order_state(order, data)
            if final and "fills" in data:
                fills = {
                    str(f["tradeId"]): _fill(order, f["price"], f["qty"], f["commission"],
                                             f["commissionAsset"], data["transactTime"])
                    for f in data["fills"]
                }
                if sum((f.quantity for f in fills.values()), Decimal(0)) == \
                        updated.filled_quantity:
                    _log_outcome(updated)
                    return updated, merge_fills(fills)
        except (KeyError, TypeError, ValueError) as err:
            log.warning("binance: malformed answer to order %s (%s); looking it up", cid, err)
        # Not final yet (or its fills not all in the answer): the stream tells first.
        heard = await self.heard(order, session)
        if heard is not None:
            return heard
        return await self._settle(order)

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        """Binance answers ``-2013`` for a request still on its way inside it (after a 5xx
        or ``-1007``), so "unknown" means "never placed" only once the request this
        account sent has outlived its ``recvWindow``: until then, wait and ask again. An
        order the user data stream has told all of needs no request."""
        tracked = self.orders.complete(order.client_order_id)
        if tracked is not None:
            return self.told(order, tracked)
        try:
            return await self._settle(order)
        except UnknownOrder:
            left = self._window_left(order.client_order_id)
            if left <= 0:
                raise
        log.info("binance: order %s unknown yet; asking again in %.1f s, when its request "
                 "can no longer be accepted", order.client_order_id, left)
        await trio.sleep(left)
        return await self._settle(order)

    async def cancel_order(self, order: Order) -> None:
        try:
            await self.rest.signed("DELETE", "/api/v3/order", {
                "symbol": to_binance(order.symbol),
                "origClientOrderId": order.client_order_id,
            })
        except BinanceRejection as err:
            if err.code == CANCEL_REJECTED:
                return  # already final (filled, expired) or never placed: nothing open
            raise

    # --- internals ---------------------------------------------------------------------

    def told(self, order: Order, tracked: TrackedOrder) -> tuple[Order, list[Fill]]:
        assert tracked.status is not None and tracked.filled is not None
        updated = ended(order, tracked.status, tracked.filled, tracked.exchange_order_id,
                        tracked.reason)
        _log_outcome(updated)
        return updated, merge_fills(tracked.fills_of(order, EXCHANGE))

    async def _known(self, order: Order) -> tuple[Order, list[Fill]] | None:
        """For a client order id sent before: its state if Binance has it, ``None`` when
        it may be sent (Binance has not seen it and the earlier request has expired)."""
        cid = order.client_order_id
        try:
            return await self._settle(order)
        except UnknownOrder:
            pass
        left = self._window_left(cid)
        if left > 0:
            window = self.settings.recv_window_ms / 1000.0
            raise TemporaryExchangeError(
                EXCHANGE,
                f"order {cid}: an earlier request may still reach Binance; not sending "
                f"again before its {window:g} s receive window has passed",
                retry_after=left,
            )
        return None

    def _window_left(self, cid: str) -> float:
        """Seconds until Binance can no longer accept the last request this account sent
        for ``cid`` (0 when none is remembered)."""
        sent = self._sent.get(cid)
        if sent is None:
            return 0.0
        return max(sent + self.settings.recv_window_ms / 1000.0 - self.clock(), 0.0)

    async def _settle(self, order: Order) -> tuple[Order, list[Fill]]:
        """The final state and fills of an order placed earlier, polling while it is open
        (an IOC order is final almost at once)."""
        cid = order.client_order_id
        symbol = to_binance(order.symbol)
        status = "unknown"
        for attempt in range(self.poll_attempts):
            if attempt:
                await trio.sleep(self.poll_interval)
            try:
                data = await self.rest.signed(
                    "GET", "/api/v3/order", {"symbol": symbol, "origClientOrderId": cid})
            except BinanceRejection as err:
                if err.code == NO_SUCH_ORDER:
                    raise UnknownOrder(
                        EXCHANGE, f"order {cid} on {symbol} is unknown to Binance (never "
                        f"placed): {err.msg}") from err
                raise
            try:
                updated, final = order_state(order, data)
                status = str(data["status"])
                if not final:
                    continue
                listed = await self._fills(updated) if updated.filled_quantity > 0 else {}
            except (KeyError, TypeError, ValueError) as err:
                raise TemporaryExchangeError(
                    EXCHANGE, f"order {cid}: malformed answer ({err})") from err
            # Executions the stream heard and myTrades does not list yet complete it.
            tracked = self.orders.get(cid)
            fills = merge_fills(listed, tracked.fills_of(order, EXCHANGE) if tracked else {})
            if sum((f.quantity for f in fills), Decimal(0)) == updated.filled_quantity:
                _log_outcome(updated)
                return updated, fills
            status = "final, its executions not all listed yet"
        raise TemporaryExchangeError(
            EXCHANGE, f"order {cid} on {symbol} not settled after {self.poll_attempts} "
            f"queries (status {status})", retry_after=self.poll_interval,
        )

    async def _fills(self, order: Order) -> dict[str, Fill]:
        """The order's executions (``myTrades``), by trade id."""
        trades = await self.rest.signed("GET", "/api/v3/myTrades", {
            "symbol": to_binance(order.symbol), "orderId": order.exchange_order_id,
        })
        return {
            str(t["id"]): _fill(order, t["price"], t["qty"], t["commission"],
                                t["commissionAsset"], t["time"])
            for t in trades
            if str(t["orderId"]) == order.exchange_order_id
        }


def _log_outcome(order: Order) -> None:
    log.info("binance: order %s %s %s %s at %s: %s, filled %s", order.client_order_id,
             order.side.value, decimal_text(order.quantity), order.symbol,
             "market" if order.price == 0 else decimal_text(order.price),
             order.status.value, decimal_text(order.filled_quantity))
