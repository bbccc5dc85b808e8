"""``report.html``: a backtest's report as one page that opens in a browser from the
disk, without a server or a network: the CSS and the charts (SVG) are inside the file, and
nothing in it names another place.

It shows the figures of ``metrics.json`` (each in a cell whose ``data-metric`` names it,
the value as the JSON holds it), the equity curve and its drawdown from the running peak
(the curve of ``equity.png``: :func:`arbotd_replay.metrics.equity_curve`), and the tables
by route and by symbol.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arbotd_replay.backtest import BacktestResult
from arbotd_replay.metrics import equity_curve

__all__ = ["equity_points", "write_html_report"]

_WIDTH, _HEIGHT = 900, 260
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 100, 16, 14, 30

_LABELS = {
    "total_trades": "Trades", "completed_trades": "Completed", "unwound_trades": "Unwound",
    "failed_trades": "Failed or cancelled", "winning_trades": "Winning",
    "losing_trades": "Losing", "win_rate": "Win rate (%)",
    "gross_profit": "Gross profit (before fees)", "total_fees": "Fees",
    "net_profit": "Net profit", "slippage": "Slippage (positive: worse than planned)",
    "winning_total": "Sum of wins", "losing_total": "Sum of losses",
    "profit_factor": "Profit factor", "sharpe_ratio": "Sharpe ratio",
    "sortino_ratio": "Sortino ratio", "max_drawdown_percent": "Max drawdown (%)",
    "starting_equity": "Starting equity", "final_equity": "Final equity",
    "return_percent": "Return (%)", "signals": "Signals", "signals_executed": "Executed",
    "quotes": "Quotes replayed", "start": "Data from", "end": "Data to",
    "duration_seconds": "Market time (s)",
}

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
  color: #1d2430; background: #fff; max-width: 1000px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e7ee; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: #6b7686; } .up { color: #13795b; } .down { color: #b42318; }
svg { display: block; background: #fafbfc; border: 1px solid #e3e7ee; }
svg text { font: 11px system-ui, sans-serif; fill: #6b7686; }
.grid { display: grid; grid-template-columns: repeat(2, max-content); gap: 0 40px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def equity_points(result: BacktestResult) -> list[tuple[float, float]]:
    """``(epoch seconds, equity)``: the start, each finished trade, and the end, as the
    PNG plots them."""
    m = result.metrics
    start = _epoch(m["start"])
    end = _epoch(m["end"])
    points = [(start, float(m["starting_equity"]))]
    points += [(stamp, float(equity)) for stamp, equity in
               equity_curve(result.trades, m["starting_equity"])]
    points.append((max(end, points[-1][0]), float(m["final_equity"])))
    return points


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def drawdown_points(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The fall below the running peak at each point, in percent (0 or less)."""
    peak = float("-inf")
    out = []
    for stamp, equity in points:
        peak = max(peak, equity)
        out.append((stamp, -(peak - equity) / peak * 100.0 if peak > 0 else 0.0))
    return out


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / count
    return [low + step * i for i in range(count + 1)]


