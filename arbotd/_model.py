"""Value types: quotes, signals, orders, fills, trades and balances.

Prices and sizes on the hot path (quotes, signals) are floats: they are compared and
multiplied once per quote, and the exchanges send them as decimal strings that fit a
double. Money that is accounted for (fills, fees, balances) is :class:`~decimal.Decimal`,
so a ledger reconciles to the last digit.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import attrs

__all__ = [
    "FINAL_STATES",
    "Balance",
    "Fill",
    "Order",
    "OrderStatus",
    "Quote",
    "Side",
    "Signal",
    "Trade",
    "TradeState",
    "split_symbol",
    "to_decimal",
]

# Longest first, so that "BTCUSDT" splits on "USDT" rather than "T".
_QUOTE_ASSETS = tuple(
    sorted(
        ("USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "USD", "EUR", "TRY", "BRL", "BTC",
         "ETH", "BNB", "KRW", "JPY", "GBP"),
        key=len,
        reverse=True,
    )
)


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTCUSDT"`` -> ``("BTC", "USDT")``. Raises ``ValueError`` for a symbol whose quote
    currency is not known."""
    for quote in _QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot tell the base and quote currency of {symbol!r}")


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """The decimal a float was written as (``0.1`` -> ``Decimal("0.1")``, not the binary
    expansion)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@attrs.frozen(slots=True)
class Quote:
    """Best bid and ask of one symbol on one exchange, and, from feeds that keep an order
    book, its top levels.

    ``exchange_ts`` is the exchange's event time and ``received_ts`` the local time the
    message arrived, both in seconds since the epoch (virtual time in a backtest).
    ``bids`` and ``asks``, when not ``None``, are the book's top levels as ``(price,
    size)`` pairs, best first (so ``bids[0]`` is ``(bid, bid_size)``); ``None`` from feeds
    of the best level only.

    A quote of a venue that quotes in another currency (:mod:`arbotd.fx`) is converted
    into the symbol's quote currency before the book sees it; it keeps the venue's own
    best prices (``native_bid``, ``native_ask``) and the rate market's ``rate_bid`` (what
    its asks were divided by) and ``rate_ask`` (its bids). All four are ``None`` for a
    venue that quotes in the symbol's own currency.
    """

    exchange: str
    symbol: str
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    exchange_ts: float
    received_ts: float
    bids: tuple[tuple[float, float], ...] | None = None
    asks: tuple[tuple[float, float], ...] | None = None
    native_bid: float | None = None
    native_ask: float | None = None
    rate_bid: float | None = None
    rate_ask: float | None = None

    @property
    def ask_levels(self) -> tuple[tuple[float, float], ...]:
        """The asks to walk, best first: the book's levels, or the best one alone."""
        asks = self.asks
        return asks if asks else ((self.ask, self.ask_size),)

    @property
    def bid_levels(self) -> tuple[tuple[float, float], ...]:
        """The bids to walk, best first: the book's levels, or the best one alone."""
        bids = self.bids
        return bids if bids else ((self.bid, self.bid_size),)

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


