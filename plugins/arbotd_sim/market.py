"""The deterministic market generator behind the simulated venues.

Quotes are a pure function of the ``[simulation]`` table, the venue, the symbol and the
tick index: never of the wall clock, of other venues or of the order in which tasks run.
Tick ``k`` is ``k / updates_per_second`` seconds after the simulation started.

How that is kept cheap *and* seekable (a feed restarted after an hour must resume on the
same path as the venues that kept running, without replaying the hour):

* Time is cut into blocks of :data:`BLOCK_TICKS` ticks. Each random process is first drawn
  at block boundaries only, by a coarse chain with the exact transition over a whole block
  (one normal draw per block, so reaching block ``b`` costs ``b`` draws, not ``b * 1024``).
* Inside a block the path is filled in as a bridge between its two boundary values, one
  normal draw per tick from a generator seeded by the block's own key. The bridge
  coefficients depend only on the position in the block and are computed once.
* Every generator is a ``random.Random`` seeded by a stable hash of its key (never Python's
  salted ``hash()``): the true price of a symbol by ``(seed, symbol)``, so every venue
  reproduces the same path on its own, and a venue's basis, spread, sizes and dislocations
  by ``(seed, venue, symbol)``.

Processes, per tick of ``dt`` seconds:

* true price ``P = start_price * exp(x)``, ``x`` a Brownian motion with
  ``annual_volatility * sqrt(dt / year)`` per tick (no drift in ``x``);
* basis ``y``: Ornstein-Uhlenbeck with stationary standard deviation ``basis_bps_stddev``
  and half-life ``basis_half_life_seconds``, started from its stationary distribution;
* dislocation ``d``: Poisson starts at ``dislocation_per_hour``; each moves the venue by
  ``+/- dislocation_bps`` (x U(0.8, 1.2)) for ``dislocation_seconds``; overlapping ones add;
* the venue's mid is ``P * (1 + y + d)``; half-spread ``half_spread_bps`` x U(0.75, 1.25);
  bid rounded down and ask up to the symbol's price tick; displayed sizes U(size_min_usd,
  size_max_usd) of notional, in base units rounded to the symbol's lot;
* with ``depth_levels`` N > 1, behind the best level of each side N - 1 more, resting
  orders that follow the touch: level ``k`` is ``half_spread_bps`` x U(0.5, 1.5) of the
  price (at least one tick) beyond level ``k - 1`` and shows U(size_min_usd,
  size_max_usd) x (1 + k / 2) of notional in base units, so that the book thickens away
  from the touch. The whole tail is drawn at each block's start; then at every tick one
  level of each side, chosen at random, is drawn afresh (as a diff-depth stream changes
  a few levels per update), which keeps a deep book as cheap to quote as the best level.
  These draws come from a generator of their own (``(seed, "depth", venue, symbol,
  block)``): the best levels, the path and everything else are the same whatever N is.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence

from arbotd import Quote
from arbotd_sim.config import SimulationConfig

__all__ = [
    "BLOCK_TICKS",
    "DEPTH_GROWTH",
    "SECONDS_PER_YEAR",
    "VenueSimulator",
    "price_decimals",
    "stable_seed",
]

BLOCK_TICKS = 1024
DEPTH_GROWTH = 0.5
"""How much more notional each level further from the touch shows: level ``k`` shows
``1 + DEPTH_GROWTH * k`` times what the best level's draw would."""
SECONDS_PER_YEAR = 365 * 86_400.0  # crypto trades every day of the year
_BPS = 1e-4


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts``, the same in every process and on every machine."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def price_decimals(price: float) -> int:
    """Decimals of the price tick: at least 6 significant digits (a tick of at most 0.1 bp,
    well inside the spread), never coarser than 0.01."""
    return max(2, 5 - math.floor(math.log10(price)))


def size_decimals(notional: float, price: float) -> int:
    """Decimals of the size lot: the smallest displayed size has 3 significant digits."""
    return max(0, 2 - math.floor(math.log10(notional / price)))


# --- bridges ----------------------------------------------------------------------------

_Table = tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]


