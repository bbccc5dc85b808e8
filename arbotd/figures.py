"""Every money figure a trader reads, defined once.

The API (REST and WebSocket), the log, the storage's trade rows and a backtest's summary,
``metrics.json``, CSV files and plot all take their figures from here, computed from a
trade's orders and fills, so that the same trade shows the same numbers everywhere and
every number reconciles to the fills.

Per trade (:func:`trade_figures`), in the symbol's quote currency:

- **gross** = sum of sell proceeds - sum of buy cost, over every fill (entry legs, hedges and
  unwinds: an unwind's loss is real money);
- **fees**: each fill's fee valued in the quote currency at fill time: a fee in the quote
  currency as it is, one in the base coin at that fill's price, one in a third asset (BNB)
  at the value the executor recorded with the fill (``Fill.fee_value``); a fee with no
  value is left out and named in ``unpriced_fee_assets``;
- **net** = gross - fees: the realised profit (or loss) of the trade;
- **filled quantity**: the quantity actually arbitraged, the smaller of what the entry
  and hedge orders bought and sold (0 for a trade that was unwound); the **planned
  quantity** is what the signal asked for;
- **price slippage** per leg = (actual - planned price) x filled quantity of that side's
  entry and hedge fills, signed so that positive means worse than planned (a buy that
  paid more, a sell that got less); the trade's slippage is the sum of both legs;
- **planned profit** is the signal's expected net profit; **realised profit** is net.

Over many trades (:func:`summarize`): a trade *wins* when its net is above zero and
*loses* below zero; ``win_rate`` is in percent; ``profit_factor`` is the sum of winning
nets over the sum of losing ones, ``None`` with a reason when nothing lost.

Risk-adjusted figures (:func:`sharpe_ratio`, :func:`sortino_ratio`) use **daily**
returns of equity (the last equity of each UTC day), a risk-free rate of 0, annualised
with sqrt(365) (crypto markets trade every day); below :data:`MIN_DAILY_RETURNS` returns they
are ``None`` with the reason, since a handful of returns says nothing. The maximum
drawdown is the largest fall of the equity curve from a running peak, in percent of the
peak.

At every edge (JSON, CSV, logs) money is rounded to the quote currency's precision
(:func:`money`: 8 decimal places, 0 for KRW and JPY) and sizes to 8 decimal places
(:func:`size`), half to even, so no float noise reaches a reader.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

import attrs

from arbotd._model import FINAL_STATES, Fill, Side, Trade, split_symbol

__all__ = [
    "DAYS_PER_YEAR",
    "MIN_DAILY_RETURNS",
    "Ratio",
    "Summary",
    "TradeFigures",
    "daily_closes",
    "max_drawdown_percent",
    "money",
    "profit_factor",
    "sharpe_ratio",
    "size",
    "sortino_ratio",
    "summarize",
    "trade_figures",
    "utc_day",
]

ZERO = Decimal(0)
DAYS_PER_YEAR = 365
"""Crypto markets never close: a year has 365 daily returns, not 252."""
MIN_DAILY_RETURNS = 7
"""Fewer daily returns than this give no Sharpe or Sortino ratio (``None``, with why)."""

_PLACES = {"KRW": 0, "JPY": 0}
_DEFAULT_PLACES = 8
_STEPS = {places: Decimal(1).scaleb(-places) for places in (0, 2, 8)}
_PRICED = ("entry", "hedge")  # the orders whose prices are the trade's own


# --- rounding at the edges ------------------------------------------------------------


def _quantize(value: Decimal, places: int) -> Decimal:
    step = _STEPS.get(places) or Decimal(1).scaleb(-places)
    return value.quantize(step, rounding=ROUND_HALF_EVEN)


def money(value: Decimal | float | None, currency: str = "USDT") -> float | None:
    """``value`` (an amount of ``currency``) rounded to that currency's precision, as a
    float for JSON: ``9700.579871162636`` -> ``9700.57987116``. ``None`` stays ``None``."""
    if value is None:
        return None
    if not isinstance(value, Decimal):
        if not math.isfinite(value):
            return value
        value = Decimal(repr(value))
    return float(_quantize(value, _PLACES.get(currency, _DEFAULT_PLACES)))


def size(value: Decimal | float | None) -> float | None:
    """A quantity of a coin rounded to 8 decimal places (a satoshi), as a float:
    ``0.029264580000000002`` -> ``0.02926458``."""
    if value is None:
        return None
    if not isinstance(value, Decimal):
        if not math.isfinite(value):
            return value
        value = Decimal(repr(value))
    return float(_quantize(value, _DEFAULT_PLACES))


def money_text(value: Decimal | float | None, currency: str = "USDT") -> str:
    """``money`` as text for logs and CSV files: fixed point, no exponent."""
    rounded = money(value, currency)
    if rounded is None:
        return ""
    places = _PLACES.get(currency, _DEFAULT_PLACES)
    return f"{rounded:.{places}f}".rstrip("0").rstrip(".") if places else f"{rounded:.0f}"


# --- one trade -------------------------------------------------------------------------


@attrs.frozen(slots=True)
class TradeFigures:
    """The figures of one trade (see the module docstring), exact decimals in the quote
    currency ``currency``. ``final`` says whether the trade is over: ``net`` is its
    realised profit only then (before, it is the cash flow so far)."""

    currency: str
    final: bool
    planned_quantity: Decimal
    filled_quantity: Decimal
    bought: Decimal
    sold: Decimal
    actual_buy_price: Decimal | None
    actual_sell_price: Decimal | None
    gross: Decimal
    fees: Decimal
    net: Decimal
    buy_slippage: Decimal
    sell_slippage: Decimal
    planned_profit: Decimal
    unpriced_fee_assets: tuple[str, ...] = ()

    @property
    def slippage(self) -> Decimal:
        return self.buy_slippage + self.sell_slippage

    @property
    def realized_profit(self) -> Decimal | None:
        """Net once the trade is over, ``None`` before (the REST answer's
        ``actual_profit``)."""
        return self.net if self.final else None


def fee_in_quote(fill: Fill, base: str, quote: str) -> Decimal | None:
    """The fee of ``fill`` in the quote currency at fill time (``None``: unknown)."""
    if not fill.fee:
        return ZERO
    if fill.fee_asset == quote:
        return fill.fee
    if fill.fee_asset == base:
        return fill.fee * fill.price
    return fill.fee_value


def trade_figures(trade: Trade) -> TradeFigures:
    """Every figure of ``trade`` from its orders and fills."""
    base, quote = split_symbol(trade.symbol)
    purposes = {o.client_order_id: o.purpose for o in trade.orders}
    gross = fees = ZERO
    bought = sold = ZERO
    priced_qty = {Side.BUY: ZERO, Side.SELL: ZERO}
    priced_cost = {Side.BUY: ZERO, Side.SELL: ZERO}
    unpriced: set[str] = set()
    for fill in trade.fills:
        notional = fill.price * fill.quantity
        if fill.side is Side.BUY:
            gross -= notional
            bought += fill.quantity
        else:
            gross += notional
            sold += fill.quantity
        fee = fee_in_quote(fill, base, quote)
        if fee is None:
            unpriced.add(fill.fee_asset)
        else:
            fees += fee
        if purposes.get(fill.order_id, "entry") in _PRICED:
            priced_qty[fill.side] += fill.quantity
            priced_cost[fill.side] += notional
    buy_qty, sell_qty = priced_qty[Side.BUY], priced_qty[Side.SELL]
    buy_price = priced_cost[Side.BUY] / buy_qty if buy_qty else None
    sell_price = priced_cost[Side.SELL] / sell_qty if sell_qty else None
    return TradeFigures(
        currency=quote,
        final=trade.state in FINAL_STATES,
        planned_quantity=trade.quantity,
        filled_quantity=min(buy_qty, sell_qty),
        bought=bought,
        sold=sold,
        actual_buy_price=buy_price,
        actual_sell_price=sell_price,
        gross=gross,
        fees=fees,
        net=gross - fees,
        buy_slippage=priced_cost[Side.BUY] - trade.planned_buy_price * buy_qty,
        sell_slippage=trade.planned_sell_price * sell_qty - priced_cost[Side.SELL],
        planned_profit=trade.planned_profit,
        unpriced_fee_assets=tuple(sorted(unpriced)),
    )


# --- many trades -----------------------------------------------------------------------


@attrs.frozen(slots=True)
class Ratio:
    """A figure that may not exist, with the reason when it does not."""

    value: float | None
    reason: str | None = None


@attrs.frozen(slots=True)
class Summary:
    """Figures over a set of closed trades (exact sums; round with :func:`money`)."""

    trades: int
    wins: int
    losses: int
    gross: Decimal
    fees: Decimal
    net: Decimal
    winning_total: Decimal
    losing_total: Decimal
    best: Decimal
    worst: Decimal

    @property
    def win_rate(self) -> float:
        """Percent of trades with a net above zero (0 without trades)."""
        return round(100.0 * self.wins / self.trades, 4) if self.trades else 0.0

    @property
    def average_net(self) -> Decimal:
        return self.net / self.trades if self.trades else ZERO

    @property
    def profit_factor(self) -> Ratio:
        return profit_factor(self.winning_total, self.losing_total, self.trades)


def summarize(nets_and_fees: Iterable[tuple[Decimal, Decimal]]) -> Summary:
    """The summary of trades given as ``(net, fees)`` pairs."""
    trades = wins = losses = 0
    fees = net = winning = losing = ZERO
    best = worst = ZERO
    for trade_net, trade_fees in nets_and_fees:
        trades += 1
        net += trade_net
        fees += trade_fees
        if trade_net > 0:
            wins += 1
            winning += trade_net
            best = max(best, trade_net)
        elif trade_net < 0:
            losses += 1
            losing -= trade_net
            worst = min(worst, trade_net)
    return Summary(trades=trades, wins=wins, losses=losses, gross=net + fees, fees=fees,
                   net=net, winning_total=winning, losing_total=losing, best=best,
                   worst=worst)


def profit_factor(winning_total: Decimal, losing_total: Decimal, trades: int) -> Ratio:
    """Winning total over losing total, rounded to 4 places; ``None`` with the reason
    when there is nothing to divide by (JSON has no infinity, and a sentinel such as 999
    would read as a real figure)."""
    if not trades:
        return Ratio(None, "no closed trades")
    if losing_total == 0:
        return Ratio(None, "no losing trades")
    return Ratio(round(float(winning_total / losing_total), 4))


# --- equity ---------------------------------------------------------------------------


def utc_day(timestamp: float) -> dt.date:
    """The UTC calendar day of an epoch time."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date()


