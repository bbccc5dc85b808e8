"""Benchmark: ``arbotd sweep`` of 16 configurations over one recording, on a Dask
LocalCluster of 1 and of 2 worker processes, beside a plain backtest of one
configuration, measured in the same run.

The data is the backtest benchmark's (1,000,000 quotes of the simulated market, 3 venues
x 20 symbols, a ``.csv.gz``). Figures:

- *plain backtest*: :func:`arbotd_replay.run_backtest` of the base configuration, from
  opening the file to the result, the mean of one run before the sweeps and one after;
- *sweep, N workers*: the whole ``arbotd sweep`` command (4 x 4 grid of
  ``min_profit_threshold`` and ``cooldown_seconds``), from its start to the ranked
  results written, on the LocalCluster of N single-threaded worker processes that the
  command starts for itself (:func:`arbotd_replay.sweep.local_cluster`), started just
  before and passed as ``--scheduler`` (its start, a few seconds whatever the sweep, is
  printed apart);
- the ratio of the two sweeps' wall times (target >= 1.7 on two cores), and the sweep's
  overhead per run with 1 worker beside the plain backtest (target <= 10 %).

    .venv/bin/python tests/bench/sweep.py [--quotes 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import tempfile
import textwrap
import time
from pathlib import Path

from backtest import CONFIG, PRICES, SYMBOLS, VENUES, generate, replay

from arbotd._cli import main as arbotd_main
from arbotd_replay.sweep import local_cluster

GRID = ["--grid", "arbitrage.min_profit_threshold=0.001:0.004:0.001",
        "--grid", "arbitrage.cooldown_seconds=5,10,20,40"]
QUICK_GRID = ["--grid", "arbitrage.min_profit_threshold=0.001,0.002",
              "--grid", "arbitrage.cooldown_seconds=5,10"]


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
    grid = QUICK_GRID if args.quick else GRID
    runs = 4 if args.quick else 16
    with tempfile.TemporaryDirectory(prefix="arbotd-bench-") as directory:
        data = Path(directory) / "quotes.csv.gz"
        config = Path(directory) / "arbot.toml"
        prices = ", ".join(f"{s} = {p}" for s, p in PRICES.items())
        config.write_text(textwrap.dedent(CONFIG).format(symbols=list(SYMBOLS),
                                                         prices=prices))
        written = generate(data, count)
        print(f"sweep: {runs} configurations over {written:,} quotes, {len(VENUES)} venues x "
              f"{len(SYMBOLS)} symbols")
        before, _, trades = replay(data, config)
        start_one, one = sweep(config, data, Path(directory) / "one", 1, grid)
        start_two, two = sweep(config, data, Path(directory) / "two", 2, grid)
        # Measured before and after the sweeps: on a shared machine the load drifts over
        # minutes, and the overhead is a small difference of two long times.
        after, _, _ = replay(data, config)
        single = (before + after) / 2
        overhead = (one / runs - single) / single * 100
        print(f"  plain backtest, one configuration: {single:8.2f} s  ({trades} trades; "
              f"{before:.2f} s before the sweeps, {after:.2f} s after)")
        print(f"  sweep, 1 worker:                   {one:8.2f} s  ({one / runs:.2f} s per run; "
              f"the cluster started in {start_one:.1f} s before)")
        print(f"  sweep, 2 workers:                  {two:8.2f} s  ({two / runs:.2f} s per run; "
              f"the cluster started in {start_two:.1f} s before)")
        print(f"  speed-up 2 workers / 1: {one / two:.2f} (target >= 1.7 on two cores)")
        print(f"  sweep overhead per run vs a plain backtest: {overhead:+.1f} % "
              "(target <= 10 %; each worker's first run imports the plugins)")

if __name__ == "__main__":
    main()