@functools.lru_cache(maxsize=16)
def _bridge_table(decay_per_tick: float, length: int) -> _Table:
    """Coefficients to step a Gaussian Markov process from position ``i`` to ``i + 1`` of a
    block of ``length`` ticks, given its value at the block's end:
    ``next = keep[i] * value + pull[i] * end + noise[i] * sigma * N(0, 1)``.

    ``decay_per_tick`` is ``ln 2 * dt / half_life`` for an Ornstein-Uhlenbeck process
    (``sigma`` its stationary standard deviation), 0 for a Brownian motion (``sigma`` its
    standard deviation per tick). The coefficients are the conditional mean and deviation
    of the next value given the current one and the block's end value.
    """
    keep, pull, noise = [], [], []
    for i in range(length - 1):
        m = length - i - 1  # ticks from i + 1 to the block's end
        if decay_per_tick == 0.0:
            keep.append(m / (m + 1))
            pull.append(1 / (m + 1))
            noise.append(math.sqrt(m / (m + 1)))
            continue
        a = math.exp(-decay_per_tick)
        one_step = -math.expm1(-2 * decay_per_tick)  # 1 - a^2
        rest = -math.expm1(-2 * m * decay_per_tick)  # 1 - a^(2m)
        a_m = math.exp(-m * decay_per_tick)
        g = 1 / (1 / one_step + a_m * a_m / rest)
        keep.append(g * a / one_step)
        pull.append(g * a_m / rest)
        noise.append(math.sqrt(g))
    return tuple(keep), tuple(pull), tuple(noise)


class _Chain:
    """A process sampled at block boundaries, drawn in order and remembered up to the
    furthest block asked for (asking for an earlier block starts again)."""

    __slots__ = ("_first_sd", "_index", "_keep", "_noise", "_rng", "_seed", "_value")

    def __init__(self, seed: int, *, first_sd: float, keep: float, noise: float) -> None:
        self._seed = seed
        self._first_sd = first_sd
        self._keep = keep
        self._noise = noise
        self._restart()

    def _restart(self) -> None:
        self._rng = random.Random(self._seed)
        self._index = 0
        self._value = self._first_sd * self._rng.gauss(0.0, 1.0)

    def at(self, block: int) -> float:
        if block < self._index:
            self._restart()
        gauss = self._rng.gauss
        while self._index < block:
            self._value = self._keep * self._value + self._noise * gauss(0.0, 1.0)
            self._index += 1
        return self._value


# --- one symbol on one venue --------------------------------------------------------------


