"""What ``arbotd sweep`` shows and writes: the parameter sets ranked by the objective, as
a printed table, ``results.csv``, ``results.json`` and, for a sweep of two keys,
``heatmap.png``.

Objectives, from each run's metrics (:mod:`arbotd_replay.metrics`):

- ``net_profit``: the net profit after fees;
- ``sharpe``: the Sharpe ratio of daily returns (none below 7 days of data: such runs
  rank last);
- ``calmar``: drawdown-adjusted return, ``return_percent / max_drawdown_percent``; a run
  that gained without any drawdown ranks above every finite value.

Ties keep the sweep's order. With a walk-forward split, the ranking is by the in-sample
period only, and each parameter set's out-of-sample figures stand beside its in-sample
ones: a set that ranks first in sample and poorly out of sample was fitted to noise.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["OBJECTIVES", "Ranked", "objective_value", "rank", "write_results"]

OBJECTIVES = ("net_profit", "sharpe", "calmar")

SHOWN_METRICS = ("net_profit", "total_trades", "win_rate", "return_percent",
                 "max_drawdown_percent", "sharpe_ratio", "profit_factor", "total_fees")
"""The figures of each run in ``results.csv`` (``results.json`` has every figure)."""

PRINTED_ROWS = 30


def objective_value(metrics: dict[str, Any] | None, objective: str) -> float | None:
    """The run's score: higher is better; ``None`` when it has none (a failed run, no
    Sharpe ratio)."""
    if metrics is None:
        return None
    if objective == "net_profit":
        return float(metrics["net_profit"])
    if objective == "sharpe":
        value = metrics["sharpe_ratio"]
        return None if value is None else float(value)
    if objective == "calmar":
        drawdown, gained = metrics["max_drawdown_percent"], metrics["return_percent"]
        if drawdown > 0:
            return round(gained / drawdown, 6)
        return math.inf if gained > 0 else 0.0
    raise ValueError(f"unknown objective {objective!r}: one of {', '.join(OBJECTIVES)}")


@attrs.frozen
class Ranked:
    """A parameter set and its runs by period (``all``, or ``in`` and ``out``)."""

    index: int
    params: dict[str, Any]
    runs: dict[str, dict[str, Any]]
    scores: dict[str, float | None]
    rank: int = 0


def rank(sets: Sequence[tuple[int, dict[str, Any], dict[str, dict[str, Any]]]],
         objective: str, ranked_on: str) -> list[Ranked]:
    """The parameter sets, best first by ``objective`` over the period ``ranked_on``."""
    rows = [Ranked(index, params, runs, {period: objective_value(run.get("metrics"),
                                                                 objective)
                                         for period, run in runs.items()})
            for index, params, runs in sets]

    def order(row: Ranked) -> tuple[bool, float, int]:
        score = row.scores.get(ranked_on)
        return (score is None, -(score if score is not None else 0.0), row.index)

    return [attrs.evolve(row, rank=place) for place, row in
            enumerate(sorted(rows, key=order), 1)]


def _score_text(score: float | None) -> str:
    if score is None:
        return "n/a"
    return "inf" if math.isinf(score) else f"{score:.6g}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _run_cells(run: dict[str, Any] | None) -> list[str]:
    metrics = run.get("metrics") if run else None
    if metrics is None:
        return ["failed", "", ""] if run else ["", "", ""]
    return [f"{metrics['net_profit']:.8f}", str(metrics["total_trades"]),
            f"{metrics['max_drawdown_percent']:.4f}"]


def format_table(ranked: Sequence[Ranked], keys: Sequence[str], objective: str,
                 periods: Sequence[str]) -> str:
    """The ranking as printed: the best :data:`PRINTED_ROWS` rows."""
    short = [key.rsplit(".", 1)[-1] for key in keys]
    headers = ["rank", *short]
    for period in periods:
        label = "" if period == "all" else f" ({period})"
        headers += [f"{objective}{label}", f"net{label}", f"trades{label}",
                    f"drawdown %{label}"]
    rows = []
    for row in ranked[:PRINTED_ROWS]:
        cells = [str(row.rank), *(_cell(row.params[k]) for k in keys)]
        for period in periods:
            cells += [_score_text(row.scores.get(period)), *_run_cells(row.runs.get(period))]
        rows.append(cells)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))
             for r in [headers, *rows]]
    if len(ranked) > PRINTED_ROWS:
        lines.append(f"  ... {len(ranked) - PRINTED_ROWS} more in results.csv")
    return "\n".join(lines)


def _json_score(score: float | None) -> float | str | None:
    return "inf" if score is not None and math.isinf(score) else score


def write_results(directory: Path, ranked: Sequence[Ranked], keys: Sequence[str], *,
                  objective: str, periods: Sequence[str], about: dict[str, Any]
                  ) -> list[Path]:
    """``results.csv``, ``results.json`` and (two keys) ``heatmap.png`` in
    ``directory``; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / "results.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        header = ["rank", *keys]
        for period in periods:
            prefix = "" if period == "all" else f"{period}_"
            header += [f"{prefix}{objective}", f"{prefix}run_key", f"{prefix}error",
                       *(f"{prefix}{name}" for name in SHOWN_METRICS)]
        writer.writerow(header)
        for row in ranked:
            cells: list[Any] = [row.rank, *(row.params[k] for k in keys)]
            for period in periods:
                run = row.runs.get(period) or {}
                metrics = run.get("metrics") or {}
                cells += [_score_text(row.scores.get(period)) if metrics else "",
                          run.get("key", ""), run.get("error") or "",
                          *("" if metrics.get(name) is None else metrics[name]
                            for name in SHOWN_METRICS)]
            writer.writerow(cells)
    json_path = directory / "results.json"
    document = {
        **about,
        "objective": objective,
        "keys": list(keys),
        "ranked_on": periods[0],
        "runs": [{"rank": row.rank, "params": row.params,
                  **{period: {"key": run.get("key"), "objective":
                              _json_score(row.scores.get(period)),
                              "error": run.get("error"), "metrics": run.get("metrics")}
                     for period, run in row.runs.items()}}
                 for row in ranked],
    }
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    paths = [csv_path, json_path]
    heatmap = directory / "heatmap.png"
    if len(keys) == 2:
        paths.append(_heatmap(ranked, keys, objective, periods, heatmap))
    else:
        heatmap.unlink(missing_ok=True)  # an earlier sweep's, in a directory used again
    return paths


