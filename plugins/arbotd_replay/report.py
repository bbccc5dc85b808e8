"""What ``arbotd backtest`` shows and writes: the progress bar, the summary table, and the
report directory (``trades.csv``, ``fills.csv``, ``signals.csv``, ``metrics.json``,
``equity.png``, ``report.html``, one page with the charts and tables that opens in a
browser without a server: :mod:`arbotd_replay.htmlreport`, and the inventory's
``inventory.json`` and ``drift.csv``).

Every figure comes from the result's ``metrics`` dict (:mod:`arbotd_replay.metrics`):
the summary formats it, ``metrics.json`` is it, and ``trades.csv`` holds the trades it
was computed from.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any, TextIO

from arbotd.figures import money, size
from arbotd_replay.backtest import BacktestResult
from arbotd_replay.htmlreport import write_html_report
from arbotd_replay.metrics import TRADE_COLUMNS, equity_curve, iso, trade_row
from arbotd_replay.quotefile import PROBLEM_KINDS

__all__ = ["DRIFT_COLUMNS", "FILL_COLUMNS", "SIGNAL_COLUMNS", "ProgressBar", "format_summary",
           "write_report"]

SIGNAL_COLUMNS = (
    "signal_id", "time", "symbol", "buy_exchange", "sell_exchange", "buy_price",
    "sell_price", "quantity", "profit", "profit_percent", "executed", "reject_reason",
    "buy_native_price", "sell_native_price", "buy_rate", "sell_rate",
)
"""Columns of ``signals.csv``; ``time`` is ISO 8601 UTC to the microsecond, like every
time of the report. The last four are empty but on a venue quoted in another currency
(:mod:`arbotd.fx`): the prices in its currency and the rates they were converted at."""

DRIFT_COLUMNS = ("time", "asset", "exchange", "share", "drift")
"""Columns of ``drift.csv``: each asset's share of its total on each exchange and its
drift from the target share (fractions), once a minute of market time."""

FILL_COLUMNS = (
    "trade_id", "client_order_id", "purpose", "exchange", "symbol", "side", "price",
    "quantity", "fee", "fee_asset", "fee_value", "time", "native_price", "native_asset",
)
"""Columns of ``fills.csv``: every execution of every trade, from which each figure of
``trades.csv`` and ``metrics.json`` can be computed again. On a venue quoted in another
currency ``price`` is converted into the quote currency, ``native_price`` is what the
venue charged in ``native_asset`` (empty elsewhere)."""


class ProgressBar:
    """``[#####.....]  42.0 %  1,234,567 quotes`` on one line of a terminal, redrawn at
    most ten times a second; :meth:`close` clears it before the summary is printed."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self._drawn = 0
        self._next = 0.0

    def __call__(self, quotes: int, fraction: float) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 0.1
        filled = int(self.width * min(1.0, max(0.0, fraction)))
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f} %  "
                f"{quotes:,} quotes")
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0


