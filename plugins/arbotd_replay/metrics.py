"""A backtest's figures, computed once: the summary printed by ``arbotd backtest``, the
report's ``metrics.json`` and the API's ``metrics`` are all this one dict, so they agree
by construction; every figure is defined in :mod:`arbotd.figures`, as for the API's
``/trades`` and ``/performance``.

What is specific to a backtest:

- ``win_rate`` counts every trade the backtest started (a trade that filled nothing
  counts, as it did cost an opportunity);
- money of different quote currencies is added as it is (USD for USDT pairs);
- the *equity curve* is the starting equity (every starting balance valued at its coin's
  first mid price in the data) plus the net results of the trades finished so far. It
  leaves out the price moves of the coins the paper accounts hold, which are the
  market's doing, not the strategy's;
- ``sharpe_ratio`` and ``sortino_ratio``: daily returns of that curve (its value at the
  end of each UTC day), annualised with sqrt(365), ``None`` with the reason in ``notes``
  below 7 daily returns (a backtest of a few hours has none);
- ``max_drawdown_percent``: the largest fall of the equity curve from a running peak,
  in percent of the peak, taken trade by trade (exact, not sampled);
- ``profit_factor``: ``winning_total / losing_total`` (the sums of winning and of losing
  nets), ``None`` with the reason in ``notes`` when no trade lost.

Money is rounded to 8 decimal places, percents and ratios to 4.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from arbotd import FINAL_STATES, Trade, TradeState, figures
from arbotd.figures import money, size, trade_figures

__all__ = [
    "TRADE_COLUMNS",
    "compute_metrics",
    "equity_curve",
    "iso",
    "route_name",
    "trade_row",
]

ZERO = Decimal(0)


def iso(timestamp: float | None) -> str | None:
    """``2025-06-15T12:00:00.250123Z``: ISO 8601 UTC to the microsecond (a backtest's
    events are close together), the one time format of a backtest's report, or
    ``None``."""
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def route_name(symbol: str, buy_exchange: str, sell_exchange: str) -> str:
    """``BTCUSDT sim_alpha->sim_beta``: buy on the first exchange, sell on the second."""
    return f"{symbol} {buy_exchange}->{sell_exchange}"


def _closed_at(trade: Trade) -> float:
    return trade.completed_at if trade.completed_at is not None else trade.started_at


def equity_curve(trades: Iterable[Trade], starting_equity: float) -> list[tuple[float, float]]:
    """``(time, equity)`` after each finished trade, in the order they finished."""
    equity = Decimal(repr(starting_equity))
    points = []
    for trade in sorted((t for t in trades if t.state in FINAL_STATES),
                        key=lambda t: (_closed_at(t), t.id)):
        equity += trade.realized_profit
        points.append((_closed_at(trade), money(equity)))
    return points


def _group(trades: Sequence[Trade]) -> dict[str, Any]:
    summary = figures.summarize((f.net, f.fees) for f in map(trade_figures, trades))
    return {
        "trades": summary.trades,
        "winning_trades": summary.wins,
        "win_rate": summary.win_rate,
        "net_profit": money(summary.net),
        "total_fees": money(summary.fees),
    }


def compute_metrics(
    *,
    trades: Sequence[Trade],
    signals: int,
    signals_executed: int,
    quotes: int,
    first_ts: float,
    last_ts: float,
    starting_equity: float,
    exchanges: Mapping[str, float],
    symbols: Sequence[str],
    rejections: Mapping[str, int],
    bad_rows: Mapping[str, int],
) -> dict[str, Any]:
    """Every figure of a backtest (see the module docstring). ``exchanges`` maps each
    exchange of the data to the taker fee it was given."""
    starting = money(starting_equity)
    each = [trade_figures(t) for t in trades]
    summary = figures.summarize((f.net, f.fees) for f in each)
    curve = equity_curve(trades, starting)
    final_equity = curve[-1][1] if curve else starting
    closes = figures.daily_closes([(first_ts, starting), *curve, (last_ts, final_equity)])
    sharpe = figures.sharpe_ratio(closes)
    sortino = figures.sortino_ratio(closes)
    factor = summary.profit_factor
    by_symbol: dict[str, list[Trade]] = {}
    by_route: dict[str, list[Trade]] = {}
    for trade in trades:
        by_symbol.setdefault(trade.symbol, []).append(trade)
        by_route.setdefault(route_name(trade.symbol, trade.buy_exchange,
                                       trade.sell_exchange), []).append(trade)
    states = {state: sum(1 for t in trades if t.state is state) for state in TradeState}
    notes = {name: ratio.reason for name, ratio in (
        ("profit_factor", factor), ("sharpe_ratio", sharpe), ("sortino_ratio", sortino))
        if ratio.reason}
    return {
        "start": iso(first_ts),
        "end": iso(last_ts),
        "duration_seconds": round(last_ts - first_ts, 3),
        "quotes": quotes,
        "exchanges": dict(sorted(exchanges.items())),
        "symbols": sorted(symbols),
        "signals": signals,
        "signals_executed": signals_executed,
        "total_trades": len(trades),
        "completed_trades": states[TradeState.COMPLETED],
        "unwound_trades": states[TradeState.UNWOUND],
        "failed_trades": states[TradeState.FAILED] + states[TradeState.CANCELLED],
        "winning_trades": summary.wins,
        "losing_trades": summary.losses,
        "win_rate": summary.win_rate,
        "gross_profit": money(summary.gross),
        "total_fees": money(summary.fees),
        "net_profit": money(summary.net),
        "slippage": money(sum((f.slippage for f in each), ZERO)),
        "winning_total": money(summary.winning_total),
        "losing_total": money(summary.losing_total),
        "profit_factor": factor.value,
        "sharpe_ratio": sharpe.value,
        "sortino_ratio": sortino.value,
        "max_drawdown_percent": figures.max_drawdown_percent(
            [starting, *(equity for _, equity in curve)]),
        "starting_equity": starting,
        "final_equity": final_equity,
        "return_percent": round((final_equity / starting - 1.0) * 100.0, 6)
        if starting > 0 else 0.0,
        "notes": notes,
        "by_symbol": {name: _group(group) for name, group in sorted(by_symbol.items())},
        "by_route": {name: _group(group) for name, group in sorted(by_route.items())},
        "rejections": dict(sorted(rejections.items(), key=lambda item: (-item[1], item[0]))),
        "bad_rows": dict(sorted(bad_rows.items())),
    }


TRADE_COLUMNS = (
    "trade_id", "signal_id", "symbol", "buy_exchange", "sell_exchange", "state",
    "planned_quantity", "quantity", "planned_buy_price", "planned_sell_price",
    "planned_profit", "bought", "buy_price", "sold", "sell_price", "gross_profit", "fees",
    "net_profit", "slippage", "started_at", "completed_at", "reason",
)
"""Columns of the report's ``trades.csv`` (see :func:`trade_row`)."""