class _SymbolSim:
    """The quotes of one symbol on one venue, one tick at a time."""

    _events: list[tuple[int, int, float]]  # dislocations: (first tick, end tick, offset)

    __slots__ = (
        "_basis",
        "_basis_chain",
        "_basis_end",
        "_basis_sd",
        "_block",
        "_depth",
        "_depth_gaps",
        "_depth_offsets",
        "_depth_rng",
        "_depth_sizes",
        "_depth_step",
        "_disl",
        "_disl_bps",
        "_disl_next",
        "_disl_rate",
        "_disl_ticks",
        "_events",
        "_half",
        "_half_f",
        "_i",
        "_log",
        "_log_end",
        "_ou",
        "_path_chain",
        "_path_rng",
        "_path_sd",
        "_price_scale",
        "_rng",
        "_seed",
        "_size_lo",
        "_size_scale",
        "_size_span",
        "_start",
        "_usd_ask",
        "_usd_bid",
        "_walk",
        "exchange",
        "symbol",
        "tick",
    )

    def __init__(self, config: SimulationConfig, venue: str, symbol: str, start: float) -> None:
        dt = 1.0 / config.updates_per_second
        decay = math.log(2) * dt / config.basis_half_life_seconds
        self.exchange = venue
        self.symbol = symbol
        self._seed = config.seed
        self._start = start
        self._price_scale = 10.0 ** price_decimals(start)
        self._size_scale = 10.0 ** size_decimals(config.size_min_usd, start)
        self._size_lo = config.size_min_usd
        self._size_span = config.size_max_usd - config.size_min_usd
        self._half = config.half_spread_bps * _BPS
        # Levels behind the best, per side (bids, asks): the gap to the level before in
        # price ticks, the distance from the best (the gaps added up) and the size.
        self._depth = config.depth_levels - 1
        self._depth_step = config.half_spread_bps * _BPS
        self._depth_gaps: tuple[list[int], list[int]] = ([], [])
        self._depth_offsets: tuple[list[int], list[int]] = ([], [])
        self._depth_sizes: tuple[list[float], list[float]] = ([], [])

        self._path_sd = config.annual_volatility * math.sqrt(dt / SECONDS_PER_YEAR)
        self._walk = _bridge_table(0.0, BLOCK_TICKS)
        self._path_chain = _Chain(
            stable_seed(config.seed, "path-anchors", symbol),
            first_sd=0.0,
            keep=1.0,
            noise=self._path_sd * math.sqrt(BLOCK_TICKS),
        )
        self._basis_sd = config.basis_bps_stddev * _BPS
        self._ou = _bridge_table(decay, BLOCK_TICKS)
        self._basis_chain = _Chain(
            stable_seed(config.seed, "basis-anchors", venue, symbol),
            first_sd=self._basis_sd,
            keep=math.exp(-decay * BLOCK_TICKS),
            noise=self._basis_sd * math.sqrt(-math.expm1(-2 * decay * BLOCK_TICKS)),
        )
        self._disl_rate = config.dislocation_per_hour / 3600.0 * dt  # starts per tick
        self._disl_bps = config.dislocation_bps
        self._disl_ticks = max(1, round(config.dislocation_seconds * config.updates_per_second))
        self._enter(0, fresh=True)

    # Tick positions: ``tick == _block * BLOCK_TICKS + _i``; the state holds tick's values.

    def _enter(self, block: int, *, fresh: bool) -> None:
        """Move to the first tick of ``block``. ``fresh``: the dislocations of earlier
        blocks that may still be running were not generated yet (after a seek)."""
        self._block = block
        self._i = 0
        self.tick = block * BLOCK_TICKS
        self._log = self._path_chain.at(block)
        self._log_end = self._path_chain.at(block + 1)
        self._basis = self._basis_chain.at(block)
        self._basis_end = self._basis_chain.at(block + 1)
        self._path_rng = random.Random(stable_seed(self._seed, "path", self.symbol, block))
        self._rng = random.Random(
            stable_seed(self._seed, "venue", self.exchange, self.symbol, block)
        )
        if self._depth:
            self._depth_rng = random.Random(
                stable_seed(self._seed, "depth", self.exchange, self.symbol, block)
            )
            price = self.true_price()
            for side in (0, 1):
                gaps, sizes = self._depth_gaps[side], self._depth_sizes[side]
                gaps.clear()
                sizes.clear()
                for k in range(1, self._depth + 1):
                    gap, size = self._draw_level(k, price)
                    gaps.append(gap)
                    sizes.append(size)
                self._depth_offsets[side][:] = itertools.accumulate(gaps)
        if fresh:
            self._events = []
            lookback = -(-self._disl_ticks // BLOCK_TICKS)
            for earlier in range(max(0, block - lookback), block):
                self._events.extend(self._dislocations(earlier))
        self._events.extend(self._dislocations(block))
        self._refresh_dislocation()
        self._draw_cosmetics()

    def _dislocations(self, block: int) -> list[tuple[int, int, float]]:
        """The dislocations starting in ``block``: ``(first tick, end tick, offset)``."""
        if self._disl_rate <= 0.0 or self._disl_bps <= 0.0:
            return []
        rng = random.Random(
            stable_seed(self._seed, "dislocations", self.exchange, self.symbol, block)
        )
        first = block * BLOCK_TICKS
        t = first + rng.expovariate(self._disl_rate)
        events = []
        while t < first + BLOCK_TICKS:
            start = int(t)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            offset = sign * self._disl_bps * _BPS * rng.uniform(0.8, 1.2)
            events.append((start, start + self._disl_ticks, offset))
            t += rng.expovariate(self._disl_rate)
        return events

    def _refresh_dislocation(self) -> None:
        """Sum the dislocations running at this tick and note when that sum next changes;
        between changes the hot path only compares two integers."""
        k = self.tick
        self._events = [e for e in self._events if e[1] > k]
        offset = 0.0
        change = math.inf
        for start, end, off in self._events:
            if start <= k:
                offset += off
                change = min(change, end)
            else:
                change = min(change, start)
        self._disl = offset
        self._disl_next = change

    def _draw_cosmetics(self) -> None:
        rand = self._rng.random
        self._half_f = self._half * (0.75 + 0.5 * rand())
        self._usd_bid = self._size_lo + self._size_span * rand()
        self._usd_ask = self._size_lo + self._size_span * rand()

    def _draw_level(self, k: int, price: float) -> tuple[int, float]:
        """Level ``k`` behind the best: its gap to level ``k - 1`` in price ticks and its
        size in base units, at ``price``."""
        rand = self._depth_rng.random
        gap = max(1, int(price * self._depth_step * self._price_scale * (0.5 + rand())))
        usd = (self._size_lo + self._size_span * rand()) * (1.0 + DEPTH_GROWTH * k)
        lots = self._size_scale
        return gap, (int(usd / price * lots) or 1) / lots

    def _change_depth(self) -> None:
        """Draw one level of each side afresh: every tick, quoted or not, so that a seek
        lands on the same book as stepping."""
        price = self.true_price()
        depth = self._depth
        rand = self._depth_rng.random
        draw = self._draw_level
        accumulate = itertools.accumulate
        for gaps, sizes, offsets in zip(self._depth_gaps, self._depth_sizes,
                                        self._depth_offsets, strict=True):
            k = int(rand() * depth)
            gaps[k], sizes[k] = draw(k + 1, price)
            offsets[:] = accumulate(gaps)

    def advance(self) -> None:
        """Move to the next tick."""
        i = self._i + 1
        if i == BLOCK_TICKS:
            self._enter(self._block + 1, fresh=False)
            return
        j = i - 1
        keep, pull, noise = self._walk
        self._log = (
            keep[j] * self._log
            + pull[j] * self._log_end
            + noise[j] * self._path_sd * self._path_rng.gauss(0.0, 1.0)
        )
        keep, pull, noise = self._ou
        self._basis = (
            keep[j] * self._basis
            + pull[j] * self._basis_end
            + noise[j] * (self._basis_sd * self._rng.gauss(0.0, 1.0))
        )
        self._i = i
        self.tick += 1
        if self.tick >= self._disl_next:
            self._refresh_dislocation()
        self._draw_cosmetics()
        if self._depth:
            self._change_depth()

    def seek(self, tick: int) -> None:
        """Jump to ``tick``: the same state as reaching it one tick at a time."""
        if tick < 0:
            raise ValueError(f"tick must be >= 0, got {tick}")
        block, position = divmod(tick, BLOCK_TICKS)
        if block != self._block or position < self._i:
            self._enter(block, fresh=True)
        while self._i < position:
            self.advance()

    def true_price(self) -> float:
        """The common price every venue quotes around, at this tick."""
        return self._start * math.exp(self._log)

    def quote(self, timestamp: float) -> Quote:
        """This tick's quote, stamped ``timestamp`` (exchange and receive time alike)."""
        mid = self._start * math.exp(self._log) * (1.0 + self._basis + self._disl)
        half = mid * self._half_f
        scale = self._price_scale
        bid_ticks = math.floor((mid - half) * scale)
        ask_ticks = math.ceil((mid + half) * scale)
        if ask_ticks <= bid_ticks:
            ask_ticks = bid_ticks + 1
        lots = self._size_scale
        bid = bid_ticks / scale
        ask = ask_ticks / scale
        bid_size = (int(self._usd_bid / mid * lots) or 1) / lots
        ask_size = (int(self._usd_ask / mid * lots) or 1) / lots
        if not self._depth:
            return Quote(self.exchange, self.symbol, bid, ask, bid_size, ask_size,
                         timestamp, timestamp)
        bid_offsets, ask_offsets = self._depth_offsets
        bid_sizes, ask_sizes = self._depth_sizes
        if bid_offsets[-1] >= bid_ticks:  # a bid would be at zero or below: fewer bids
            count = bisect.bisect_left(bid_offsets, bid_ticks)
            bid_offsets, bid_sizes = bid_offsets[:count], bid_sizes[:count]
        return Quote(
            self.exchange, self.symbol, bid, ask, bid_size, ask_size, timestamp, timestamp,
            ((bid, bid_size),
             *zip([(bid_ticks - o) / scale for o in bid_offsets], bid_sizes, strict=True)),
            ((ask, ask_size),
             *zip([(ask_ticks + o) / scale for o in ask_offsets], ask_sizes, strict=True)),
        )


# --- one venue ----------------------------------------------------------------------------


class VenueSimulator:
    """The quotes of one simulated venue for ``symbols`` (default: all it has prices for).

    ``step(timestamp)`` returns the current tick's quotes, one per symbol in order, and
    moves to the next tick; ``seek(tick)`` jumps anywhere. Each symbol's quotes do not
    depend on which other symbols are simulated with it.
    """

    def __init__(
        self, config: SimulationConfig, venue: str, symbols: Sequence[str] | None = None
    ) -> None:
        self.config = config
        self.venue = venue
        self.symbols = tuple(config.simulated_symbols() if symbols is None else symbols)
        self._sims: list[_SymbolSim] = []
        for symbol in self.symbols:
            start = config.start_price(symbol)
            if start is None:
                raise ValueError(f"simulation: no start price for {symbol!r}")
            self._sims.append(_SymbolSim(config, venue, symbol, start))
        self.tick = 0

    def seek(self, tick: int) -> None:
        for sim in self._sims:
            sim.seek(tick)
        self.tick = tick

    def step(self, timestamp: float) -> list[Quote]:
        quotes = []
        for sim in self._sims:
            quotes.append(sim.quote(timestamp))
            sim.advance()
        self.tick += 1
        return quotes

    def emit(self, timestamp: float, deliver: Callable[[Quote], object]) -> None:
        """Like :meth:`step`, handing each quote to ``deliver`` instead of returning a
        list (the feed's hot path)."""
        for sim in self._sims:
            deliver(sim.quote(timestamp))
            sim.advance()
        self.tick += 1

    def true_prices(self) -> dict[str, float]:
        """The common price of each symbol at the current tick (for tests and tools)."""
        return {sim.symbol: sim.true_price() for sim in self._sims}

    def ticks(
        self, start_time: float, count: int | None = None
    ) -> Iterator[tuple[int, list[Quote]]]:
        """``(tick, quotes)`` from the current tick on, tick ``k`` stamped
        ``start_time + k / updates_per_second``; ``count`` ticks, or without end."""
        rate = self.config.updates_per_second
        emitted = 0
        while count is None or emitted < count:
            tick = self.tick
            yield tick, self.step(start_time + tick / rate)
            emitted += 1
