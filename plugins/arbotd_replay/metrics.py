"""A backtest's figures, computed once: the summary printed by ``arbotd backtest``, the
report's ``metrics.json`` and the API's ``metrics`` are all this one dict, so they agree
by construction.

Definitions (the same as ``GET /api/v1/performance`` where both have a figure):

- a trade *wins* when its realised result (the cash flow of every fill, fees included)
  is above zero and *loses* when it is below; ``win_rate`` is winning trades in percent
  of all trades the backtest started (a trade that filled nothing counts, as it did
  cost an opportunity);
- ``net_profit`` is the sum of the trades' results, ``total_fees`` the fees they paid,
  both in the quote currency (USD for USDT pairs; results of different quote
  currencies are added as they are);
- ``profit_factor`` is the sum of winning results over the sum of losing ones, ``None``
  (JSON ``null``) when no trade lost;
- the *equity curve* is the starting equity (every starting balance valued at its
  coin's first mid price in the data) plus the results of the trades finished so far.
  It leaves out the price moves of the coins the paper accounts hold, which are the
  market's doing, not the strategy's;
- ``sharpe_ratio``: the equity curve sampled at every whole minute of replayed time from
  the first quote, returns ``e_i / e_(i-1) - 1``, ``mean / sample stdev`` annualised
  with ``sqrt(525,600)`` (minutes in a year; crypto never closes), risk-free rate 0.
  ``0.0`` with fewer than two returns or returns that never vary. Short backtests give
  noisy values: compare runs of the same length;
- ``max_drawdown_percent``: the largest fall of the equity curve from a running peak,
  in percent of the peak, taken trade by trade (exact, not sampled).

Money is rounded to 8 decimal places, percents and ratios to 4.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from arbotd import FINAL_STATES, Side, Trade, TradeState, performance

__all__ = [
    "MINUTES_PER_YEAR",
    "TRADE_COLUMNS",
    "compute_metrics",
    "equity_curve",
    "iso",
    "minute_samples",
    "route_name",
    "sharpe_ratio",
    "trade_row",
]

MINUTES_PER_YEAR = 365 * 24 * 60
_MONEY = Decimal("0.00000001")
ZERO = Decimal(0)


def money(value: Decimal) -> float:
    return float(value.quantize(_MONEY, rounding=ROUND_HALF_EVEN))


def iso(timestamp: float | None) -> str | None:
    """``2025-06-15T12:00:00.250Z`` (milliseconds: a backtest's events are close together),
    or ``None``."""
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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
        points.append((_closed_at(trade), float(equity)))
    return points


def minute_samples(curve: Sequence[tuple[float, float]], starting_equity: float,
                   first_ts: float, last_ts: float) -> list[float]:
    """The equity at ``first_ts`` and at every whole minute after it up to ``last_ts``
    (or the last trade, if later), and at that end if it is not a whole minute."""
    end = max(last_ts, curve[-1][0] if curve else last_ts)
    minutes = int((end - first_ts) // 60)
    marks = [first_ts + 60.0 * k for k in range(minutes + 1)]
    if marks[-1] < end:
        marks.append(end)
    samples = []
    index, equity = 0, starting_equity
    for mark in marks:
        while index < len(curve) and curve[index][0] <= mark:
            equity = curve[index][1]
            index += 1
        samples.append(equity)
    return samples


def sharpe_ratio(samples: Sequence[float]) -> float:
    """Annualised Sharpe ratio of one-minute equity samples (see the module docstring)."""
    return performance.sharpe_ratio(samples, MINUTES_PER_YEAR)


def _group(trades: Sequence[Trade]) -> dict[str, Any]:
    results = [t.realized_profit for t in trades]
    wins = sum(1 for r in results if r > 0)
    return {
        "trades": len(trades),
        "winning_trades": wins,
        "win_rate": round(100.0 * wins / len(trades), 4) if trades else 0.0,
        "net_profit": money(sum(results, ZERO)),
        "total_fees": money(sum((t.fees_paid for t in trades), ZERO)),
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
    results = [t.realized_profit for t in trades]
    gains = sum((r for r in results if r > 0), ZERO)
    losses = -sum((r for r in results if r < 0), ZERO)
    net = sum(results, ZERO)
    curve = equity_curve(trades, starting_equity)
    samples = minute_samples(curve, starting_equity, first_ts, last_ts)
    final_equity = curve[-1][1] if curve else starting_equity
    by_symbol: dict[str, list[Trade]] = {}
    by_route: dict[str, list[Trade]] = {}
    for trade in trades:
        by_symbol.setdefault(trade.symbol, []).append(trade)
        by_route.setdefault(route_name(trade.symbol, trade.buy_exchange,
                                       trade.sell_exchange), []).append(trade)
    states = {state: sum(1 for t in trades if t.state is state) for state in TradeState}
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
        "winning_trades": sum(1 for r in results if r > 0),
        "losing_trades": sum(1 for r in results if r < 0),
        "win_rate": round(100.0 * sum(1 for r in results if r > 0) / len(trades), 4)
        if trades else 0.0,
        "gross_profit": money(gains),
        "gross_loss": money(losses),
        "net_profit": money(net),
        "total_fees": money(sum((t.fees_paid for t in trades), ZERO)),
        "profit_factor": performance.profit_factor(results),
        "sharpe_ratio": sharpe_ratio(samples),
        "max_drawdown_percent": performance.max_drawdown_percent(
            [starting_equity, *(equity for _, equity in curve)]),
        "starting_equity": round(starting_equity, 8),
        "final_equity": round(final_equity, 8),
        "return_percent": round((final_equity / starting_equity - 1.0) * 100.0, 6)
        if starting_equity > 0 else 0.0,
        "by_symbol": {name: _group(group) for name, group in sorted(by_symbol.items())},
        "by_route": {name: _group(group) for name, group in sorted(by_route.items())},
        "rejections": dict(sorted(rejections.items(), key=lambda item: (-item[1], item[0]))),
        "bad_rows": dict(sorted(bad_rows.items())),
    }


TRADE_COLUMNS = (
    "trade_id", "signal_id", "symbol", "buy_exchange", "sell_exchange", "state",
    "quantity", "planned_buy_price", "planned_sell_price", "planned_profit",
    "bought", "buy_price", "sold", "sell_price", "net_profit", "fees", "started_at",
    "completed_at", "reason",
)
"""Columns of the report's ``trades.csv`` (and fields of the API's trades)."""


def _average(trade: Trade, side: Side) -> tuple[Decimal, Decimal | None]:
    fills = [f for f in trade.fills if f.side is side]
    quantity = sum((f.quantity for f in fills), ZERO)
    if not quantity:
        return ZERO, None
    return quantity, sum((f.price * f.quantity for f in fills), ZERO) / quantity


def trade_row(trade: Trade) -> dict[str, Any]:
    """One trade as a row of ``trades.csv``: ``bought``/``sold`` are the quantities of all
    its buy and sell fills (hedges and unwinds included) and ``buy_price``/``sell_price``
    their average prices; ``net_profit`` is the realised result, fees included."""
    bought, buy_price = _average(trade, Side.BUY)
    sold, sell_price = _average(trade, Side.SELL)
    return {
        "trade_id": trade.id,
        "signal_id": trade.signal_id,
        "symbol": trade.symbol,
        "buy_exchange": trade.buy_exchange,
        "sell_exchange": trade.sell_exchange,
        "state": str(trade.state),
        "quantity": float(trade.quantity),
        "planned_buy_price": float(trade.planned_buy_price),
        "planned_sell_price": float(trade.planned_sell_price),
        "planned_profit": float(trade.planned_profit),
        "bought": float(bought),
        "buy_price": None if buy_price is None else money(buy_price),
        "sold": float(sold),
        "sell_price": None if sell_price is None else money(sell_price),
        "net_profit": money(trade.realized_profit),
        "fees": money(trade.fees_paid),
        "started_at": iso(trade.started_at),
        "completed_at": iso(trade.completed_at),
        "reason": trade.reason,
    }