def daily_closes(points: Iterable[tuple[float, float]]) -> list[float]:
    """The last equity of each UTC day, oldest first, from ``(timestamp, equity)`` pairs
    in any order. A day without a point is absent: the return across it spans the gap."""
    last: dict[dt.date, tuple[float, float]] = {}
    for timestamp, equity in points:
        day = utc_day(timestamp)
        if day not in last or timestamp >= last[day][0]:
            last[day] = (timestamp, equity)
    return [equity for _, (_, equity) in sorted(last.items())]


def _returns(closes: Sequence[float]) -> list[float]:
    return [now / before - 1.0 for before, now in itertools.pairwise(closes) if before > 0]


def _too_few(returns: Sequence[float]) -> str | None:
    if len(returns) < MIN_DAILY_RETURNS:
        return (f"needs at least {MIN_DAILY_RETURNS} daily returns "
                f"({MIN_DAILY_RETURNS + 1} days of equity), has {len(returns)}")
    return None


def sharpe_ratio(closes: Sequence[float]) -> Ratio:
    """``mean(r) / stdev(r) x sqrt(365)`` of the daily returns ``r_i = c_i / c_(i-1) - 1`` of
    daily equity closes (sample standard deviation), rounded to 4 places."""
    returns = _returns(closes)
    reason = _too_few(returns)
    if reason:
        return Ratio(None, reason)
    spread = statistics.stdev(returns)
    if spread == 0 or not math.isfinite(spread):
        return Ratio(None, "equity did not vary from day to day")
    return Ratio(round(statistics.fmean(returns) / spread * math.sqrt(DAYS_PER_YEAR), 4))


def sortino_ratio(closes: Sequence[float]) -> Ratio:
    """Like :func:`sharpe_ratio`, but over the downside deviation
    ``sqrt(sum of min(r, 0)² / n)``: only falls count as risk."""
    returns = _returns(closes)
    reason = _too_few(returns)
    if reason:
        return Ratio(None, reason)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    if downside == 0:
        return Ratio(None, "no day lost equity")
    return Ratio(round(statistics.fmean(returns) / downside * math.sqrt(DAYS_PER_YEAR), 4))


def max_drawdown_percent(equity: Iterable[float]) -> float:
    """The largest fall from a running peak to a later value, in percent of the peak,
    rounded to 4 places (0 for a curve that never falls; peaks of 0 or less ignored)."""
    peak = -math.inf
    worst = 0.0
    for value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak * 100.0)
    return round(worst, 4)
