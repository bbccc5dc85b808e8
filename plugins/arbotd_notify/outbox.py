"""Getting notifications out without ever holding up the daemon.

Each destination has an :class:`Outbox`: a bounded queue that anything in the trio thread
fills with :meth:`Outbox.put` (synchronous, never waits) and the destination's own task
empties, one notification at a time, trying each again with exponential back-off while
the destination fails in a way that may pass (no answer, a timeout, 429, 5xx). A full
queue drops its oldest notification and counts it, so a destination that is down for
days costs at most ``max_queue`` notifications of memory.

:class:`KindLimit` is the rate limit per kind of notification, applied before anything is
queued: past it, notifications are counted, not sent, and the next one that goes out
says how many were kept back.
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Awaitable, Callable

import attrs
import trio

from arbotd.exchange import ProblemLog
from arbotd_notify.config import RetryPolicy
from arbotd_notify.messages import Notification

__all__ = ["DeliveryError", "KindLimit", "Outbox"]

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A destination did not take a notification. ``retry``: trying again may work
    (after ``retry_after`` seconds, when the destination said so)."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None
                 ) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after


class KindLimit:
    """At most ``count`` notifications of one kind per ``seconds`` (a sliding window)."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds
        self._sent: dict[str, collections.deque[float]] = {}
        self.suppressed: collections.Counter[str] = collections.Counter()

    def configure(self, count: int, seconds: float) -> None:
        self.count, self.seconds = count, seconds
        self._sent = {kind: collections.deque(times, maxlen=count)
                      for kind, times in self._sent.items()}

    def admit(self, note: Notification, now: float) -> Notification | None:
        """``note``, carrying the count of its kind kept back before it, when the limit
        lets it through; else ``None`` (and it is counted)."""
        sent = self._sent.get(note.kind)
        if sent is None:
            sent = self._sent[note.kind] = collections.deque(maxlen=self.count)
        if len(sent) >= self.count and now - sent[0] < self.seconds:
            self.suppressed[note.kind] += 1
            return None
        sent.append(now)
        held = self.suppressed.pop(note.kind, 0)
        return attrs.evolve(note, suppressed=note.suppressed + held) if held else note


Send = Callable[[Notification], Awaitable[None]]


@attrs.define(eq=False)
class _Counts:
    sent: int = 0
    failed: int = 0  # given up on (a refusal, or every attempt failed)
    dropped: int = 0  # pushed out of a full queue


class Outbox:
    """The queue of one destination and the task that delivers it (:meth:`run`)."""

    def __init__(self, name: str, send: Send, *, max_queue: int, retry: RetryPolicy
                 ) -> None:
        self.name = name
        self.send = send
        self.max_queue = max_queue
        self.retry = retry
        self.counts = _Counts()
        self._queue: collections.deque[Notification] = collections.deque()
        self._ready = trio.Event()
        self._busy = False
        self._problems = ProblemLog(f"notify: {name}", log)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being delivered."""
        return not self._queue and not self._busy

    def put(self, note: Notification) -> None:
        """Queue ``note``; a full queue drops its oldest first. Never waits."""
        while len(self._queue) >= self.max_queue:
            lost = self._queue.popleft()
            self.counts.dropped += 1
            self._problems.warning("full", "queue full (%d): dropped the oldest "
                                   "notification (%s)", self.max_queue, lost.kind)
        self._queue.append(note)
        self._ready.set()

    def configure(self, max_queue: int, retry: RetryPolicy) -> None:
        self.max_queue, self.retry = max_queue, retry
        while len(self._queue) > max_queue:
            self._queue.popleft()
            self.counts.dropped += 1

    async def run(self) -> None:
        """Deliver what is queued, oldest first, until cancelled."""
        while True:
            while not self._queue:
                self._ready = trio.Event()
                await self._ready.wait()
            note = self._queue.popleft()
            self._busy = True
            try:
                await self._deliver(note)
            finally:
                self._busy = False

    async def _deliver(self, note: Notification) -> None:
        failures = 0
        while True:
            try:
                await self.send(note)
            except DeliveryError as err:
                failures += 1
                if not err.retry or failures >= self.retry.attempts:
                    self.counts.failed += 1
                    log.error("notify: %s: gave up on the %s notification after %d "
                              "attempt%s: %s", self.name, note.kind, failures,
                              "s" * (failures != 1), err)
                    return
                delay = self.retry.delay(failures) * (0.75 + random.random() / 2)
                if err.retry_after is not None:
                    delay = max(delay, err.retry_after)
                self._problems.warning("retry", "%s; trying again in %.1f s", err, delay)
                await trio.sleep(delay)
            else:
                self.counts.sent += 1
                return
