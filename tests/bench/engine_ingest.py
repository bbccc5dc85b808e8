"""Quotes per second through the engine, and the time from quote to signal decision.

3 venues x 50 symbols, fed in-process (no sockets) with prices that wander so that some
quotes open opportunities. Printed beside a baseline loop that only builds the same
quotes, measured in the same run; the engine's own cost per quote is the difference.

    .venv/bin/python tests/bench/engine_ingest.py [--quotes 300000]

Target (issue 3): the engine adds at most 20 µs per quote.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time

from arbotd import Bus, Engine, Ledger, Quote
from arbotd_xarb import ArbitrageConfig, CrossExchangeStrategy

VENUES = ("venue_a", "venue_b", "venue_c")
SYMBOLS = [f"S{i:02d}USDT" for i in range(50)]


def make_inputs(count: int, seed: int = 1) -> list[tuple[str, str, float, float]]:
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


def baseline(rows: list[tuple[str, str, float, float]]) -> float:
    start = time.perf_counter()
    now = time.time()
    for venue, symbol, bid, ask in rows:
        Quote(venue, symbol, bid, ask, 10.0, 10.0, now, now)
    return time.perf_counter() - start


def make_engine(subscribers: int) -> tuple[Engine, list]:
    ledger = Ledger()
    strategy = CrossExchangeStrategy(ArbitrageConfig(symbols=SYMBOLS, cooldown_seconds=5.0,
                                                     max_trades_per_hour=100000))
    bus = Bus()
    subs = [bus.subscribe() for _ in range(subscribers)]
    engine = Engine(strategies=[strategy], bus=bus, ledger=ledger)
    engine.set_venues(dict.fromkeys(VENUES, 0.001), {})
    for venue in VENUES:
        engine.on_feed_state(venue, True)
    return engine, subs


def through_engine(rows: list[tuple[str, str, float, float]], subscribers: int = 0
                   ) -> tuple[float, list[int], int]:
    engine, _subs = make_engine(subscribers)
    samples: list[int] = []
    perf_ns = time.perf_counter_ns
    on_quote = engine.on_quote
    start = time.perf_counter()
    now = time.time()
    for i, (venue, symbol, bid, ask) in enumerate(rows):
        quote = Quote(venue, symbol, bid, ask, 10.0, 10.0, now, now)
        if i % 16 == 0:
            t0 = perf_ns()
            on_quote(quote)
            samples.append(perf_ns() - t0)
        else:
            on_quote(quote)
    return time.perf_counter() - start, samples, engine.signals_detected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=300_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = make_inputs(args.quotes)
    n = len(rows)

    base = min(baseline(rows) for _ in range(3))
    print(f"engine_ingest: {n} quotes, 3 venues x {len(SYMBOLS)} symbols")
    print(f"  baseline (build quotes only): {n / base:12,.0f} quotes/s  "
          f"{base / n * 1e6:6.2f} µs/quote")
    for subscribers in (0, 1):
        runs = [through_engine(rows, subscribers) for _ in range(3)]
        elapsed, samples, signals = min(runs, key=lambda r: r[0])
        p50 = statistics.median(samples) / 1000
        p99 = statistics.quantiles(samples, n=100)[98] / 1000
        added = (elapsed - base) / n * 1e6
        print(
            f"  engine, {subscribers} bus subscriber(s): {n / elapsed:12,.0f} quotes/s  "
            f"{elapsed / n * 1e6:6.2f} µs/quote  (engine adds {added:5.2f} µs; "
            f"target <= 20)  decision p50 {p50:5.2f} µs  p99 {p99:6.2f} µs  "
            f"signals {signals}"
        )
        print(f"  ratio engine/baseline rate: {base / elapsed:.2f}")


if __name__ == "__main__":
    main()
