"""Performance figures over stored trades and equity: the rows :mod:`arbotd_sql.queries`
reads, put through the one definition of every figure, :mod:`arbotd.figures`.

What is specific to stored history:

- a trade counts on the UTC day it closed; its net result and fees are the stored
  figures (``TradeRecord.actual_profit`` and ``fees_paid``, written from its fills by
  :func:`arbotd.figures.trade_figures`);
- the equity behind the Sharpe and Sortino ratios and the drawdown is the daemon's
  equity snapshots (every balance at current prices, once a minute): the ratios use the
  last snapshot of each UTC day, the drawdown every snapshot;
- ``win_rate`` and every ``*_percent`` value are percent; money is rounded to 8 decimal
  places at the edge (:func:`arbotd.figures.money`), percents and ratios to 4, seconds
  to 3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from arbotd import figures
from arbotd.figures import daily_closes, max_drawdown_percent, money, utc_day

__all__ = [
    "TradeResult",
    "daily_breakdown",
    "daily_closes",
    "max_drawdown_percent",
    "money",
    "risk_metrics",
    "trade_metrics",
    "utc_date",
    "win_rate",
]

ZERO = Decimal(0)
utc_date = utc_day


@attrs.frozen(slots=True)
class TradeResult:
    """The outcome of one closed trade, as the metrics see it: ``net_profit`` (fees
    included) and ``fees`` in the quote currency, ``closed_at`` (epoch seconds),
    ``execution_seconds`` from start to final state."""

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


def _summary(results: Iterable[TradeResult]) -> figures.Summary:
    return figures.summarize((r.net_profit, r.fees) for r in results)


def win_rate(results: Sequence[TradeResult]) -> float:
    """Percent of trades with a net result above zero; ``0.0`` without trades."""
    return _summary(results).win_rate


def trade_metrics(results: Sequence[TradeResult]) -> tuple[dict[str, Any], dict[str, str]]:
    """The trade-based part of the ``metrics`` object of ``GET /performance``, and the
    reasons of figures that are ``None``.

    ``{"total_trades", "successful_trades" (net above zero), "win_rate" (percent),
    "total_profit" (gross: before fees), "total_fees", "net_profit" (gross - fees),
    "avg_profit_per_trade" (net / trades), "max_profit" (the best winning net, 0 if none
    won), "max_loss" (the worst losing net, 0 if none lost), "avg_execution_time_seconds",
    "profit_factor"}``, all ``0`` (``profit_factor`` ``None``) without trades."""
    summary = _summary(results)
    count = summary.trades
    seconds = sum(r.execution_seconds for r in results)
    factor = summary.profit_factor
    metrics = {
        "total_trades": count,
        "successful_trades": summary.wins,
        "win_rate": summary.win_rate,
        "total_profit": money(summary.gross),
        "total_fees": money(summary.fees),
        "net_profit": money(summary.net),
        "avg_profit_per_trade": money(summary.average_net),
        "max_profit": money(summary.best),
        "max_loss": money(summary.worst),
        "avg_execution_time_seconds": round(seconds / count, 3) if count else 0.0,
        "profit_factor": factor.value,
    }
    notes = {"profit_factor": factor.reason} if factor.reason else {}
    return metrics, notes


def risk_metrics(daily_equity: Sequence[float], equity: Sequence[float]
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """``sharpe_ratio`` and ``sortino_ratio`` of the daily closes, ``max_drawdown_percent``
    of every equity point; the reasons of the ratios that are ``None``."""
    sharpe = figures.sharpe_ratio(daily_equity)
    sortino = figures.sortino_ratio(daily_equity)
    metrics = {"sharpe_ratio": sharpe.value, "sortino_ratio": sortino.value,
               "max_drawdown_percent": max_drawdown_percent(equity)}
    notes = {name: ratio.reason for name, ratio in (("sharpe_ratio", sharpe),
                                                    ("sortino_ratio", sortino))
             if ratio.reason}
    return metrics, notes


def daily_breakdown(results: Iterable[TradeResult]) -> list[dict[str, Any]]:
    """One row per UTC day on which trades closed, oldest first:
    ``[{"date": "YYYY-MM-DD", "trades": int, "profit": float (net), "win_rate": float
    (percent)}]``. Days without a closed trade are left out."""
    by_day: dict[dt.date, list[TradeResult]] = {}
    for result in results:
        by_day.setdefault(utc_day(result.closed_at), []).append(result)
    rows = []
    for day, day_results in sorted(by_day.items()):
        summary = _summary(day_results)
        rows.append({"date": day.isoformat(), "trades": summary.trades,
                     "profit": money(summary.net), "win_rate": summary.win_rate})
    return rows
