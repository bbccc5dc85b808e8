"""A request budget: the daemon slows itself down before an exchange bans it.

Exchanges limit requests per time window, by count (OKX, Bybit) or by weight (Binance),
and answer 429 (and Binance 418, an IP ban) with ``Retry-After`` when the limit is
passed. :class:`RequestBudget` keeps the use of the current window, counted locally and
corrected by what the exchange reports in its headers, and makes a caller wait when a
request would take the window past ``fraction`` of the limit, or while the exchange has
asked to be left alone.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import trio

__all__ = ["RequestBudget", "parse_retry_after"]

log = logging.getLogger(__name__)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds only), ``None`` when absent or
    unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class RequestBudget:
    """``limit`` units per ``window`` seconds, of which the daemon uses at most
    ``fraction``. Windows are fixed and aligned to ``clock`` (trio's clock by default),
    as Binance's and OKX's are.

    With ``sliding=True`` the use is counted over the last ``window`` seconds instead, so
    that no span of ``window`` seconds, wherever the exchange's own windows start, holds
    more than the allowance (a fixed window can take a burst at its end and another at
    the start of the next one). A request is counted from the moment it is allowed; when
    its caller passes what :meth:`acquire` returned to :meth:`finish` once the answer is
    in, it is counted from then on: the exchange received it at some point in between,
    so however the network delayed it, the exchange never counts more in a window than
    the budget does.
    """

    def __init__(
        self,
        name: str,
        limit: float,
        window: float,
        *,
        fraction: float = 0.8,
        clock: Callable[[], float] = trio.current_time,
        sliding: bool = False,
    ) -> None:
        if limit <= 0 or window <= 0 or not 0 < fraction <= 1:
            raise ValueError("limit and window must be positive, fraction in (0, 1]")
        self.name = name
        self.limit = limit
        self.window = window
        self.fraction = fraction
        self._clock = clock
        self._window_start = self._current_window()
        self.used = 0.0
        self.blocked_until = 0.0
        self.waits = 0
        self.sliding = sliding
        # [time, cost] of the requests of the last window, in the order they were
        # allowed (sliding only).
        self._recent: deque[list[float]] = deque()

    def _current_window(self) -> float:
        now = self._clock()
        return now - now % self.window

    def _roll(self) -> None:
        if self.sliding:
            horizon = self._clock() - self.window
            while self._recent and self._recent[0][0] <= horizon:
                self.used = max(self.used - self._recent.popleft()[1], 0.0)
            if not self._recent:
                self.used = 0.0
            return
        start = self._current_window()
        if start != self._window_start:
            self._window_start = start
            self.used = 0.0

    @property
    def allowance(self) -> float:
        return self.limit * self.fraction

    def available(self, cost: float = 1.0) -> bool:
        """Whether a request of ``cost`` may go now without waiting."""
        self._roll()
        return self._clock() >= self.blocked_until and self.used + cost <= self.allowance

    async def acquire(self, cost: float = 1.0) -> list[float] | None:
        """Wait until a request of ``cost`` fits, then count it. Returns what to pass to
        :meth:`finish` (sliding windows only; ``None`` otherwise)."""
        if cost > self.allowance:
            raise ValueError(f"{self.name}: a request of {cost} never fits {self.allowance}")
        waited = False
        while True:
            self._roll()
            now = self._clock()
            if now < self.blocked_until:
                wake = self.blocked_until
            elif self.used + cost > self.allowance:
                wake = (self._recent[0][0] + self.window if self.sliding and self._recent
                        else self._window_start + self.window)
            else:
                break
            if not waited:
                waited = True
                self.waits += 1
                log.info("%s: request budget spent, waiting %.2f s", self.name, wake - now)
            await trio.sleep(max(wake - now, 0.001))
        self.used += cost
        if not self.sliding:
            return None
        use = [self._clock(), cost]
        self._recent.append(use)
        return use

    def finish(self, use: list[float] | None) -> None:
        """The request ``use`` (from :meth:`acquire`) has its answer: count it for a
        window from now, the latest the exchange can have received it."""
        if use is not None:
            use[0] = max(use[0], self._clock())

    def blocked_for(self) -> float:
        """Seconds until the exchange allows requests again after a 429/418 (0 when it
        does now), so that a caller can give up at once rather than wait out a long ban."""
        return max(self.blocked_until - self._clock(), 0.0)

    def observe_used(self, used: float) -> None:
        """The exchange reported how much of the current window is used (Binance's
        ``X-MBX-USED-WEIGHT-1M``): trust it over the local count."""
        self._roll()
        self.used = float(used)

    def observe_remaining(self, remaining: float) -> None:
        """The exchange reported what is left of the window (Bybit's
        ``X-Bapi-Limit-Status``)."""
        self._roll()
        self.used = max(self.limit - float(remaining), 0.0)

    def block_for(self, seconds: float) -> None:
        """The exchange answered 429/418: send nothing for ``seconds``."""
        until = self._clock() + seconds
        if until > self.blocked_until:
            self.blocked_until = until
            log.warning("%s: exchange asked to pause requests for %.1f s", self.name, seconds)
