"""Benchmark: quotes per second replayed end to end by a backtest, beside a loop that only
reads and parses the same file, measured in the same run.

The data is 1,000,000 quotes of 3 simulated venues x 20 symbols (the simulated market's
generator, so books, spreads and dislocations are realistic), written once to a
temporary ``.csv.gz`` in the recorded format. Then, best of three runs each:

- *read + parse*: :class:`arbotd_replay.QuoteFileReader` over the file, every row checked
  and turned into a ``Quote``, nothing else;
- *replay*: :func:`arbotd_replay.run_backtest` on the same file with the installed
  plugins: the engine, the cross-exchange strategy, the risk checks and paper fills in
  virtual time, from opening the file to the last trade settled.

    .venv/bin/python tests/bench/backtest.py [--quotes 1000000] [--depth N] [--quick]

Targets: replay at least 250,000 quotes/s, and at least half the read rate. With
``--depth N`` the recording carries books of N levels a side (``[simulation]
depth_levels``): the cost of reading, checking and replaying them.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from arbotd import make_plugin_manager
from arbotd._runtime import load_with_plugins
from arbotd_replay import (
    BacktestOptions,
    DataProblems,
    QuoteFileReader,
    QuoteFileWriter,
    run_backtest,
)
from arbotd_sim.config import SimulationConfig
from arbotd_sim.market import VenueSimulator

VENUES = ("sim_alpha", "sim_beta", "sim_gamma")
SYMBOLS = [f"SIM{i:02d}USDT" for i in range(20)]
# Prices across the magnitudes real symbols have, 0.05 to 50,000.
PRICES = {s: round(0.05 * 10 ** (i % 7) * (1 + i / 20), 6) for i, s in enumerate(SYMBOLS)}
EPOCH = 1_750_000_000.0

CONFIG = """
[arbitrage]
symbols = {symbols}
# Enough signals to keep trades in flight through the run (the default caps at 50/h).
max_trades_per_hour = 100000
cooldown_seconds = 10.0

[simulation]
start_prices = {{ {prices} }}

[api]
enabled = false
"""


def generate(path: Path, count: int, depth: int = 1) -> int:
    """``count`` quotes (rounded up to whole ticks) of the simulated market into
    ``path``, with books of ``depth`` levels a side; the venues' ticks are staggered by a
    third of a tick, as the simulated venues are."""
    config = SimulationConfig(venues=list(VENUES), start_prices=PRICES, depth_levels=depth)
    sims = [VenueSimulator(config, venue, SYMBOLS) for venue in VENUES]
    rate = config.updates_per_second
    writer = QuoteFileWriter(path, reorder_seconds=0.0, levels=depth > 1)
    written, tick = 0, 0
    while written < count:
        for index, sim in enumerate(sims):
            quotes = sim.step(EPOCH + (tick + index / len(sims)) / rate)
            for quote in quotes:
                writer.write(quote)
            written += len(quotes)
        tick += 1
    writer.close()
    return written


def read_only(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    consume = collections.deque(maxlen=0).extend
    for batch in QuoteFileReader(path, DataProblems()).batches():
        consume(batch)  # a batch builds its Quote objects when they are asked for
        count += len(batch)
    return time.perf_counter() - started, count


def replay(path: Path, config_path: Path) -> tuple[float, int, int]:
    pm = make_plugin_manager()
    config = load_with_plugins(config_path, pm)
    problems = DataProblems()
    started = time.perf_counter()
    reader = QuoteFileReader(path, problems).open()
    result = run_backtest(pm, config, reader.batches(), options=BacktestOptions(),
                          problems=problems)
    elapsed = time.perf_counter() - started
    return elapsed, result.metrics["quotes"], result.metrics["total_trades"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=1_000_000)
    parser.add_argument("--depth", type=int, default=1,
                        help="levels of the recorded books, per side (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="20,000 quotes, one run each (for the test suite)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = 20_000 if args.quick else args.quotes
    runs = 1 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="arbotd-bench-") as directory:
        data = Path(directory) / "quotes.csv.gz"
        config_path = Path(directory) / "arbot.toml"
        prices = ", ".join(f"{s} = {p}" for s, p in PRICES.items())
        config_path.write_text(textwrap.dedent(CONFIG).format(
            symbols=list(SYMBOLS), prices=prices))
        started = time.perf_counter()
        written = generate(data, count, args.depth)
        levels = f", books of {args.depth} levels" if args.depth > 1 else ""
        print(f"backtest: {written:,} quotes, {len(VENUES)} venues x {len(SYMBOLS)} symbols"
              f"{levels}, "
              f"{data.stat().st_size / 1e6:.1f} MB compressed "
              f"(generated in {time.perf_counter() - started:.1f} s)")
        read_s, read_n = min(read_only(data) for _ in range(runs))
        replay_s, replay_n, trades = min(replay(data, config_path) for _ in range(runs))
        if read_n != written or replay_n != written:
            sys.exit(f"quotes lost: wrote {written}, read {read_n}, replayed {replay_n}")
        read_rate, replay_rate = read_n / read_s, replay_n / replay_s
        print(f"  read + parse only:   {read_rate:12,.0f} quotes/s  "
              f"{read_s / read_n * 1e6:5.2f} µs/quote")
        print(f"  replay, end to end:  {replay_rate:12,.0f} quotes/s  "
              f"{replay_s / replay_n * 1e6:5.2f} µs/quote  ({trades} trades; "
              "target >= 250,000 quotes/s)")
        print(f"  ratio replay/read rate: {replay_rate / read_rate:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
