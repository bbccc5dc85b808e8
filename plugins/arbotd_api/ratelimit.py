"""Token buckets per client and endpoint type.

A bucket holds at most ``burst`` tokens and refills at ``per_minute / 60`` tokens a
second; a request takes one. The headers the API reference asks for:

- ``X-RateLimit-Limit``: the type's requests per minute;
- ``X-RateLimit-Remaining``: requests that may be made right now (whole tokens left,
  never more than the burst);
- ``X-RateLimit-Reset``: the unix time (whole seconds, rounded up) at which the bucket is
  full again;
- ``X-RateLimit-Type``: ``requests``.

A refused request gets ``Retry-After``: whole seconds until one token is back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

__all__ = ["Decision", "RateLimiter", "TokenBucket"]


@attrs.frozen
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            "X-RateLimit-Type": "requests",
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class TokenBucket:
    __slots__ = ("burst", "per_minute", "rate", "tokens", "updated")

    def __init__(self, per_minute: int, burst: int, now: float) -> None:
        self.per_minute = per_minute
        self.burst = burst
        self.rate = per_minute / 60.0
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> Decision:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        self.updated = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        full_at = now + (self.burst - self.tokens) / self.rate
        retry_after = 0 if allowed else max(1, math.ceil((1.0 - self.tokens) / self.rate))
        return Decision(
            allowed=allowed,
            limit=self.per_minute,
            remaining=int(self.tokens),
            reset=math.ceil(full_at),
            retry_after=retry_after,
        )

    def is_full(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.rate >= self.burst


class RateLimiter:
    """Buckets keyed by (client, endpoint type); ``limits`` maps each type to
    ``(per_minute, burst)``. Full buckets are forgotten now and then, so that clients that
    came once do not stay in memory."""

    _SWEEP_EVERY = 1000

    def __init__(
        self,
        limits: dict[str, tuple[int, int]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = dict(limits)
        self.clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._calls = 0

    def configure(self, limits: dict[str, tuple[int, int]]) -> None:
        """New limits (a reload): buckets start again from full."""
        if limits != self.limits:
            self.limits = dict(limits)
            self._buckets.clear()

    def take(self, client: str, kind: str) -> Decision:
        now = self.clock()
        key = (client, kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            per_minute, burst = self.limits[kind]
            bucket = self._buckets[key] = TokenBucket(per_minute, burst, now)
        self._calls += 1
        if self._calls % self._SWEEP_EVERY == 0:
            self._sweep(now)
        return bucket.take(now)

    def _sweep(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
