"""The trend of a symbol on an exchange, from mid prices sampled once a second.

The window holds the last ``periods`` samples. The trend compares the mean of the newer
half with the mean of the older half: a relative rise above ``threshold`` is ``up``, a
fall below ``-threshold`` is ``down``, anything else (or a window not yet full) is
``neutral``.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Sequence
from typing import Literal

__all__ = ["Trend", "TrendTracker"]

Trend = Literal["up", "down", "neutral"]

_SAMPLE_INTERVAL = 1.0


class _Window:
    __slots__ = ("next_sample", "samples")

    def __init__(self, periods: int) -> None:
        self.samples: collections.deque[float] = collections.deque(maxlen=periods)
        self.next_sample = 0.0


class TrendTracker:
    """Per (symbol, exchange) windows of mid prices. ``update`` is on the hot path and
    costs a comparison except once a second."""

    def __init__(self, periods: int, threshold: float) -> None:
        self.periods = periods
        self.threshold = threshold
        self._windows: dict[tuple[str, str], _Window] = {}

    def update(self, symbol: str, exchange: str, mid: float, now: float) -> None:
        key = (symbol, exchange)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(self.periods)
        if now >= window.next_sample:
            window.samples.append(mid)
            # Anchored to the previous sample so the cadence does not drift; after a gap
            # the next sample is a second from now.
            following = window.next_sample + _SAMPLE_INTERVAL
            window.next_sample = following if following > now else now + _SAMPLE_INTERVAL

    def update_many(self, symbol: str, exchange: str, mids: Sequence[float],
                    times: Sequence[float]) -> None:
        """:meth:`update` with each of ``mids`` at its time of ``times`` (in order, none
        earlier than the one before): the same samples, found a second at a time."""
        key = (symbol, exchange)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(self.periods)
        append = window.samples.append
        next_sample = window.next_sample
        index = bisect.bisect_left(times, next_sample)
        while index < len(times):
            now = times[index]
            append(mids[index])
            following = next_sample + _SAMPLE_INTERVAL
            next_sample = following if following > now else now + _SAMPLE_INTERVAL
            index = bisect.bisect_left(times, next_sample, index + 1)
        window.next_sample = next_sample

    def trend(self, symbol: str, exchange: str) -> Trend:
        window = self._windows.get((symbol, exchange))
        if window is None or len(window.samples) < self.periods:
            return "neutral"
        samples = list(window.samples)
        half = len(samples) // 2
        older = sum(samples[:half]) / half
        newer = sum(samples[-half:]) / half
        change = (newer - older) / older
        if change > self.threshold:
            return "up"
        if change < -self.threshold:
            return "down"
        return "neutral"

    def resize(self, periods: int, threshold: float) -> None:
        """Apply new settings, keeping the most recent samples."""
        self.threshold = threshold
        if periods != self.periods:
            self.periods = periods
            for window in self._windows.values():
                window.samples = collections.deque(window.samples, maxlen=periods)
