"""Driving a two-legged trade to a final state, the same way in every mode.

Both legs go out at once as immediate-or-cancel limit orders at the trade's limit prices
(the worst book levels its signal takes) widened by the signal's tolerance. Then:

- both legs filled the same quantity: ``completed`` (through ``partially_filled`` when
  less than planned);
- the legs filled different quantities: the difference is an open position. If the price
  of the missing leg is still within the stop-loss of its planned price, the missing
  quantity is sent at market ("hedge"); whatever is still open after that is reversed at
  market on the venue where it was filled ("unwind"). A trade left with a matched
  quantity ends ``completed``; one with none ends ``unwound``, its loss recorded;
- nothing filled: ``failed``.

Orders are never abandoned in flight: placement is shielded from cancellation, and an
emergency stop (``flatten_only``) cancels a trade whose orders have not left yet, skips
the hedge and unwinds at once. Client order ids are derived from the trade id, so a
retried request cannot create a second order.

On a venue quoted in another currency (:mod:`arbotd.fx`) every order carries the rate it
is priced and its fills converted at, fixed before it is recorded: an entry leg the
trade's (the signal's), a hedge or an unwind the live one (``order_rate``), so a trade
reconciled after a restart converts its fills at the rates it was sent with.

Write-ahead: before any order is sent (the entry legs, a hedge, an unwind), the trade
with that order is handed to ``commit``, which writes it durably (storage's
``commit_trade``). An order that could not be recorded is not sent: after a crash the
daemon must find every order that may exist on an exchange.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

import attrs
import trio

from arbotd._errors import ArbotError, PermanentExchangeError, TemporaryExchangeError
from arbotd._interfaces import Executor
from arbotd._ledger import Ledger
from arbotd._model import (
    Fill,
    Order,
    OrderStatus,
    Side,
    Trade,
    TradeState,
    split_symbol,
    to_decimal,
)
from arbotd.exchange.rules import decimal_text

__all__ = ["TradeRunner", "client_order_id"]

log = logging.getLogger(__name__)

_UNWIND_ATTEMPTS = 4


def client_order_id(trade_id: int, leg: str) -> str:
    """The client order id of a trade's leg: the same trade and leg always give the same
    id, so an exchange refuses a duplicate instead of filling it twice."""
    return f"arb{trade_id}{leg}"


class TradeRunner:
    """Executes trades through one executor and books their fills in the ledger."""

    def __init__(
        self,
        *,
        executor: Executor,
        ledger: Ledger,
        report: Callable[[Trade], None],
        clock: Callable[[], float],
        stop_loss_fraction: Callable[[], float | None] = lambda: None,
        retry_delay: float = 0.5,
        commit: Callable[[Trade], Awaitable[None]] | None = None,
        order_rate: Callable[[str, str], Decimal | None] = lambda exchange, side: None,
    ) -> None:
        self.executor = executor
        self.ledger = ledger
        self.report = report
        self.clock = clock
        self.stop_loss_fraction = stop_loss_fraction
        self.retry_delay = retry_delay
        self.commit = commit
        # The live conversion rate of a venue quoted in another currency for an order of
        # a side (Engine.order_rate), None elsewhere.
        self.order_rate = order_rate
        self.flatten_only = False
        # What an emergency stop did (see flatten_only): trades it cancelled before their
        # orders left, and trades whose hedge it skipped so that their position was
        # unwound instead.
        self.stop_cancelled: set[int] = set()
        self.stop_flattened: set[int] = set()
        # Trades an operator asked to cancel (``POST /batch/trades``): not sent if their
        # orders have not left; ended ``cancelled`` if nothing of them filled.
        self.cancel_requested: set[int] = set()

    async def run(self, trade: Trade, tolerance: float = 0.0) -> Trade:
        """Execute a ``planned`` trade and return it in a final state, or, when an
        exchange never tells the outcome of one of its orders, in its last known state
        with the reason (the trade must then be reconciled before trading goes on)."""
        tol = to_decimal(tolerance)
        buy = _order(trade, Side.BUY, trade.buy_exchange, trade.quantity, "entry", "b",
                     price=trade.buy_limit * (1 + tol), rate=trade.buy_rate)
        sell = _order(trade, Side.SELL, trade.sell_exchange, trade.quantity, "entry", "s",
                      price=trade.sell_limit * (1 - tol), rate=trade.sell_rate)
        submitted = trade.advance(TradeState.SUBMITTED, orders=(buy, sell))
        if trade.id in self.cancel_requested:
            return self._finish(trade, TradeState.CANCELLED, "cancelled before it was sent")
        if self.flatten_only:
            return self._cancel_by_stop(trade)
        try:
            await self._commit(submitted)
        except ArbotError as err:
            log.error("trade %d: not sent, it could not be recorded first: %s", trade.id, err)
            return self._finish(trade, TradeState.FAILED,
                                f"not sent: the trade could not be recorded first ({err})")
        if submitted.id in self.cancel_requested:  # asked while it was being recorded
            return self._finish(submitted, TradeState.CANCELLED, "cancelled before it was sent")
        if self.flatten_only:  # the stop came while the trade was being recorded
            return self._cancel_by_stop(submitted)
        trade = self._update(submitted)
        results: dict[str, tuple[Order, list[Fill]]] = {}
        # Once sent, an order's outcome must be known before anything else happens.
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for order in (buy, sell):
                    nursery.start_soon(self._place_into, order, results)
        # Booked buy first, whichever leg finished first, so records never depend on
        # scheduling.
        for order in (buy, sell):
            trade = self._book(trade, *results[order.client_order_id])
        with trio.CancelScope(shield=True):
            return await self._settle(trade)

    async def recover(self, trade: Trade) -> Trade:
        """Bring a trade that a crash left unfinished to a final state: ask the exchange
        for the outcome of orders sent but never answered, then flatten whatever is open.
        There is no hedging: prices have moved on since the plan. A trade whose order
        the exchange still will not tell about comes back unfinished."""
        self.flatten_only = True
        if trade.state is TradeState.PLANNED:
            return self._finish(trade, TradeState.CANCELLED, "not sent before a restart")
        with trio.CancelScope(shield=True):
            unknown = [o for o in trade.orders if o.status is OrderStatus.NEW]
            never_placed = 0
            for order in unknown:
                placed, fills = await self._query(order)
                if placed.status is OrderStatus.REJECTED and not fills:
                    never_placed += 1
                trade = self._update(self._book(trade, placed, fills))
            if unknown and never_placed == len(trade.orders) and not trade.fills:
                # Recorded, then stopped before any order reached an exchange.
                return self._finish(trade, TradeState.CANCELLED,
                                    "its orders were never placed before a restart")
            return await self._settle(trade)

    # --- settling -------------------------------------------------------------------------

    async def _settle(self, trade: Trade) -> Trade:
        bought = trade.filled(Side.BUY)
        sold = trade.filled(Side.SELL)
        unknown = [o for o in trade.orders if o.status is OrderStatus.NEW]
        if unknown:
            # Not final: an order that may have filled must not be forgotten. The trade
            # stays open (and stored as such), trading stops, and the next start
            # reconciles it with the exchange.
            ids = ", ".join(o.client_order_id for o in unknown)
            trade = attrs.evolve(
                trade, reason=f"outcome of order {ids} unknown: reconciled at the next start"
            )
            return self._update(trade)
        if bought == 0 and sold == 0:
            if trade.id in self.cancel_requested and trade.state is TradeState.SUBMITTED:
                return self._finish(trade, TradeState.CANCELLED,
                                    "cancelled while its orders were out; nothing filled")
            reasons = "; ".join(
                f"{o.side} on {o.exchange}: {o.reason or o.status}" for o in trade.orders
            )
            return self._finish(trade, TradeState.FAILED, f"no leg filled ({reasons})")
        if bought == sold == trade.quantity and trade.state is not TradeState.UNWINDING:
            return self._finish(trade, TradeState.COMPLETED)
        if trade.state is TradeState.SUBMITTED:
            trade = self._update(trade.advance(TradeState.PARTIALLY_FILLED))
        if trade.state is TradeState.UNWINDING:
            trade = await self._unwind(trade)
        elif _open_position(trade) != 0:
            trade = await self._hedge(trade)
            if _open_position(trade) != 0:
                if min(trade.filled(Side.BUY, "hedge") + bought,
                       trade.filled(Side.SELL, "hedge") + sold) == 0:
                    trade = self._update(trade.advance(TradeState.UNWINDING))
                trade = await self._unwind(trade)
        position = _open_position(trade)
        dust = ""
        if position != 0:
            if not _rounded_away(trade):
                return self._finish(
                    trade,
                    TradeState.FAILED,
                    f"unwind incomplete: {position} {trade.symbol} still open, "
                    "needs attention",
                )
            last = trade.orders[-1]
            base, _ = split_symbol(trade.symbol)
            dust = (f"; {decimal_text(abs(position))} {base} below the lot size left on "
                    f"{last.exchange}")
        if trade.state is TradeState.UNWINDING:
            return self._finish(trade, TradeState.UNWOUND,
                                f"one leg did not fill: unwound{dust}")
        matched = min(bought + trade.filled(Side.BUY, "hedge"),
                      sold + trade.filled(Side.SELL, "hedge"))
        reason = None if matched == trade.quantity else f"partially filled: {matched}"
        if dust:
            reason = f"{reason or 'completed'}{dust}"
        return self._finish(trade, TradeState.COMPLETED, reason)

    async def _hedge(self, trade: Trade) -> Trade:
        """Send the missing quantity of the short leg at market, if its price has not
        moved against the plan by more than the stop-loss."""
        position = _open_position(trade)
        stop = self.stop_loss_fraction()
        if self.flatten_only:
            self.stop_flattened.add(trade.id)
            return trade
        if stop is None or trade.id in self.cancel_requested:
            return trade
        if position > 0:  # bought more than sold: sell the rest where we planned to sell
            side, exchange, planned = Side.SELL, trade.sell_exchange, trade.planned_sell_price
        else:
            side, exchange, planned = Side.BUY, trade.buy_exchange, trade.planned_buy_price
        price = self.executor.reference_price(exchange, trade.symbol, side.value)
        if price is None:
            return trade
        adverse = (planned - to_decimal(price)) / planned
        if side is Side.BUY:
            adverse = -adverse
        if adverse > to_decimal(stop):
            log.warning(
                "trade %d: %s on %s moved %.3f %% against the plan, beyond the stop-loss: "
                "unwinding instead of hedging",
                trade.id, trade.symbol, exchange, float(adverse) * 100,
            )
            return trade
        # The whole difference of the legs: a hedged trade ends like one whose legs both
        # filled, a buy's fee in the base coin being a cost like any other fee.
        order = _order(trade, side, exchange, abs(_leg_difference(trade)), "hedge", "h",
                       rate=self._live_rate(trade, exchange, side))
        return await self._send(trade, order)

    async def _unwind(self, trade: Trade) -> Trade:
        """Reverse the open position at market on the venue where it was taken.

        Unwind orders are numbered on from those the trade already has: after a restart
        the exchange knows the earlier ones, and reusing an id would be refused as a
        duplicate (whose fills would then be booked twice) or, on Binance, which only
        keeps ids of open orders unique, place a second order under the same id."""
        first = sum(1 for o in trade.orders if o.purpose == "unwind")
        for attempt in range(_UNWIND_ATTEMPTS):
            position = _open_position(trade)
            if position == 0 or _rounded_away(trade):
                return trade
            if position > 0:
                side, exchange = Side.SELL, trade.buy_exchange
            else:
                side, exchange = Side.BUY, trade.sell_exchange
            leg = f"u{first + attempt}"
            order = _order(trade, side, exchange, abs(position), "unwind", leg,
                           rate=self._live_rate(trade, exchange, side))
            trade = await self._send(trade, order)
            if _open_position(trade) != 0 and not _rounded_away(trade):
                await trio.sleep(self.retry_delay * 2**attempt)
        return trade

    def _live_rate(self, trade: Trade, exchange: str, side: Side) -> Decimal | None:
        """The rate of a hedge or unwind on ``exchange``: the live one of its side, or,
        without one (its feed is down), the rate the trade's leg there was priced at; for
        a venue quoted in the symbol's own currency, ``None``."""
        rate = self.order_rate(exchange, side.value)
        if rate is not None:
            return rate
        if exchange == trade.buy_exchange and trade.buy_rate is not None:
            return trade.buy_rate
        return trade.sell_rate if exchange == trade.sell_exchange else None

    async def _send(self, trade: Trade, order: Order) -> Trade:
        """Record, then place one order (a hedge or an unwind) and book its outcome. An
        order that cannot be recorded is not sent: the trade comes back without it."""
        with_order = trade.with_orders(order)
        try:
            await self._commit(with_order)
        except ArbotError as err:
            log.error("trade %d: %s order %s not sent, it could not be recorded first: %s",
                      trade.id, order.purpose, order.client_order_id, err)
            return trade
        trade = self._update(with_order)
        results: dict[str, tuple[Order, list[Fill]]] = {}
        await self._place_into(order, results)
        placed, fills = results[order.client_order_id]
        return self._update(self._book(trade, placed, fills))

    # --- orders ----------------------------------------------------------------------------

    async def _place_into(
        self, order: Order, results: dict[str, tuple[Order, list[Fill]]]
    ) -> None:
        results[order.client_order_id] = await self._place(order)

    async def _place(self, order: Order) -> tuple[Order, list[Fill]]:
        if order.purpose == "entry" and order.trade_id in self.cancel_requested:
            # Asked to cancel between the record and this placement: it never leaves.
            return attrs.evolve(order, status=OrderStatus.CANCELLED,
                                reason="cancelled before it was sent"), []
        try:
            return await self.executor.place_order(order)
        except PermanentExchangeError as err:
            return attrs.evolve(order, status=OrderStatus.REJECTED, reason=str(err)), []
        except TemporaryExchangeError as err:
            log.warning("order %s: outcome unknown (%s), asking the exchange",
                        order.client_order_id, err)
        return await self._query(order)

    async def _query(self, order: Order) -> tuple[Order, list[Fill]]:
        """The outcome of an order whose answer was lost, asked of the exchange with
        backoff; still ``new`` (unknown) if the exchange never says."""
        for attempt in range(_UNWIND_ATTEMPTS):
            await trio.sleep(self.retry_delay * 2**attempt)
            try:
                return await self.executor.query_order(order)
            except PermanentExchangeError as err:
                return attrs.evolve(order, status=OrderStatus.REJECTED, reason=str(err)), []
            except TemporaryExchangeError as err:
                log.warning("order %s: still unknown (%s)", order.client_order_id, err)
        return attrs.evolve(order, reason="outcome unknown"), []

    def _book(self, trade: Trade, order: Order, fills: list[Fill]) -> Trade:
        for fill in fills:
            self.ledger.apply_fill(fill)
        return trade.with_orders(order).with_fills(*fills)

    # --- reporting --------------------------------------------------------------------------

    async def _commit(self, trade: Trade) -> None:
        if self.commit is not None:
            await self.commit(trade)

    def _cancel_by_stop(self, trade: Trade) -> Trade:
        self.stop_cancelled.add(trade.id)
        return self._finish(trade, TradeState.CANCELLED,
                            "cancelled by an emergency stop before its orders were sent")

    def _update(self, trade: Trade) -> Trade:
        self.report(trade)
        return trade

    def _finish(self, trade: Trade, state: TradeState, reason: str | None = None) -> Trade:
        trade = trade.advance(state, completed_at=self.clock(), reason=reason)
        self.report(trade)
        return trade


