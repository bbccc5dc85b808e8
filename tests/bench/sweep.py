"""Benchmark: ``arbotd sweep`` of 16 configurations over one recording, on a Dask
LocalCluster of 1 and of 2 worker processes, beside plain backtests of the same
configurations, measured in the same run.

The data is the backtest benchmark's (1,000,000 quotes of the simulated market, 3 venues
x 20 symbols, a ``.csv.gz``). Figures:

- *plain backtests*: each of the sweep's 16 configurations replayed once in this process
  as ``arbotd backtest`` replays it (the plugins loaded, the configuration built with
  the overrides, :func:`arbotd_replay.run_backtest` from opening the file to the
  result), half of them before the sweeps and half after (a shared machine's speed
  drifts over minutes), and their sum;
- *sweep, N workers*: the whole ``arbotd sweep`` command (4 x 4 grid of
  ``min_profit_threshold`` and ``cooldown_seconds``), from its start to the ranked
  results written, on the LocalCluster of N single-threaded worker processes that the
  command starts for itself (:func:`arbotd_replay.sweep.local_cluster`), started just
  before and passed as ``--scheduler`` (its start, a few seconds whatever the sweep, is
  printed apart); with 1 worker, also the sum of the runs' own times on the worker
  (``elapsed_seconds`` in ``results.jsonl``): the rest is Dask's;
- the ratio of the two sweeps' wall times (target >= 1.7 on two cores), and the sweep's
  overhead per run: the 1-worker sweep beside the plain backtests of the same
  configurations (target <= 10 %). The configurations differ in cost (a lower
  threshold trades more), so they are compared set for set, never against one of them.

    .venv/bin/python tests/bench/sweep.py [--quotes 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import tempfile
import textwrap
import time
from pathlib import Path

from backtest import CONFIG, PRICES, SYMBOLS, VENUES, generate

from arbotd import config_from_text, make_plugin_manager
from arbotd._cli import main as arbotd_main
from arbotd_replay import BacktestOptions, DataProblems, QuoteFileReader, run_backtest
from arbotd_replay.sweep import local_cluster

THRESHOLDS = (0.001, 0.002, 0.003, 0.004)
COOLDOWNS = (5.0, 10.0, 20.0, 40.0)
QUICK_THRESHOLDS = (0.001, 0.002)
QUICK_COOLDOWNS = (5.0, 10.0)


def grid_options(thresholds: tuple[float, ...], cooldowns: tuple[float, ...]) -> list[str]:
    return ["--grid", f"arbitrage.min_profit_threshold={','.join(map(str, thresholds))}",
            "--grid", f"arbitrage.cooldown_seconds={','.join(map(str, cooldowns))}"]


def plain(config: Path, data: Path, params: dict[str, float]) -> tuple[float, int]:
    """One configuration replayed as ``arbotd backtest`` replays it: wall time (seconds)
    and trades."""
    started = time.perf_counter()
    pm = make_plugin_manager()
    built = config_from_text(config.read_text(), pm, path=config, updates=params)
    problems = DataProblems()
    reader = QuoteFileReader(data, problems).open()
    result = run_backtest(pm, built, reader.batches(), options=BacktestOptions(),
                          problems=problems)
    return time.perf_counter() - started, result.metrics["total_trades"]


def sweep(config: Path, data: Path, out: Path, workers: int, grid: list[str]
          ) -> tuple[float, float]:
    """The cluster's start, then the sweep on it (wall times, seconds)."""
    started = time.perf_counter()
    # The very cluster `arbotd sweep` makes for itself: one single-threaded worker
    # process each, with its Dask settings.
    cluster = local_cluster(workers)
    try:
        up = time.perf_counter() - started
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            status = arbotd_main(["-c", str(config), "sweep", "--data", str(data), *grid,
                                  "--scheduler", cluster.scheduler_address,
                                  "--out", str(out)])
        elapsed = time.perf_counter() - started
    finally:
        cluster.close()
    if status != 0:
        raise SystemExit(f"the sweep with {workers} workers failed ({status})")
    return up, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true",
                        help="5,000 quotes and 4 configurations (for the test suite)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = 5_000 if args.quick else args.quotes
    thresholds, cooldowns = ((QUICK_THRESHOLDS, QUICK_COOLDOWNS) if args.quick
                             else (THRESHOLDS, COOLDOWNS))
    grid = grid_options(thresholds, cooldowns)
    sets = [{"arbitrage.min_profit_threshold": t, "arbitrage.cooldown_seconds": c}
            for t in thresholds for c in cooldowns]
    runs = len(sets)
    with tempfile.TemporaryDirectory(prefix="arbotd-bench-") as directory:
        data = Path(directory) / "quotes.csv.gz"
        config = Path(directory) / "arbot.toml"
        prices = ", ".join(f"{s} = {p}" for s, p in PRICES.items())
        config.write_text(textwrap.dedent(CONFIG).format(symbols=list(SYMBOLS),
                                                         prices=prices))
        written = generate(data, count)
        print(f"sweep: {runs} configurations over {written:,} quotes, {len(VENUES)} venues x "
              f"{len(SYMBOLS)} symbols")
        plain(config, data, {})  # imports and first-run costs, paid by no figure
        before = [plain(config, data, params) for params in sets[0::2]]
        start_one, one = sweep(config, data, Path(directory) / "one", 1, grid)
        start_two, two = sweep(config, data, Path(directory) / "two", 2, grid)
        after = [plain(config, data, params) for params in sets[1::2]]
        single = sum(elapsed for elapsed, _ in before + after)
        trades = sum(count for _, count in before + after)
        entries = [json.loads(line) for line in
                   (Path(directory) / "one" / "results.jsonl").read_text().splitlines()]
        on_worker = sum(entry["elapsed_seconds"] for entry in entries)
        overhead = (one - single) / single * 100
        print(f"  plain backtests, {runs} configurations: {single:8.2f} s  "
              f"({single / runs:.2f} s per run, {trades} trades in all; "
              f"{sum(e for e, _ in before) / len(before):.2f} s per run before the sweeps, "
              f"{sum(e for e, _ in after) / len(after):.2f} s after)")
        print(f"  sweep, 1 worker:                   {one:8.2f} s  ({one / runs:.2f} s per run; "
              f"the runs took {on_worker:.2f} s on the worker, Dask the other "
              f"{one - on_worker:.2f} s; the cluster started in {start_one:.1f} s before)")
        print(f"  sweep, 2 workers:                  {two:8.2f} s  ({two / runs:.2f} s per run; "
              f"the cluster started in {start_two:.1f} s before)")
        print(f"  speed-up 2 workers / 1: {one / two:.2f} (target >= 1.7 on two cores)")
        print(f"  sweep overhead per run vs plain backtests of the same configurations: "
              f"{overhead:+.1f} % (target <= 10 %; each worker's first run imports the "
              "plugins)")


if __name__ == "__main__":
    main()
