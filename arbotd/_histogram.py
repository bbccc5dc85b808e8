"""A cumulative histogram of durations, cheap enough to feed from the hot path.

The engine samples the time from a quote's receipt to its decision into one (see
``Engine.decision_latency``); whoever reports it (``GET /metrics``) reads the counts when
asked. No lock: it is written and read in the trio thread only.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

__all__ = ["DECISION_LATENCY_BOUNDS", "Histogram"]

DECISION_LATENCY_BOUNDS = (
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5,
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)
"""Seconds from a quote's receipt to the engine's decision on it: a few microseconds when
the loop keeps up, milliseconds when quotes wait behind other work."""


class Histogram:
    """Counts of observations at or below each of ``bounds`` (seconds, ascending), plus
    those above the last (``counts[-1]``), their sum and their number."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"bounds must be ascending and distinct, got {list(bounds)}")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # A clock stepped back between receipt and decision would give a negative time.
        value = max(value, 0.0)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)`` for each bound, then
        ``(inf, count)``: the buckets as Prometheus writes them."""
        out: list[tuple[float, int]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append((bound, total))
        return out
