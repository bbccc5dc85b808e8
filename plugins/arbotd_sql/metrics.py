"""Performance metrics over closed trades and an equity series: pure functions, no database.

:func:`arbotd_sql.queries.performance` reads the rows and calls these; they are kept apart
so that each definition can be checked against a ledger computed by hand.

Definitions (every one is a choice; the reasons are in the functions' docstrings):

- a trade *wins* when its net result (realised cash flow, fees included) is above zero;
  a result of exactly zero is not a win;
- ``win_rate`` and every ``*_percent`` value are percent (``40.0`` means 40 %);
- ``total_profit`` is the profit before fees (net + fees), ``net_profit`` after them;
- ``max_profit`` is the best winning trade and ``max_loss`` the worst losing trade
  (a negative number), each ``0.0`` when there is no such trade;
- ``profit_factor`` is gross profit / gross loss of net results, ``None`` without a loss;
- the Sharpe ratio uses daily returns of equity, risk-free rate 0, annualised with
  ``sqrt(365)`` because crypto markets trade every day;
- days are UTC days.

Money is summed as :class:`~decimal.Decimal` and returned as floats rounded to 8 decimal
places; percents and ratios are rounded to 4, seconds to 3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs

from arbotd import performance

__all__ = [
    "TradeResult",
    "daily_breakdown",
    "daily_closes",
    "max_drawdown_percent",
    "money",
    "profit_factor",
    "sharpe_ratio",
    "trade_metrics",
    "utc_date",
    "win_rate",
]

ZERO = Decimal(0)
_MONEY_STEP = Decimal("0.00000001")
TRADING_DAYS_PER_YEAR = 365
"""Crypto markets never close, so a year has 365 daily returns (not 252)."""


@attrs.frozen(slots=True)
class TradeResult:
    """The outcome of one closed trade, as the metrics see it.

    ``net_profit`` is the realised cash flow of every fill in the quote currency, fees
    included (``TradeRecord.actual_profit``); ``fees`` the fees in the quote currency;
    ``closed_at`` the time the trade reached its final state (epoch seconds, UTC);
    ``execution_seconds`` from start to final state.
    """

    trade_id: int
    symbol: str
    closed_at: float
    net_profit: Decimal
    fees: Decimal = ZERO
    execution_seconds: float = 0.0

    @property
    def gross_profit(self) -> Decimal:
        """The result before fees."""
        return self.net_profit + self.fees

    @property
    def won(self) -> bool:
        return self.net_profit > 0


def money(value: Decimal) -> float:
    """A money amount for a JSON answer: rounded half-even to 8 decimal places."""
    return float(value.quantize(_MONEY_STEP, rounding=ROUND_HALF_EVEN))


def utc_date(timestamp: float) -> dt.date:
    """The UTC calendar day of an epoch time."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date()


def win_rate(results: Sequence[TradeResult]) -> float:
    """Percent of trades with a net result above zero; ``0.0`` without trades."""
    if not results:
        return 0.0
    return round(100.0 * sum(1 for r in results if r.won) / len(results), 4)


def profit_factor(results: Iterable[TradeResult]) -> float | None:
    """Sum of winning net results over the sum of losing ones (see
    :func:`arbotd.performance.profit_factor`)."""
    return performance.profit_factor(r.net_profit for r in results)


def trade_metrics(results: Sequence[TradeResult]) -> dict[str, Any]:
    """The trade-based part of the ``metrics`` object of ``GET /performance``.

    Returns ``{"total_trades": int, "successful_trades": int, "win_rate": float,
    "total_profit": float, "total_fees": float, "net_profit": float,
    "avg_profit_per_trade": float, "max_profit": float, "max_loss": float,
    "avg_execution_time_seconds": float, "profit_factor": float | None}``:

    - ``successful_trades``: net result above zero; ``win_rate`` their share in percent;
    - ``total_profit``: sum of results before fees; ``total_fees``; ``net_profit`` =
      ``total_profit - total_fees``; ``avg_profit_per_trade`` = net / trades;
    - ``max_profit``: the largest winning net result, ``0.0`` if no trade won;
      ``max_loss``: the most negative net result, ``0.0`` if no trade lost (so the two
      never describe the same trade and never take a surprising sign);
    - ``avg_execution_time_seconds``: mean time from start to final state;
    - ``profit_factor``: see :func:`profit_factor`.

    Every figure is ``0`` (``profit_factor`` ``None``) when ``results`` is empty.
    """
    count = len(results)
    net = sum((r.net_profit for r in results), ZERO)
    fees = sum((r.fees for r in results), ZERO)
    best = max((r.net_profit for r in results), default=ZERO)
    worst = min((r.net_profit for r in results), default=ZERO)
    seconds = sum(r.execution_seconds for r in results)
    return {
        "total_trades": count,
        "successful_trades": sum(1 for r in results if r.won),
        "win_rate": win_rate(results),
        "total_profit": money(net + fees),
        "total_fees": money(fees),
        "net_profit": money(net),
        "avg_profit_per_trade": money(net / count) if count else 0.0,
        "max_profit": money(max(best, ZERO)),
        "max_loss": money(min(worst, ZERO)),
        "avg_execution_time_seconds": round(seconds / count, 3) if count else 0.0,
        "profit_factor": profit_factor(results),
    }


def daily_breakdown(results: Iterable[TradeResult]) -> list[dict[str, Any]]:
    """One row per UTC day on which trades closed, oldest first:
    ``[{"date": "YYYY-MM-DD", "trades": int, "profit": float (net), "win_rate": float
    (percent)}]``. Days without a closed trade are left out."""
    by_day: dict[dt.date, list[TradeResult]] = {}
    for result in results:
        by_day.setdefault(utc_date(result.closed_at), []).append(result)
    return [
        {
            "date": day.isoformat(),
            "trades": len(day_results),
            "profit": money(sum((r.net_profit for r in day_results), ZERO)),
            "win_rate": win_rate(day_results),
        }
        for day, day_results in sorted(by_day.items())
    ]


def daily_closes(snapshots: Iterable[tuple[float, float]]) -> list[float]:
    """The last equity of each UTC day, oldest day first, from ``(timestamp, equity)``
    pairs in any order. Days without a snapshot are simply absent, so a return computed
    from consecutive closes spans the gap (the daemon was down; equity did not move for
    it)."""
    last: dict[dt.date, tuple[float, float]] = {}
    for timestamp, equity in snapshots:
        day = utc_date(timestamp)
        if day not in last or timestamp >= last[day][0]:
            last[day] = (timestamp, equity)
    return [equity for _, (_, equity) in sorted(last.items())]


def sharpe_ratio(daily_equity: Sequence[float]) -> float:
    """Annualised Sharpe ratio of daily equity closes: ``mean(r) / stdev(r) * sqrt(365)``
    (see :func:`arbotd.performance.sharpe_ratio`)."""
    return performance.sharpe_ratio(daily_equity, TRADING_DAYS_PER_YEAR)


def max_drawdown_percent(equity: Sequence[float]) -> float:
    """The largest fall from a running peak to a later trough, in percent of the peak
    (see :func:`arbotd.performance.max_drawdown_percent`)."""
    return performance.max_drawdown_percent(equity)
