"""One run of a sweep, as a Dask task: the very backtest ``arbotd backtest`` runs, on
whichever worker gets it.

A task carries everything the run needs except the data: the configuration file's text
(never a secret: those come from the environment), the run's overrides, the data files'
paths (the same path on every worker) and the period. The worker loads the installed
plugins as ``arbotd backtest`` does, builds the configuration with the overrides
(:func:`arbotd.config_from_text`), reads the files through
:func:`~arbotd_replay.sources.file_source` and replays them with
:func:`~arbotd_replay.backtest.run_backtest`: the same code on the same input, so the
same figures.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import attrs
import tomlkit

from arbotd import ArbotError, ConfigError, config_from_text, make_plugin_manager
from arbotd_replay.backtest import BacktestOptions, BacktestResult, run_backtest
from arbotd_replay.quotefile import DataProblems
from arbotd_replay.sources import file_source

__all__ = ["RunOutcome", "SweepTask", "run_task"]


@attrs.frozen
class SweepTask:
    """One run: ``overrides`` set on the configuration ``config_text`` (of the file
    ``config_path``), replaying ``data`` from ``start`` (included) to ``end``
    (excluded)."""

    key: str
    config_text: str
    config_path: str
    overrides: tuple[tuple[str, Any], ...]
    data: tuple[str, ...]
    start: float = -math.inf
    end: float = math.inf
    strict: bool = False
    keep_result: bool = False


@attrs.frozen
class RunOutcome:
    """What a run gives back: its metrics, or the error that stopped it (no quote in its
    period, a bad row with ``strict``); the whole result when the task asked for it (for
    a report)."""

    key: str
    metrics: dict[str, Any] | None
    error: str | None
    elapsed_seconds: float
    result: BacktestResult | None = None


def _disabled(config_text: str) -> list[str]:
    disabled = tomlkit.parse(config_text).unwrap().get("plugins", {}).get("disable", [])
    return [name for name in disabled if isinstance(name, str)] \
        if isinstance(disabled, list) else []


def run_task(task: SweepTask) -> RunOutcome:
    """Run ``task`` (on a Dask worker, or anywhere). A deterministic failure of the run
    comes back as the outcome's ``error``; anything else raises, for Dask to retry."""
    started = time.perf_counter()
    # Workers log at warning, as `arbotd backtest` does: a run logs every trade at info.
    logging.getLogger("arbotd_replay").setLevel(logging.WARNING)
    pm = make_plugin_manager(disabled=_disabled(task.config_text))
    try:
        config = config_from_text(task.config_text, pm, path=Path(task.config_path),
                                  updates=dict(task.overrides))
    except ConfigError as err:
        return RunOutcome(task.key, None, "; ".join(map(str, err.problems)),
                          time.perf_counter() - started)
    section = config["backtest"]
    problems = DataProblems(strict=task.strict or section.strict)
    options = BacktestOptions.from_config(section)
    try:
        batches, progress = file_source([Path(p) for p in task.data], problems,
                                        start=task.start, end=task.end)
        result = run_backtest(pm, config, batches, options=options, problems=problems,
                              source_progress=progress)
    except ArbotError as err:
        return RunOutcome(task.key, None, str(err), time.perf_counter() - started)
    return RunOutcome(task.key, result.metrics, None, time.perf_counter() - started,
                      result if task.keep_result else None)