def _table(headers: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def _groups(title: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    if not groups:
        return []
    rows = [[name, f"{g['trades']}", f"{g['win_rate']:.2f}", f"{g['net_profit']:.8f}",
             f"{g['total_fees']:.8f}"] for name, g in groups.items()]
    return ["", *_table([title, "trades", "win rate %", "net profit", "fees"], rows)]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "none"


def _ratio(m: dict[str, Any], name: str, places: int = 4) -> str:
    value = m[name]
    if value is None:
        return f"n/a ({m['notes'].get(name, 'not defined')})"
    return f"{value:.{places}f}"


def format_summary(result: BacktestResult) -> str:
    """The summary table, as printed: the figures of ``metrics.json``, to the same
    precision."""
    m = result.metrics
    lines = [
        f"Backtest: {m['quotes']:,} quotes from {m['start']} to {m['end']} "
        f"({m['duration_seconds']:,.1f} s of market), {len(m['exchanges'])} exchanges, "
        f"{len(m['symbols'])} symbols",
        f"  replayed in {result.elapsed_seconds:.2f} s "
        f"({result.quotes_per_second:,.0f} quotes/s)",
        "",
        *(f"  {label:<15}{value}" for label, value in [
            ["trades", f"{m['total_trades']}  (completed {m['completed_trades']}, unwound "
                       f"{m['unwound_trades']}, failed {m['failed_trades']})"],
            ["win rate", f"{m['win_rate']:.4f} %"],
            ["gross profit", f"{m['gross_profit']:.8f}  (before fees)"],
            ["fees", f"{m['total_fees']:.8f}"],
            ["net profit", f"{m['net_profit']:.8f}"],
            ["slippage", f"{m['slippage']:.8f}  (positive: worse than planned)"],
            ["wins / losses", f"{m['winning_total']:.8f} / {m['losing_total']:.8f}"],
            ["profit factor", _ratio(m, "profit_factor")],
            ["Sharpe ratio", _ratio(m, "sharpe_ratio")],
            ["Sortino ratio", _ratio(m, "sortino_ratio")],
            ["max drawdown", f"{m['max_drawdown_percent']:.4f} %"],
            ["return", f"{m['return_percent']:.6f} %  (equity {m['starting_equity']:,.8f} "
                       f"-> {m['final_equity']:,.8f})"],
            ["signals", f"{m['signals']}  ({m['signals_executed']} executed)"],
        ]),
    ]
    lines += _groups("by symbol", m["by_symbol"])
    lines += _groups("by route", m["by_route"])
    lines += ["", f"  rejected opportunities: {_counts(m['rejections'])}"]
    bad = {PROBLEM_KINDS.get(kind, kind): count for kind, count in m["bad_rows"].items()}
    lines.append(f"  bad rows skipped: {_counts(bad)}")
    lines += _inventory_lines(result.inventory)
    return "\n".join(lines)


def _inventory_lines(inventory: dict[str, Any]) -> list[str]:
    if not inventory:
        return []
    worst = []
    for asset, venues in inventory["max_drift"].items():
        venue, drift = max(venues.items(), key=lambda item: abs(item[1]))
        worst.append(f"{asset} {drift * 100:+.1f} % ({venue})")
    plan = inventory["report"]["plan"]
    return [f"  max inventory drift: {', '.join(worst) or 'none'}",
            f"  rebalancing plan at the end: {len(plan)} transfer"
            f"{'s' * (len(plan) != 1)} (inventory.json)"]


def write_report(result: BacktestResult, directory: Path) -> list[Path]:
    """Write the report files into ``directory`` (created if needed); return their
    paths."""
    directory.mkdir(parents=True, exist_ok=True)
    trades_path = directory / "trades.csv"
    with trades_path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=TRADE_COLUMNS)
        writer.writeheader()
        for trade in result.trades:
            writer.writerow(trade_row(trade))
    fills_path = directory / "fills.csv"
    with fills_path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(FILL_COLUMNS)
        for trade in result.trades:
            purposes = {o.client_order_id: o.purpose for o in trade.orders}
            for fill in trade.fills:
                writer.writerow([
                    trade.id, fill.order_id, purposes.get(fill.order_id, "entry"),
                    fill.exchange, fill.symbol, fill.side.value, fill.price, fill.quantity,
                    fill.fee, fill.fee_asset, "" if fill.fee_value is None else fill.fee_value,
                    iso(fill.timestamp), _blank(fill.native_price), fill.native_asset or "",
                ])
    signals_path = directory / "signals.csv"
    with signals_path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(SIGNAL_COLUMNS)
        for s in result.signals:
            writer.writerow([s.id, iso(s.timestamp), s.symbol, s.buy_exchange,
                             s.sell_exchange, repr(s.buy_price), repr(s.sell_price),
                             size(s.quantity), money(s.profit), round(s.profit_percent, 6),
                             s.executed, s.reject_reason or "", _blank(s.buy_native_price),
                             _blank(s.sell_native_price), _blank(s.buy_rate),
                             _blank(s.sell_rate)])
    metrics_path = directory / "metrics.json"
    metrics_path.write_text(json.dumps(result.metrics, indent=2) + "\n", encoding="utf-8")
    paths = [trades_path, fills_path, signals_path, metrics_path,
             _plot(result, directory / "equity.png"),
             write_html_report(result, directory / "report.html"),
             *_write_inventory(result, directory)]
    problems_path = directory / "bad_rows.txt"
    if result.problems:
        problems_path.write_text("\n".join(result.problems) + "\n", encoding="utf-8")
        paths.append(problems_path)
    else:
        # A report directory used again must not keep an earlier run's list.
        problems_path.unlink(missing_ok=True)
    return paths


def _write_inventory(result: BacktestResult, directory: Path) -> list[Path]:
    """``inventory.json`` (the inventory at the end, its plan, the largest drifts) and
    ``drift.csv`` (each asset's share and drift on each venue, once a minute)."""
    if not result.inventory:
        return []
    summary_path = directory / "inventory.json"
    summary = {"max_drift": result.inventory["max_drift"], **result.inventory["report"]}
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    drift_path = directory / "drift.csv"
    with drift_path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(DRIFT_COLUMNS)
        for timestamp, asset, venue, share, drift in result.inventory["history"]:
            writer.writerow([iso(timestamp), asset, venue, round(share, 6), round(drift, 6)])
    return [summary_path, drift_path]


def _plot(result: BacktestResult, path: Path) -> Path:
    # The object API with the Agg canvas: no pyplot global state, safe off the main
    # thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    m = result.metrics
    start = dt.datetime.fromisoformat(m["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(m["end"].replace("Z", "+00:00"))
    points = [(start, m["starting_equity"])]
    for stamp, equity in equity_curve(result.trades, m["starting_equity"]):
        points.append((dt.datetime.fromtimestamp(stamp, dt.UTC), equity))
    points.append((max(end, points[-1][0]), m["final_equity"]))
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.step([p[0] for p in points], [p[1] for p in points], where="post", color="#1f77b4")
    axes.set_title(f"Equity: {m['total_trades']} trades, net {m['net_profit']:+.4f}, "
                   f"max drawdown {m['max_drawdown_percent']:.4f} %")
    axes.set_xlabel("time (UTC)")
    axes.set_ylabel("equity (starting balances at first prices + results)")
    axes.ticklabel_format(axis="y", useOffset=False, style="plain")
    axes.grid(True, alpha=0.3)
    figure.savefig(path, dpi=100)
    return path


def _blank(value: object) -> object:
    """A value of the report, or an empty cell for ``None``."""
    return "" if value is None else value