def _heatmap(ranked: Sequence[Ranked], keys: Sequence[str], objective: str,
             periods: Sequence[str], path: Path) -> Path:
    # The object API with the Agg canvas, as the backtest's equity plot: no pyplot state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows_key, columns_key = keys
    row_values = sorted({r.params[rows_key] for r in ranked})
    column_values = sorted({r.params[columns_key] for r in ranked})
    figure = Figure(figsize=(5.5 * len(periods) + 1, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    for place, period in enumerate(periods, 1):
        grid = [[math.nan] * len(column_values) for _ in row_values]
        for r in ranked:
            score = r.scores.get(period)
            if score is not None and math.isfinite(score):
                grid[row_values.index(r.params[rows_key])][
                    column_values.index(r.params[columns_key])] = score
        axes = figure.add_subplot(1, len(periods), place)
        image = axes.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        figure.colorbar(image, ax=axes, label=objective)
        axes.set_xticks(range(len(column_values)), [_cell(v) for v in column_values],
                        rotation=45)
        axes.set_yticks(range(len(row_values)), [_cell(v) for v in row_values])
        axes.set_xlabel(columns_key)
        axes.set_ylabel(rows_key)
        title = {"all": "", "in": "in sample", "out": "out of sample"}[period]
        axes.set_title(f"{objective} {title}".strip())
        for i, line in enumerate(grid):
            for j, value in enumerate(line):
                if not math.isnan(value):
                    axes.text(j, i, f"{value:.3g}", ha="center", va="center",
                              color="white", fontsize=7)
    figure.savefig(path, dpi=100)
    return path
