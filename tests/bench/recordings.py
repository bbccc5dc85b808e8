"""Benchmark: reading recordings, Parquet beside gzip CSV, and a backtest from Parquet
beside a bare loop over the same file, measured in the same run.

The data is 1,000,000 quotes of 3 simulated venues x 20 symbols (the generator of
``backtest.py``), written once as ``.csv.gz`` and once as ``.parquet``. Best of three
runs each, taken in turn:

- *read + decode*: every quote of the file turned into an ``arbotd.Quote`` with every
  check of a backtest's reading, by :class:`arbotd_replay.QuoteFileReader` (CSV) and
  :class:`arbotd_replay.parquetfile.ParquetQuoteReader` (Parquet); and the same readers'
  batches alone, checked and decoded into arrays, their quotes not asked for (a backtest
  asks only for those the book keeps or a strategy evaluates:
  :class:`arbotd.batch.QuoteBatch`);
- *bare loop*: the Parquet file's record batches into the same ``Quote`` objects the
  cheapest way there is (:func:`~arbotd_replay.parquetfile.build_quotes`), nothing
  checked: the floor of any reading of it;
- *backtest*: :func:`arbotd_replay.run_backtest` on the Parquet file, from opening it to
  the last trade settled (the engine, the cross-exchange strategy, risk, paper fills),
  and the same on the CSV file (the same trades), for what reading costs a backtest.

    .venv/bin/python tests/bench/recordings.py [--quotes 1000000] [--depth N] [--quick]

Targets: Parquet read + decode at least 5x the CSV rate; the backtest at least 0.5 of the
bare loop's rate.
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
from typing import Any

import pyarrow.parquet as pq
from backtest import CONFIG, PRICES, SYMBOLS, VENUES, generate

from arbotd import make_plugin_manager
from arbotd._runtime import load_with_plugins
from arbotd_replay import BacktestOptions, DataProblems, QuoteFileReader, run_backtest
from arbotd_replay.parquetfile import ParquetQuoteReader, ParquetQuoteWriter, build_quotes
from arbotd_replay.quotefile import BATCH_SIZE
from arbotd_replay.sources import file_source


def read(reader: QuoteFileReader | ParquetQuoteReader, build: bool = True
         ) -> tuple[float, int]:
    """Every batch of ``reader``, with (``build``) or without its quotes iterated: a
    Parquet batch builds its ``Quote`` objects only when they are asked for."""
    started = time.perf_counter()
    count = 0
    consume = collections.deque(maxlen=0).extend
    for batch in reader.batches():
        if build:
            consume(batch)
        count += len(batch)
    return time.perf_counter() - started, count


def bare_loop(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_SIZE):
        # The cheapest decoding there is: no check, each column converted in one call.
        columns = [batch.column(name) for name in (
            "exchange", "symbol", "bid", "ask", "bid_size", "ask_size", "exchange_ts",
            "local_ts")]
        names = [column.dictionary.to_pylist() for column in columns[:2]]
        decoded = [list(map(names[i].__getitem__, columns[i].indices.to_pylist()))
                   for i in range(2)]
        count += len(build_quotes(*decoded, *(c.to_pylist() for c in columns[2:])))
    return time.perf_counter() - started, count


def backtest(path: Path, config_path: Path) -> tuple[float, int, int]:
    pm = make_plugin_manager()
    config = load_with_plugins(config_path, pm)
    problems = DataProblems()
    started = time.perf_counter()
    batches, progress = file_source([path], problems)
    result = run_backtest(pm, config, batches, options=BacktestOptions(), problems=problems,
                          source_progress=progress)
    elapsed = time.perf_counter() - started
    return elapsed, result.metrics["quotes"], result.metrics["total_trades"]


def line(label: str, seconds: float, count: int, note: str = "") -> float:
    rate = count / seconds
    print(f"  {label:<26}{rate:12,.0f} quotes/s  {seconds / count * 1e6:5.2f} µs/quote{note}")
    return rate


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
        csv_path = Path(directory) / "quotes.csv.gz"
        parquet = Path(directory) / "quotes.parquet"
        config_path = Path(directory) / "arbot.toml"
        prices = ", ".join(f"{s} = {p}" for s, p in PRICES.items())
        config_path.write_text(textwrap.dedent(CONFIG).format(
            symbols=list(SYMBOLS), prices=prices))
        written = generate(csv_path, count, args.depth)
        writer = ParquetQuoteWriter(parquet, reorder_seconds=0.0, levels=args.depth > 1)
        for batch in QuoteFileReader(csv_path, DataProblems(strict=True)).batches():
            writer.write_all(batch)
        writer.close()
        levels = f", books of {args.depth} levels" if args.depth > 1 else ""
        print(f"recordings: {written:,} quotes, {len(VENUES)} venues x {len(SYMBOLS)} "
              f"symbols{levels}; .csv.gz {csv_path.stat().st_size / 1e6:.1f} MB, .parquet "
              f"{parquet.stat().st_size / 1e6:.1f} MB")
        measures = {
            "csv": lambda: read(QuoteFileReader(csv_path, DataProblems())),
            "parquet": lambda: read(ParquetQuoteReader(parquet, DataProblems()).open()),
            "csv_lazy": lambda: read(QuoteFileReader(csv_path, DataProblems()), False),
            "lazy": lambda: read(ParquetQuoteReader(parquet, DataProblems()).open(), False),
            "bare": lambda: bare_loop(parquet),
            "backtest": lambda: backtest(parquet, config_path),
            "csv_backtest": lambda: backtest(csv_path, config_path),
        }
        # Round after round of every measure, the best of each kept: a shared machine's
        # speed drifts over minutes, and a ratio of two figures taken minutes apart
        # would carry the drift.
        best: dict[str, tuple[Any, ...]] = {}
        for _ in range(runs):
            for name, measure in measures.items():
                result = measure()
                best[name] = min(best.get(name, result), result)
        csv_s, csv_n = best["csv"]
        pq_s, pq_n = best["parquet"]
        csv_lazy_s, csv_lazy_n = best["csv_lazy"]
        lazy_s, lazy_n = best["lazy"]
        bare_s, bare_n = best["bare"]
        bt_s, bt_n, trades = best["backtest"]
        csv_bt_s, csv_bt_n, csv_trades = best["csv_backtest"]
        if not csv_n == pq_n == csv_lazy_n == lazy_n == bare_n == bt_n == csv_bt_n == written:
            sys.exit(f"quotes lost: wrote {written}, read {csv_n} (CSV), {pq_n} (Parquet), "
                     f"{bare_n} (bare loop), replayed {bt_n} (Parquet), {csv_bt_n} (CSV)")
        if csv_trades != trades:
            sys.exit(f"the CSV backtest made {csv_trades} trades, the Parquet one {trades}")
        csv_rate = line("CSV read + decode:", csv_s, csv_n)
        pq_rate = line("Parquet read + decode:", pq_s, pq_n)
        csv_lazy_rate = line("CSV read, no quote:", csv_lazy_s, csv_lazy_n,
                             "  (checked and decoded; quotes built when asked for)")
        lazy_rate = line("Parquet read, no quote:", lazy_s, lazy_n,
                         "  (checked and decoded; quotes built when asked for)")
        bare_rate = line("Parquet bare loop:", bare_s, bare_n)
        bt_rate = line("backtest from Parquet:", bt_s, bt_n, f"  ({trades} trades)")
        line("backtest from CSV:", csv_bt_s, csv_bt_n)
        print(f"  ratio Parquet/CSV read rate: {pq_rate / csv_rate:.2f} with every quote built, "
              f"{lazy_rate / csv_lazy_rate:.2f} as the readers hand batches to a backtest "
              "(target >= 5)")
        print(f"  ratio backtest/bare loop rate: {bt_rate / bare_rate:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
