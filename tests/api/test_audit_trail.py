"""The bound on audited refusals, on its own: per source and overall limits per minute,
one summary with the count once the minute is over, and the task that writes it."""

from __future__ import annotations

from typing import Any

import trio

from arbotd import AuditStore
from arbotd_api.audittrail import (
    FLUSH_INTERVAL,
    REFUSALS_PER_MINUTE,
    REFUSALS_PER_SOURCE,
    SUMMARY_ACTION,
    AuditTrail,
    RefusalThrottle,
)

T0 = 1_800_000_000.0  # the start of a minute


class Store:
    """An :class:`arbotd.AuditStore` that keeps the entries in a list."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record_audit(self, **entry: Any) -> None:
        self.entries.append(entry)

    async def audit_entries(self, **query: Any) -> dict[str, Any]:
        raise NotImplementedError


def refusal(source: str, outcome: str = "UNAUTHORIZED", actor: str = "unauthenticated"
            ) -> dict[str, Any]:
    return {"actor": actor, "method": "api_key", "source": source,
            "action": "POST /api/v1/trading/start", "outcome": outcome, "status": 401,
            "details": {}}


def test_the_store_is_an_audit_store() -> None:
    assert isinstance(Store(), AuditStore)


def test_per_source_limit_then_one_summary_with_the_count() -> None:
    store, now = Store(), [T0]
    trail = AuditTrail(clock=lambda: now[0])
    for number in range(25):
        now[0] = T0 + number
        trail.record(store, refusal("198.51.100.1", "UNAUTHORIZED" if number % 5 else
                                    "RATE_LIMIT_EXCEEDED"))
    assert len(store.entries) == REFUSALS_PER_SOURCE
    trail.flush(store)  # the minute is not over
    assert len(store.entries) == REFUSALS_PER_SOURCE

    now[0] = T0 + 60
    trail.flush(store)
    summary = store.entries[-1]
    assert summary["action"] == SUMMARY_ACTION and summary["outcome"] == "suppressed"
    assert (summary["actor"], summary["method"], summary["source"], summary["status"]) == \
        ("unauthenticated", "api_key", "198.51.100.1", None)
    details = summary["details"]
    assert details["count"] == 15
    assert (details["first"], details["last"]) == (T0 + 10, T0 + 24)
    assert summary["timestamp"] == T0 + 24
    assert details["by_outcome"] == {"UNAUTHORIZED": 12, "RATE_LIMIT_EXCEEDED": 3}
    assert details["by_source"] == {"198.51.100.1": 15}
    trail.flush(store)
    assert len(store.entries) == REFUSALS_PER_SOURCE + 1  # given once

    # A new minute: recorded one by one again.
    trail.record(store, refusal("198.51.100.1"))
    assert store.entries[-1]["action"] != SUMMARY_ACTION
    assert len(store.entries) == REFUSALS_PER_SOURCE + 2


def test_overall_limit_across_sources() -> None:
    store = Store()
    trail = AuditTrail(clock=lambda: T0)
    sources = [f"198.51.100.{n}" for n in range(100)]
    for source in sources:
        for _ in range(2):
            trail.record(store, refusal(source))
    assert len(store.entries) == REFUSALS_PER_MINUTE
    trail.flush(store, final=True)
    summary = store.entries[-1]
    assert summary["source"] == "various"
    assert summary["details"]["count"] == 200 - REFUSALS_PER_MINUTE
    # The counts by source stay small, however many sources there are.
    by_source = summary["details"]["by_source"]
    assert len(by_source) <= 51 and sum(by_source.values()) == 200 - REFUSALS_PER_MINUTE


def test_the_summary_comes_before_the_next_entry() -> None:
    store, now = Store(), [T0]
    trail = AuditTrail(clock=lambda: now[0], throttle=RefusalThrottle(per_source=1))
    trail.record(store, refusal("198.51.100.1"))
    trail.record(store, refusal("198.51.100.1"))
    now[0] = T0 + 61
    trail.record(store, {**refusal("198.51.100.1"), "outcome": "success", "status": 200})
    assert [e["action"] == SUMMARY_ACTION for e in store.entries] == [False, True, False]
    assert [e["timestamp"] for e in store.entries] == [T0, T0, T0 + 61]


def test_other_outcomes_are_never_held_back() -> None:
    store = Store()
    trail = AuditTrail(clock=lambda: T0, throttle=RefusalThrottle(per_source=1, overall=1))
    for _ in range(5):
        trail.record(store, {**refusal("198.51.100.1"), "outcome": "success"})
    for _ in range(5):
        trail.record(store, {**refusal("198.51.100.1"), "outcome": "VALIDATION_ERROR"})
    assert len(store.entries) == 10
    trail.record(store, {**refusal("198.51.100.1"), "outcome": "VALIDATION_ERROR"},
                 refusal=True)
    trail.record(store, {**refusal("198.51.100.1"), "outcome": "VALIDATION_ERROR"},
                 refusal=True)
    assert len(store.entries) == 11


def test_without_an_audit_store_entries_are_only_logged(caplog) -> None:
    trail = AuditTrail(clock=lambda: T0)
    with caplog.at_level("INFO", logger="arbotd_api.audit"):
        trail.record(None, refusal("198.51.100.1"))
    assert "unauthenticated (api_key) from 198.51.100.1: POST /api/v1/trading/start -> " \
        "UNAUTHORIZED" in caplog.text


async def test_the_flusher_writes_the_summary_after_its_minute(autojump_clock) -> None:
    store = Store()
    trail = AuditTrail(clock=lambda: T0 + trio.current_time())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trail.flush_periodically, lambda: store)
        for _ in range(REFUSALS_PER_SOURCE + 3):
            trail.record(store, refusal("198.51.100.1"))
        await trio.sleep(59)
        assert len(store.entries) == REFUSALS_PER_SOURCE
        await trio.sleep(1 + FLUSH_INTERVAL)
        assert store.entries[-1]["details"]["count"] == 3
        trail.closed.set()
    # Closing ends the task at once (a server's stop does not wait for it).
    assert trio.current_time() < 60 + 2 * FLUSH_INTERVAL
