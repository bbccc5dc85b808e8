"""Benchmark: quotes per second made by the simulated market, 3 venues x 50 symbols.

Beside it, in the same run, a baseline loop that only builds the same number of ``Quote``
objects: the difference is what the generator itself costs per quote. Then the same
market with books of 20 levels a side (``depth_levels = 20``), and how long a feed
restarted after a week of running takes to find its place (``seek``).

    .venv/bin/python tests/bench/sim_market.py [seconds-of-market]
"""

from __future__ import annotations

import sys
import time

import attrs

from arbotd import Quote
from arbotd_sim.config import SimulationConfig
from arbotd_sim.market import VenueSimulator

SYMBOLS = [f"SIM{i:02d}USDT" for i in range(50)]
# Prices across the magnitudes real symbols have, 0.05 to 50,000.
PRICES = {s: 0.05 * 10 ** (i % 7) * (1 + i / 50) for i, s in enumerate(SYMBOLS)}


def generator(config: SimulationConfig, ticks: int) -> tuple[int, float]:
    sims = [VenueSimulator(config, venue, SYMBOLS) for venue in config.venues]
    rate = config.updates_per_second
    count = 0
    started = time.perf_counter()
    for tick in range(ticks):
        stamp = 1_700_000_000.0 + tick / rate
        for sim in sims:
            count += len(sim.step(stamp))
    return count, time.perf_counter() - started


def baseline(config: SimulationConfig, ticks: int) -> tuple[int, float]:
    """Only the Quote objects, with the same fields, and the same list per venue tick."""
    rows = [
        [(venue, s, PRICES[s], PRICES[s] * 1.0002, 1.5, 2.5) for s in SYMBOLS]
        for venue in config.venues
    ]
    rate = config.updates_per_second
    count = 0
    started = time.perf_counter()
    for tick in range(ticks):
        stamp = 1_700_000_000.0 + tick / rate
        for row in rows:
            quotes = [Quote(v, s, b, a, bs, az, stamp, stamp) for v, s, b, a, bs, az in row]
            count += len(quotes)
    return count, time.perf_counter() - started


def seek_after(config: SimulationConfig, seconds: float) -> float:
    sim = VenueSimulator(config, config.venues[0], SYMBOLS[:5])
    started = time.perf_counter()
    sim.seek(int(seconds * config.updates_per_second))
    return (time.perf_counter() - started) / 5


def main() -> None:
    market_seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    config = attrs.evolve(SimulationConfig(), start_prices=PRICES)
    ticks = int(market_seconds * config.updates_per_second)
    print(
        f"{len(config.venues)} venues x {len(SYMBOLS)} symbols x "
        f"{config.updates_per_second:g} updates/s, {market_seconds:g} s of market"
    )
    generated, gen_time = generator(config, ticks)
    built, base_time = baseline(config, ticks)
    gen_us = gen_time / generated * 1e6
    base_us = base_time / built * 1e6
    print(f"  generator : {generated / gen_time:>10,.0f} quotes/s  {gen_us:5.2f} us/quote")
    print(f"  baseline  : {built / base_time:>10,.0f} quotes/s  {base_us:5.2f} us/quote")
    print(f"  generator cost beyond building the Quote: {gen_us - base_us:.2f} us/quote")
    wanted = len(config.venues) * len(SYMBOLS) * config.updates_per_second
    print(f"  real time needs {wanted:,.0f} quotes/s: {wanted * gen_us / 1e4:.1f} % of one core")
    deep = attrs.evolve(config, depth_levels=20)
    deep_count, deep_time = generator(deep, ticks)
    deep_us = deep_time / deep_count * 1e6
    print(f"  20 levels : {deep_count / deep_time:>10,.0f} quotes/s  {deep_us:5.2f} us/quote"
          f" ({deep_us / gen_us:.1f} x level 1; real time {wanted * deep_us / 1e4:.1f} % "
          "of one core)")
    week = seek_after(config, 7 * 86_400)
    print(f"  seek to one week in: {week * 1e3:.1f} ms per venue and symbol")


if __name__ == "__main__":
    main()