def _order(
    trade: Trade,
    side: Side,
    exchange: str,
    quantity: Decimal,
    purpose: str,
    leg: str,
    *,
    price: Decimal = Decimal(0),
    rate: Decimal | None = None,
) -> Order:
    """An order of ``trade``: an entry leg at a limit ``price``, or a hedge or unwind at
    market (price 0); ``rate`` on a venue quoted in another currency."""
    return Order(
        client_order_id=client_order_id(trade.id, leg),
        trade_id=trade.id,
        exchange=exchange,
        symbol=trade.symbol,
        side=side,
        price=price,
        quantity=quantity,
        purpose=purpose,
        rate=rate,
    )


def _leg_difference(trade: Trade) -> Decimal:
    """Base currency bought minus sold over every fill of the trade."""
    position = Decimal(0)
    for fill in trade.fills:
        position += fill.quantity if fill.side is Side.BUY else -fill.quantity
    return position


def _open_position(trade: Trade) -> Decimal:
    """The base currency the trade holds: 0 when flat.

    A buy whose fee is charged in the base coin (Bybit's and OKX's spot default,
    Binance's unless fees are paid in BNB) delivers its quantity less that fee, so a
    long position is smaller than the difference of the legs by such fees: selling the
    whole difference back would sell coins that never arrived, which an account holding
    no other coins of that kind refuses."""
    position = _leg_difference(trade)
    if position <= 0:
        return position
    base, _ = split_symbol(trade.symbol)
    charged = sum(
        (f.fee for f in trade.fills if f.side is Side.BUY and f.fee_asset == base),
        Decimal(0),
    )
    return max(position - charged, Decimal(0))


def _rounded_away(trade: Trade) -> bool:
    """Whether what is still open is only what the exchange's lot size rounded off: the
    trade's last order unwound the whole position and filled all it was sent, so the
    rest is below the smallest quantity an order can carry."""
    if not trade.orders:
        return False
    last = trade.orders[-1]
    return last.purpose == "unwind" and last.status is OrderStatus.FILLED
