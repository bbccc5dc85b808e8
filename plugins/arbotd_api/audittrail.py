"""Where the API's audit entries go: the storage's :class:`arbotd.AuditStore` (when it
has one) and the log, with refusals bounded.

Refusals (``UNAUTHORIZED``, ``FORBIDDEN``, ``RATE_LIMIT_EXCEEDED``, and failed logins)
must not fill the disk when someone floods the API: in each minute (windows aligned on the
clock), at most :data:`REFUSALS_PER_SOURCE` per source and :data:`REFUSALS_PER_MINUTE` in
all are recorded one by one. The others are counted and summed up in one entry once
their minute is over: action :data:`SUMMARY_ACTION`, outcome ``suppressed``, the actor,
method and source when all were the same (else ``various``), and in ``details`` the
``count``, the ``first`` and ``last`` times, and the counts ``by_source``, ``by_actor``,
``by_action`` and ``by_outcome`` (50 keys each at most, the rest as ``(other)``). The
summary is written by a task every :data:`FLUSH_INTERVAL` seconds, or at the next entry,
and at the latest when the server stops.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from arbotd import AuditStore

__all__ = [
    "FLUSH_INTERVAL",
    "REFUSALS_PER_MINUTE",
    "REFUSALS_PER_SOURCE",
    "REFUSAL_CODES",
    "SUMMARY_ACTION",
    "AuditTrail",
    "RefusalThrottle",
]

log = logging.getLogger("arbotd_api.audit")

REFUSAL_CODES = frozenset({"UNAUTHORIZED", "FORBIDDEN", "RATE_LIMIT_EXCEEDED"})
"""The outcomes that count as refusals."""
SUMMARY_ACTION = "refused requests (summary)"
SUPPRESSED = "suppressed"
REFUSALS_PER_SOURCE = 10
"""Refusals recorded one by one per source and minute."""
REFUSALS_PER_MINUTE = 60
"""Refusals recorded one by one per minute, all sources together."""
WINDOW_SECONDS = 60.0
FLUSH_INTERVAL = 5.0
"""How often the summary of a minute that is over is looked for."""
_SUMMARY_KEYS = 50


def _count(counter: Counter[str], key: str) -> None:
    """Count ``key``, or ``(other)`` once the counter holds enough distinct keys (a flood
    from many sources must not grow it without end)."""
    if key in counter or len(counter) < _SUMMARY_KEYS:
        counter[key] += 1
    else:
        counter["(other)"] += 1


@attrs.define
class _Suppressed:
    window_start: float
    window: float
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    sources: Counter[str] = attrs.field(factory=Counter)
    actors: Counter[str] = attrs.field(factory=Counter)
    methods: Counter[str] = attrs.field(factory=Counter)
    actions: Counter[str] = attrs.field(factory=Counter)
    outcomes: Counter[str] = attrs.field(factory=Counter)

    def add(self, now: float, fields: Mapping[str, Any]) -> None:
        if not self.count:
            self.first = now
        self.count += 1
        self.last = now
        _count(self.sources, str(fields.get("source") or "unknown"))
        _count(self.actors, str(fields.get("actor")))
        _count(self.methods, str(fields.get("method")))
        _count(self.actions, str(fields.get("action")))
        _count(self.outcomes, str(fields.get("outcome")))

    def entry(self) -> dict[str, Any]:
        def only(counter: Counter[str]) -> str:
            keys = list(counter)
            return keys[0] if len(keys) == 1 and keys[0] != "(other)" else "various"

        return {
            "timestamp": self.last,
            "actor": only(self.actors),
            "method": only(self.methods),
            "source": only(self.sources),
            "action": SUMMARY_ACTION,
            "outcome": SUPPRESSED,
            "status": None,
            "details": {
                "count": self.count,
                "first": self.first,
                "last": self.last,
                "window_start": self.window_start,
                "window_seconds": self.window,
                "by_source": dict(self.sources.most_common()),
                "by_actor": dict(self.actors.most_common()),
                "by_action": dict(self.actions.most_common()),
                "by_outcome": dict(self.outcomes.most_common()),
            },
        }


class RefusalThrottle:
    """Which refusals are recorded one by one: in each minute (windows aligned on the
    clock), at most ``per_source`` of each source and ``overall`` in all; the rest are
    counted, and summed up in one entry once their minute is over."""

    def __init__(self, per_source: int = REFUSALS_PER_SOURCE,
                 overall: int = REFUSALS_PER_MINUTE, window: float = WINDOW_SECONDS) -> None:
        self.per_source = per_source
        self.overall = overall
        self.window = window
        self._window_start = -math.inf
        self._recorded: Counter[str] = Counter()  # by source, this window
        self._suppressed: _Suppressed | None = None

    def entries_for(self, now: float, fields: dict[str, Any]) -> list[dict[str, Any]]:
        """What to store for a refusal at ``now``: the summary of a minute that is over
        (if one is due), then ``fields`` unless it is over the limits (then counted)."""
        entries = self.due(now)
        start = math.floor(now / self.window) * self.window
        if start != self._window_start:
            self._window_start = start
            self._recorded.clear()
        source = str(fields.get("source") or "unknown")
        if self._recorded.total() < self.overall and self._recorded[source] < self.per_source:
            self._recorded[source] += 1
            entries.append(fields)
        else:
            if self._suppressed is None:
                self._suppressed = _Suppressed(start, self.window)
            self._suppressed.add(now, fields)
        return entries

    def due(self, now: float, *, final: bool = False) -> list[dict[str, Any]]:
        """The summary to store now, if any: of a minute that is over (``final``: the
        current one too, when the server stops). Given once."""
        suppressed = self._suppressed
        if suppressed is None:
            return []
        if not final and now < suppressed.window_start + suppressed.window:
            return []
        self._suppressed = None
        return [suppressed.entry()]


class AuditTrail:
    """Hands entries to the storage's :class:`arbotd.AuditStore` (when it has one) and
    logs each, with refusals bounded by a :class:`RefusalThrottle`. ``clock``: wall time
    (the entries' timestamps)."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 throttle: RefusalThrottle | None = None) -> None:
        self.clock = clock
        self.throttle = throttle or RefusalThrottle()
        self.closed = trio.Event()

    def record(self, storage: object, fields: dict[str, Any], *,
               refusal: bool | None = None) -> None:
        """Store ``fields`` (the keyword arguments of ``record_audit``; ``timestamp``
        defaults to now), or count it when it is a refusal over the limits. ``refusal``
        defaults to whether the outcome is one of :data:`REFUSAL_CODES`."""
        now = self.clock()
        fields.setdefault("timestamp", now)
        if refusal is None:
            refusal = fields.get("outcome") in REFUSAL_CODES
        if refusal:
            entries = self.throttle.entries_for(now, fields)
        else:
            entries = [*self.throttle.due(now), fields]
        for entry in entries:
            self._store(storage, entry)

    def flush(self, storage: object, *, final: bool = False) -> None:
        """Store the summary of refusals whose minute is over (``final``: all of them)."""
        for entry in self.throttle.due(self.clock(), final=final):
            self._store(storage, entry)

    async def flush_periodically(self, storage_of: Callable[[], object]) -> None:
        """Every :data:`FLUSH_INTERVAL` seconds until :attr:`closed` is set: a flood's
        summary is written soon after its minute, even if nothing else comes."""
        while not self.closed.is_set():
            with trio.move_on_after(FLUSH_INTERVAL):
                await self.closed.wait()
            self.flush(storage_of())

    @staticmethod
    def _store(storage: object, entry: dict[str, Any]) -> None:
        log.info("audit: %s (%s) from %s: %s -> %s", entry.get("actor"), entry.get("method"),
                 entry.get("source"), entry.get("action"), entry.get("outcome"))
        if not isinstance(storage, AuditStore):
            return
        try:
            storage.record_audit(**entry)
        except Exception:
            log.exception("could not record the audit entry %s -> %s", entry.get("action"),
                          entry.get("outcome"))
