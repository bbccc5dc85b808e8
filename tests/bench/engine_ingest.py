"""Quotes per second through the engine, and the time from quote to signal decision, for
best-level quotes and for books of 20 levels a side, in the same run.

3 venues x 50 symbols, fed in-process (no sockets) with prices that wander so that some
quotes open opportunities. The quotes are built before the timed loops (a pool of
:data:`POOL` rows, cycled through), so that the figures are the engine's own: building a
book's quote is the feed's work (``feed_ingest.py``). Each kind is printed beside a
baseline loop that hands the same quotes to a function doing nothing, measured in the
same run; the engine's cost per quote is the difference. The books' levels are 0.25
units each (about 25 USDT), so that a trade of ``trade_amount_usd`` (100) walks four of
them when they pay.

    .venv/bin/python tests/bench/engine_ingest.py [--quotes 300000] [--quick]

Targets: the engine adds at most 20 µs per quote (issue 3), and at most 20 µs per update
of a book of 20 levels a side (depth).
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time
from collections.abc import Callable

from arbotd import Bus, Engine, Ledger, Quote
from arbotd_xarb import ArbitrageConfig, CrossExchangeStrategy

VENUES = ("venue_a", "venue_b", "venue_c")
SYMBOLS = [f"S{i:02d}USDT" for i in range(50)]
LEVELS = 20
LEVEL_SIZE = 0.25
TICK = 0.0001  # between levels, as a fraction of the price
POOL = 15_000  # quotes built once and cycled through (a book's quote is ~3.6 KB)

Row = tuple[str, str, float, float]
MakeQuote = Callable[[str, str, float, float, float], Quote]


def make_inputs(count: int, seed: int = 1) -> list[Row]:
    """(venue, symbol, bid, ask) tuples: a random walk per symbol, a venue offset that
    now and then crosses another venue's book."""
    rng = random.Random(seed)
    mids = dict.fromkeys(SYMBOLS, 100.0)
    rows = []
    for i in range(count):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        venue = VENUES[(i // len(SYMBOLS)) % len(VENUES)]
        mids[symbol] *= 1 + rng.gauss(0, 0.0002)
        offset = rng.gauss(0, 0.001) + (0.006 if rng.random() < 0.002 else 0.0)
        mid = mids[symbol] * (1 + offset)
        rows.append((venue, symbol, mid * 0.9999, mid * 1.0001))
    return rows


def best_level(venue: str, symbol: str, bid: float, ask: float, now: float) -> Quote:
    return Quote(venue, symbol, bid, ask, 10.0, 10.0, now, now)


def book(venue: str, symbol: str, bid: float, ask: float, now: float) -> Quote:
    """A book of LEVELS levels a side, as a feed's OrderBook.quote builds it."""
    bids = tuple((bid * (1 - k * TICK), LEVEL_SIZE) for k in range(LEVELS))
    asks = tuple((ask * (1 + k * TICK), LEVEL_SIZE) for k in range(LEVELS))
    return Quote(venue, symbol, bid, ask, LEVEL_SIZE, LEVEL_SIZE, now, now,
                 bids=bids, asks=asks)


def prebuilt(rows: list[Row], make: MakeQuote) -> list[Quote]:
    now = time.time()
    return [make(venue, symbol, bid, ask, now) for venue, symbol, bid, ask in rows[:POOL]]


def _nothing(quote: Quote) -> None:
    pass


def feed(on_quote: Callable[[Quote], None], quotes: list[Quote], count: int
         ) -> tuple[float, list[int]]:
    """Seconds to hand ``count`` quotes (cycling through ``quotes``) to ``on_quote``, and
    the nanoseconds each 16th call took."""
    samples: list[int] = []
    perf_ns = time.perf_counter_ns
    pool = len(quotes)
    start = time.perf_counter()
    for i in range(count):
        quote = quotes[i % pool]
        if i % 16 == 0:
            t0 = perf_ns()
            on_quote(quote)
            samples.append(perf_ns() - t0)
        else:
            on_quote(quote)
    return time.perf_counter() - start, samples


def make_engine(subscribers: int) -> tuple[Engine, list]:
    ledger = Ledger()
    # The pool's quotes keep the time they were built: a long max age keeps them fresh.
    strategy = CrossExchangeStrategy(ArbitrageConfig(symbols=SYMBOLS, cooldown_seconds=5.0,
                                                     max_trades_per_hour=100000,
                                                     max_spread_age_seconds=3600.0))
    bus = Bus()
    subs = [bus.subscribe() for _ in range(subscribers)]
    engine = Engine(strategies=[strategy], bus=bus, ledger=ledger)
    engine.set_venues(dict.fromkeys(VENUES, 0.001), {})
    for venue in VENUES:
        engine.on_feed_state(venue, True)
    return engine, subs


def through_engine(quotes: list[Quote], count: int, subscribers: int = 0
                   ) -> tuple[float, list[int], int]:
    engine, _subs = make_engine(subscribers)
    elapsed, samples = feed(engine.on_quote, quotes, count)
    return elapsed, samples, engine.signals_detected


def measure(label: str, quotes: list[Quote], count: int, runs: int) -> dict[int, float]:
    """Prints the baseline and the engine's figures for one kind of quote; returns the
    engine's added µs per quote by number of bus subscribers."""
    base = min(feed(_nothing, quotes, count)[0] for _ in range(runs))
    print(f"  {label}")
    print(f"    baseline (hand quotes to a no-op): {count / base:12,.0f} quotes/s  "
          f"{base / count * 1e6:6.2f} µs/quote")
    added_by: dict[int, float] = {}
    for subscribers in (0, 1):
        results = [through_engine(quotes, count, subscribers) for _ in range(runs)]
        elapsed, samples, signals = min(results, key=lambda r: r[0])
        p50 = statistics.median(samples) / 1000
        p99 = statistics.quantiles(samples, n=100)[98] / 1000
        added = added_by[subscribers] = (elapsed - base) / count * 1e6
        print(
            f"    engine, {subscribers} bus subscriber(s): {count / elapsed:12,.0f} quotes/s  "
            f"{elapsed / count * 1e6:6.2f} µs/quote  (engine adds {added:5.2f} µs; "
            f"target <= 20)  decision p50 {p50:5.2f} µs  p99 {p99:6.2f} µs  "
            f"signals {signals}"
        )
    return added_by


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=300_000)
    parser.add_argument("--quick", action="store_true", help="20,000 quotes, one run each")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = 20_000 if args.quick else args.quotes
    rows = make_inputs(min(count, POOL))
    runs = 1 if args.quick else 3

    print(f"engine_ingest: {count} quotes, {len(VENUES)} venues x {len(SYMBOLS)} symbols")
    level1 = measure("best level only (level-1 feeds)", prebuilt(rows, best_level), count,
                     runs)
    depth = measure(f"books of {LEVELS} levels a side", prebuilt(rows, book), count, runs)
    for subscribers in (0, 1):
        print(f"  depth/level-1 engine cost, {subscribers} bus subscriber(s): "
              f"{depth[subscribers]:5.2f} / {level1[subscribers]:5.2f} µs = "
              f"{depth[subscribers] / level1[subscribers]:.2f}")


if __name__ == "__main__":
    main()
