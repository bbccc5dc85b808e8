"""The per-account login back-off (``arbotd_api.logins``) on a clock of the test's: the
growing delays, attempts in flight, forgetting, and the bound on memory."""

from __future__ import annotations

import logging

import pytest

from arbotd_api.logins import FORGET_AFTER_SECONDS, LoginGuard, LoginLocked, LoginPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(guard: LoginGuard, name: str) -> None:
    with guard.attempt(name, "127.0.0.2") as attempt:
        attempt.failed("wrong password")


def locked_for(guard: LoginGuard, name: str) -> int:
    with pytest.raises(LoginLocked) as refused:
        guard.attempt(name, "127.0.0.2")
    return refused.value.retry_after


def test_the_delay_doubles_after_the_free_failures_up_to_the_cap():
    clock = Clock()
    guard = LoginGuard(LoginPolicy(failures_allowed=5, backoff_seconds=1.0,
                                   backoff_max_seconds=900.0), clock=clock)
    for _ in range(4):
        fail(guard, "alice")
    delays = []
    for _ in range(14):
        fail(guard, "alice")
        delays.append(locked_for(guard, "alice"))
        clock.now += delays[-1]  # wait the lock out, then guess again
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]


def test_a_refused_attempt_does_not_lengthen_the_lock():
    clock = Clock()
    guard = LoginGuard(LoginPolicy(failures_allowed=1, backoff_seconds=10.0), clock=clock)
    fail(guard, "alice")
    for _ in range(50):
        locked_for(guard, "alice")
    assert guard.failures("alice") == 1
    clock.now += 10
    with guard.attempt("alice", None) as attempt:
        attempt.succeeded("read")
    assert guard.failures("alice") == 0
    assert len(guard) == 0  # nothing kept for a name whose last login succeeded


def test_checks_in_flight_never_exceed_the_failures_left():
    guard = LoginGuard(LoginPolicy(failures_allowed=3, backoff_seconds=60.0), clock=Clock())
    running = [guard.attempt("alice", None) for _ in range(3)]
    assert locked_for(guard, "alice") == 1  # a fourth guess at once is refused
    for attempt in running:
        with attempt:
            attempt.failed("wrong password")
    assert locked_for(guard, "alice") == 60


def test_a_cancelled_check_counts_neither_way():
    guard = LoginGuard(LoginPolicy(failures_allowed=1), clock=Clock())
    with guard.attempt("alice", None):
        pass
    assert guard.failures("alice") == 0 and len(guard) == 0


def test_a_quiet_name_is_forgotten():
    clock = Clock()
    guard = LoginGuard(LoginPolicy(failures_allowed=2, backoff_seconds=5.0), clock=clock)
    fail(guard, "alice")
    clock.now += FORGET_AFTER_SECONDS
    fail(guard, "alice")  # the first failure of a new series: no lock
    assert guard.failures("alice") == 1
    with guard.attempt("alice", None) as attempt:
        attempt.succeeded("read")


def test_a_spray_of_names_neither_grows_memory_nor_frees_the_attacked_name():
    clock = Clock()
    guard = LoginGuard(LoginPolicy(failures_allowed=3, backoff_seconds=600.0),
                       capacity=100, clock=clock)
    for _ in range(3):
        fail(guard, "alice")
    for n in range(2000):
        clock.now += 0.01
        fail(guard, f"random-{n}")
        assert len(guard) <= 100
    assert guard.failures("alice") == 3
    assert locked_for(guard, "alice") >= 500


def test_long_names_are_kept_by_their_hash():
    guard = LoginGuard(LoginPolicy(failures_allowed=1, backoff_seconds=30.0), clock=Clock())
    name = "x" * 100_000
    fail(guard, name)
    assert locked_for(guard, name) == 30
    assert all(len(key) < 100 for key in guard._names)


def test_refused_attempts_are_counted_into_the_next_line(caplog):
    caplog.set_level(logging.INFO, logger="arbotd_api.logins")
    clock = Clock()
    guard = LoginGuard(LoginPolicy(failures_allowed=1, backoff_seconds=10.0), clock=clock)
    fail(guard, "alice")
    for _ in range(7):
        locked_for(guard, "alice")
    assert len(caplog.records) == 1 and "locked" in caplog.records[0].getMessage()
    clock.now += 10
    with guard.attempt("alice", "127.0.0.4") as attempt:
        attempt.succeeded("trading")
    message = caplog.records[-1].getMessage()
    assert message == ("login of 'alice' from 127.0.0.4 (trading scope) after 1 failure; "
                       "7 attempts refused before this (locked, or too many at once)")