def _svg_chart(points: Sequence[tuple[float, float]], *, color: str, label: str,
               fill_to_zero: bool = False) -> str:
    """A stepped line over time as inline SVG (no namespace declaration: inside HTML it
    needs none, and the file names no other place)."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if fill_to_zero:
        y1 = max(y1, 0.0)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        margin = abs(y0) * 0.001 or 1.0
        y0, y1 = y0 - margin, y1 + margin
    plot_w = _WIDTH - _PAD_LEFT - _PAD_RIGHT
    plot_h = _HEIGHT - _PAD_TOP - _PAD_BOTTOM

    def sx(x: float) -> float:
        return _PAD_LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return _PAD_TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

    path = [f"M{sx(xs[0]):.1f},{sy(ys[0]):.1f}"]
    for (x, y), (_, before) in zip(points[1:], points, strict=False):
        path.append(f"L{sx(x):.1f},{sy(before):.1f}L{sx(x):.1f},{sy(y):.1f}")
    parts = [f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" height="{_HEIGHT}" '
             f'role="img" aria-label="{_e(label)}">']
    # As many decimals as the axis' steps need, at most 4.
    places = max(0, min(4, 2 - math.floor(math.log10((y1 - y0) / 4))))
    for tick in _ticks(y0, y1):
        y = sy(tick)
        parts.append(f'<line x1="{_PAD_LEFT}" x2="{_WIDTH - _PAD_RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}" stroke="#e3e7ee"/>')
        parts.append(f'<text x="{_PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{tick:,.{places}f}</text>')
    x_ticks = _ticks(x0, x1)
    for number, tick in enumerate(x_ticks):
        stamp = dt.datetime.fromtimestamp(tick, dt.UTC).strftime("%m-%d %H:%M:%S")
        anchor = ("start" if number == 0 else "end" if number == len(x_ticks) - 1
                  else "middle")
        parts.append(f'<text x="{sx(tick):.1f}" y="{_HEIGHT - 8}" text-anchor="{anchor}">'
                     f'{stamp}</text>')
    line = "".join(path)
    if fill_to_zero:
        zero = sy(0.0)
        parts.append(f'<path d="{line}L{sx(xs[-1]):.1f},{zero:.1f}L{sx(xs[0]):.1f},'
                     f'{zero:.1f}Z" fill="{color}" fill-opacity="0.15" stroke="none"/>')
    parts.append(f'<path d="{line}" fill="none" stroke="{color}" stroke-width="1.6"/>')
    parts.append("</svg>")
    return "".join(parts)


def _value(value: Any) -> str:
    """A figure as ``metrics.json`` holds it (so the page and the file agree to the
    digit); ``None`` is shown as n/a."""
    return "n/a" if value is None else json.dumps(value)


def _figures(m: dict[str, Any]) -> str:
    rows = []
    for name, label in _LABELS.items():
        if name not in m:
            continue
        value = m[name]
        note = m.get("notes", {}).get(name)
        tone = ""
        if name in ("net_profit", "return_percent") and isinstance(value, int | float):
            tone = " up" if value > 0 else " down" if value < 0 else ""
        rows.append(f'<tr><th>{_e(label)}</th><td class="num{tone}" data-metric="{_e(name)}">'
                    f'{_e(_value(value))}</td><td class="muted">{_e(note or "")}</td></tr>')
    return "<table>" + "".join(rows) + "</table>"


def _groups(title: str, groups: dict[str, dict[str, Any]], kind: str) -> str:
    if not groups:
        return f"<h2>{_e(title)}</h2><p class=\"muted\">No trades.</p>"
    columns = ("Trades", "Winning", "Win rate (%)", "Net profit", "Fees")
    head = (f"<tr><th>{_e(title.split()[-1].capitalize())}</th>"
            + "".join(f'<th class="num">{_e(column)}</th>' for column in columns) + "</tr>")
    rows = [
        f'<tr data-{kind}="{_e(name)}"><td>{_e(name)}</td>'
        f'<td class="num">{_e(_value(g["trades"]))}</td>'
        f'<td class="num">{_e(_value(g["winning_trades"]))}</td>'
        f'<td class="num">{_e(_value(g["win_rate"]))}</td>'
        f'<td class="num">{_e(_value(g["net_profit"]))}</td>'
        f'<td class="num">{_e(_value(g["total_fees"]))}</td></tr>'
        for name, g in groups.items()
    ]
    return f"<h2>{_e(title)}</h2><table>{head}{''.join(rows)}</table>"


def write_html_report(result: BacktestResult, path: Path) -> Path:
    """Write ``report.html`` for ``result`` at ``path``; return the path."""
    m = result.metrics
    points = equity_points(result)
    rejections = "".join(f"<tr><td>{_e(reason)}</td><td class=\"num\">{count:,}</td></tr>"
                         for reason, count in m["rejections"].items())
    body = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>arbotd backtest report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Backtest report</h1>",
        f'<p class="muted">{m["quotes"]:,} quotes from {_e(m["start"])} to {_e(m["end"])}, '
        f'{len(m["exchanges"])} exchanges ({_e(", ".join(m["exchanges"]))}), '
        f'{len(m["symbols"])} symbols. Money in the quote currency; every figure as in '
        "metrics.json beside this file.</p>",
        "<h2>Equity</h2>",
        '<p class="muted">Starting balances at the first prices, plus the net result of each '
        "finished trade.</p>",
        _svg_chart(points, color="#1f77b4", label="equity over time"),
        "<h2>Drawdown</h2>",
        '<p class="muted">Fall of equity below its running peak, in percent.</p>',
        _svg_chart(drawdown_points(points), color="#b42318", label="drawdown over time",
                   fill_to_zero=True),
        "<h2>Summary</h2>",
        _figures(m),
        _groups("By route", m["by_route"], "route"),
        _groups("By symbol", m["by_symbol"], "symbol"),
        "<h2>Opportunities not traded</h2>",
        f"<table>{rejections}</table>" if rejections
        else '<p class="muted">None were turned down.</p>',
        "</body></html>",
    ]
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return path