def trade_row(trade: Trade) -> dict[str, Any]:
    """One trade as a row of ``trades.csv``, its figures from :mod:`arbotd.figures`:
    ``quantity`` is the filled quantity; ``bought``/``sold`` the quantities of all its buy
    and sell fills (hedges and unwinds included); ``buy_price``/``sell_price`` the
    average prices of its entry and hedge fills; ``gross_profit`` before fees,
    ``net_profit`` after them; ``slippage`` positive when worse than planned; times ISO
    8601 UTC."""
    f = trade_figures(trade)
    return {
        "trade_id": trade.id,
        "signal_id": trade.signal_id,
        "symbol": trade.symbol,
        "buy_exchange": trade.buy_exchange,
        "sell_exchange": trade.sell_exchange,
        "state": str(trade.state),
        "planned_quantity": size(f.planned_quantity),
        "quantity": size(f.filled_quantity),
        "planned_buy_price": float(trade.planned_buy_price),
        "planned_sell_price": float(trade.planned_sell_price),
        "planned_profit": money(trade.planned_profit),
        "bought": size(f.bought),
        "buy_price": money(f.actual_buy_price),
        "sold": size(f.sold),
        "sell_price": money(f.actual_sell_price),
        "gross_profit": money(f.gross),
        "fees": money(f.fees),
        "net_profit": money(f.net),
        "slippage": money(f.slippage),
        "started_at": iso(trade.started_at),
        "completed_at": iso(trade.completed_at),
        "reason": trade.reason,
    }