@attrs.frozen(slots=True)
class Signal:
    """An opportunity to buy ``quantity`` of ``symbol`` on ``buy_exchange`` at
    ``buy_price`` and sell it on ``sell_exchange`` at ``sell_price``.

    ``buy_price`` and ``sell_price`` are the volume-weighted average prices of
    ``quantity`` over the book levels it takes; ``buy_limit`` and ``sell_limit`` the worst
    of those levels (the highest ask, the lowest bid): the limit prices of the orders,
    before ``price_tolerance``. With the best level alone they are the VWAPs, which is
    also their value when not given.
    ``profit`` is the expected net profit of the whole quantity in the quote currency
    after fees and slippage allowance, ``fees`` its taker fees; ``profit_percent`` is
    that profit as a percent of the money spent. ``spread_percent`` is the raw spread of
    the best levels as a percent of the best ask. ``buy_size``/``sell_size`` are the
    sizes displayed at the best levels.
    ``price_tolerance`` (a fraction) is how far the orders' limit prices may be from the
    limit prices above. ``threshold`` is the profit threshold (a fraction) the signal was
    held to and ``threshold_reason`` why that one (``min_profit_threshold``, or the
    inventory skew of its route); ``None`` when a strategy does not say.
    On a venue quoted in another currency (:mod:`arbotd.fx`) the prices above are
    converted; ``buy_native_price``/``sell_native_price`` are the same prices in the
    venue's currency and ``buy_rate``/``sell_rate`` the rates used (``None`` on a venue
    quoted in the symbol's currency).
    """

    id: int
    symbol: str
    buy_exchange: str
    sell_exchange: str
    buy_price: float
    sell_price: float
    buy_size: float
    sell_size: float
    quantity: float
    profit: float
    profit_percent: float
    spread_percent: float
    fees: float
    confidence: float
    timestamp: float
    price_tolerance: float = 0.0
    executed: bool = False
    reject_reason: str | None = None
    buy_limit: float = attrs.field(
        default=attrs.Factory(lambda signal: signal.buy_price, takes_self=True))
    sell_limit: float = attrs.field(
        default=attrs.Factory(lambda signal: signal.sell_price, takes_self=True))
    threshold: float | None = None
    threshold_reason: str | None = None
    buy_native_price: float | None = None
    sell_native_price: float | None = None
    buy_rate: float | None = None
    sell_rate: float | None = None

    @property
    def route(self) -> tuple[str, str, str]:
        return (self.symbol, self.buy_exchange, self.sell_exchange)


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderStatus(enum.StrEnum):
    NEW = "new"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@attrs.frozen(slots=True)
class Order:
    """One order of a trade leg. ``client_order_id`` is derived from the trade id so a
    retried request never creates a second order.

    ``price`` is in the symbol's quote currency (0: a market order). On a venue quoted in
    another currency (:mod:`arbotd.fx`) ``rate`` is the rate the order is priced and its
    fills converted at (units of the venue's currency per unit of the quote currency: the
    rate market's bid for a buy, its ask for a sell), fixed before the order is recorded;
    ``native_price`` is the limit sent to the venue, in its currency, once sent. Both are
    ``None`` on other venues."""

    client_order_id: str
    trade_id: int
    exchange: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    status: OrderStatus = OrderStatus.NEW
    filled_quantity: Decimal = Decimal(0)
    exchange_order_id: str | None = None
    purpose: str = "entry"  # "entry", "hedge" (completing a leg) or "unwind"
    reason: str | None = None
    native_price: Decimal | None = None
    rate: Decimal | None = None


@attrs.frozen(slots=True)
class Fill:
    """An execution: ``quantity`` of base currency at ``price``; ``fee`` is charged in
    ``fee_asset``. ``fee_value`` is the fee's worth in the symbol's quote currency at
    fill time, for a fee charged in a third asset (BNB on Binance), when it is known.

    On a venue quoted in another currency (:mod:`arbotd.fx`) ``price`` is converted into
    the symbol's quote currency at the rate the fill happened at; ``native_price`` is
    what the venue charged in ``native_asset`` (what the balances move by), and a fee in
    ``native_asset`` has its ``fee_value``."""

    order_id: str
    trade_id: int
    exchange: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str
    timestamp: float
    fee_value: Decimal | None = None
    native_price: Decimal | None = None
    native_asset: str | None = None

    @property
    def notional(self) -> Decimal:
        return self.price * self.quantity


class TradeState(enum.StrEnum):
    PLANNED = "planned"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    COMPLETED = "completed"
    UNWINDING = "unwinding"
    UNWOUND = "unwound"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset(
    {TradeState.COMPLETED, TradeState.UNWOUND, TradeState.FAILED, TradeState.CANCELLED}
)

_TRANSITIONS: dict[TradeState, frozenset[TradeState]] = {
    TradeState.PLANNED: frozenset(
        {TradeState.SUBMITTED, TradeState.CANCELLED, TradeState.FAILED}
    ),
    TradeState.SUBMITTED: frozenset(
        {
            TradeState.PARTIALLY_FILLED,
            TradeState.COMPLETED,
            TradeState.UNWINDING,
            TradeState.FAILED,
            TradeState.CANCELLED,
        }
    ),
    TradeState.PARTIALLY_FILLED: frozenset(
        {TradeState.COMPLETED, TradeState.UNWINDING, TradeState.FAILED}
    ),
    TradeState.UNWINDING: frozenset({TradeState.UNWOUND, TradeState.FAILED}),
}


@attrs.frozen(slots=True)
class Trade:
    """A two-legged arbitrage trade. It only changes through :meth:`advance`, which
    enforces the state machine::

        planned -> submitted -> partially_filled -> completed
                            \\-> unwinding -> unwound      (one leg failed)
        any non-final state -> failed; planned/submitted -> cancelled

    ``planned_buy_price``/``planned_sell_price`` are the signal's volume-weighted
    prices (what slippage is measured against); ``buy_limit``/``sell_limit`` the worst
    book levels the signal took, where the entry orders' limits are set (widened by the
    tolerance). A trade planned from the best level alone, or recorded before limits
    were kept, has its planned prices as limits. ``buy_native_price``,
    ``sell_native_price``, ``buy_rate`` and ``sell_rate`` are the signal's, for a leg on a
    venue quoted in another currency (:mod:`arbotd.fx`), else ``None``.
    """

    id: int
    signal_id: int
    mode: str
    symbol: str
    buy_exchange: str
    sell_exchange: str
    quantity: Decimal
    planned_buy_price: Decimal
    planned_sell_price: Decimal
    planned_profit: Decimal
    started_at: float
    state: TradeState = TradeState.PLANNED
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    completed_at: float | None = None
    reason: str | None = None
    buy_limit: Decimal = attrs.field(
        default=attrs.Factory(lambda trade: trade.planned_buy_price, takes_self=True))
    sell_limit: Decimal = attrs.field(
        default=attrs.Factory(lambda trade: trade.planned_sell_price, takes_self=True))
    buy_native_price: Decimal | None = None
    sell_native_price: Decimal | None = None
    buy_rate: Decimal | None = None
    sell_rate: Decimal | None = None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def advance(self, state: TradeState, **changes: object) -> Trade:
        """A copy in ``state``; raises ``ValueError`` for a transition the state machine
        does not allow."""
        if state is not self.state and state not in _TRANSITIONS.get(self.state, ()):
            raise ValueError(f"trade {self.id}: cannot go from {self.state} to {state}")
        return attrs.evolve(self, state=state, **changes)

    def with_fills(self, *fills: Fill) -> Trade:
        return attrs.evolve(self, fills=self.fills + fills)

    def with_orders(self, *orders: Order) -> Trade:
        known = {o.client_order_id: o for o in self.orders}
        for order in orders:
            known[order.client_order_id] = order
        return attrs.evolve(self, orders=tuple(known.values()))

    def filled(self, side: Side, purpose: str = "entry") -> Decimal:
        ids = {o.client_order_id for o in self.orders if o.purpose == purpose}
        return sum(
            (f.quantity for f in self.fills if f.side is side and f.order_id in ids),
            Decimal(0),
        )

    @property
    def fees_paid(self) -> Decimal:
        """Fees in the quote currency, valued at fill time (:mod:`arbotd.figures`)."""
        from arbotd.figures import trade_figures

        return trade_figures(self).fees

    @property
    def realized_profit(self) -> Decimal:
        """Cash flow of every fill in the quote currency, fees included: the profit once
        the trade is flat, the loss of an unwound trade (:mod:`arbotd.figures`)."""
        from arbotd.figures import trade_figures

        return trade_figures(self).net


@attrs.frozen(slots=True)
class Balance:
    """Holdings of one asset on one exchange."""

    exchange: str
    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked
