"""Per-account back-off of failed logins, whatever address they come from.

The per-IP rate limit bounds what one address may try; from many addresses (a botnet, or
loopback aliases) one account's password could still be guessed as fast as scrypt
answers. So ``POST /auth/login`` also counts failures per user name:

- the first ``[api] login_failures_allowed`` failures in a row cost nothing;
- each failure after them locks the name for ``login_backoff_seconds``, doubling with each
  further failure up to ``login_backoff_max_seconds``;
- while a name is locked, an attempt for it is refused (429 ``RATE_LIMIT_EXCEEDED`` with
  ``Retry-After``) before any password is checked, and does not count as a failure;
- a success forgets the failures.

Password checks in flight count as well: a name may have as many running as it has
failures left before the lock (at least one), so a burst of simultaneous guesses cannot
slip past the count.

Names that belong to no user are treated exactly alike, so neither the answers nor their
timing tell which names exist. Memory is bounded: at most :data:`MAX_NAMES` names are
tracked, a name without a failure for :data:`FORGET_AFTER_SECONDS` is forgotten, and when
the table is full the half with the fewest failures goes, so that a spray of made-up names
does not wipe the count of the account under attack.

Every failure is logged at WARNING and every success at INFO, with the name and the
source address, never the password; a lock is said once, when it starts, and the
attempts refused during it are counted into the next line about that name.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from types import TracebackType

import attrs

__all__ = ["FORGET_AFTER_SECONDS", "MAX_NAMES", "LoginAttempt", "LoginGuard",
           "LoginLocked", "LoginPolicy"]

log = logging.getLogger(__name__)

MAX_NAMES = 10_000
"""User names tracked at most (a few hundred bytes each)."""
FORGET_AFTER_SECONDS = 86_400.0
"""A name without a failed login for this long starts again from no failures."""
_LONGEST_KEY = 64  # longer names (no user has one) are tracked by their hash
_SHOWN = 64


@attrs.frozen
class LoginPolicy:
    failures_allowed: int = 5
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 900.0

    def lock_for(self, failures: int) -> float:
        """Seconds a name is locked after its ``failures``-th failure in a row (0: not)."""
        over = failures - self.failures_allowed
        if over < 0:
            return 0.0
        # min(): 2.0 ** 1100 would overflow long after the cap is reached.
        return min(self.backoff_max_seconds, self.backoff_seconds * 2.0 ** min(over, 64))


class LoginLocked(Exception):
    """The name may not try now; ``retry_after`` whole seconds until it may."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"locked for {retry_after} s")
        self.retry_after = retry_after

    def headers(self, now: float | None = None) -> dict[str, str]:
        """``Retry-After`` and the rate-limit headers of a refusal: nothing remains until
        the unix time the name may try again."""
        reset = math.ceil((now if now is not None else time.time()) + self.retry_after)
        return {"Retry-After": str(self.retry_after), "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset)}


class _Name:
    __slots__ = ("failures", "in_flight", "last_failure", "locked_until", "refused")

    def __init__(self, now: float) -> None:
        self.failures = 0
        self.in_flight = 0
        self.last_failure = now
        self.locked_until = 0.0
        self.refused = 0  # attempts refused since the last line logged about this name


def _key(name: str) -> str:
    if len(name) <= _LONGEST_KEY:
        return name
    return "sha256:" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'s' * (number != 1)}"


def _shown(name: str) -> str:
    """The name as logged: quoted and escaped (no forged log lines), cut when long."""
    return repr(name if len(name) <= _SHOWN else name[:_SHOWN] + "...")


class LoginGuard:
    """The failures of every user name tried lately. :meth:`attempt` before checking a
    password; the attempt says how it ended."""

    def __init__(self, policy: LoginPolicy, *, capacity: int = MAX_NAMES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.capacity = capacity
        self.clock = clock
        self._names: dict[str, _Name] = {}

    def configure(self, policy: LoginPolicy) -> None:
        """New thresholds (a reload); the counts and locks so far stay."""
        self.policy = policy

    def attempt(self, name: str, address: str | None) -> LoginAttempt:
        """Start checking a password for ``name``; raises :class:`LoginLocked` when the
        name is locked, or already has as many checks running as it has failures left."""
        now = self.clock()
        key = _key(name)
        entry = self._names.get(key)
        if (entry is not None and entry.in_flight == 0
                and now - entry.last_failure >= FORGET_AFTER_SECONDS):
            del self._names[key]
            entry = None
        if entry is None:
            if len(self._names) >= self.capacity:
                self._make_room(now)
            entry = self._names[key] = _Name(now)
        wait = entry.locked_until - now
        if wait <= 0 and entry.in_flight >= max(1, self.policy.failures_allowed
                                                - entry.failures):
            wait = 1.0  # another check of this name is running: it may be the last free one
        if wait > 0:
            entry.refused += 1
            raise LoginLocked(max(1, math.ceil(wait)))
        entry.in_flight += 1
        return LoginAttempt(self, key, name, address)

    def _failed(self, key: str, name: str, address: str | None, reason: str) -> None:
        entry = self._names.get(key)
        if entry is None:
            return
        now = self.clock()
        entry.failures += 1
        entry.last_failure = now
        lock = self.policy.lock_for(entry.failures)
        refused = self._refused_note(entry)
        in_a_row = _count(entry.failures, "failure")
        if lock:
            entry.locked_until = now + lock
            log.warning("login failed for %s from %s: %s; %s in a row: the name is locked, "
                        "attempts for it are refused for %g s%s", _shown(name), address,
                        reason, in_a_row, lock, refused)
        else:
            log.warning("login failed for %s from %s: %s (%s in a row)%s", _shown(name),
                        address, reason, in_a_row, refused)

    def _succeeded(self, key: str, name: str, address: str | None, scope: str) -> None:
        entry = self._names.get(key)
        refused = self._refused_note(entry) if entry is not None else ""
        failures = entry.failures if entry is not None else 0
        after = f" after {_count(failures, 'failure')}" if failures else ""
        log.info("login of %s from %s (%s scope)%s%s", _shown(name), address, scope, after,
                 refused)
        if entry is not None:
            entry.failures = 0
            entry.locked_until = 0.0

    def _release(self, key: str) -> None:
        entry = self._names.get(key)
        if entry is None:
            return
        entry.in_flight -= 1
        if entry.in_flight <= 0 and entry.failures == 0 and entry.refused == 0:
            del self._names[key]

    @staticmethod
    def _refused_note(entry: _Name) -> str:
        refused, entry.refused = entry.refused, 0
        if not refused:
            return ""
        return f"; {_count(refused, 'attempt')} refused before this (locked, or too many at once)"

    def _make_room(self, now: float) -> None:
        """Forget names quiet for long; if the table is still full, the half with the
        fewest failures (oldest first). Names with a check running stay."""
        idle = [(entry.failures, entry.last_failure, key)
                for key, entry in self._names.items() if entry.in_flight == 0]
        for _, last, key in idle:
            if now - last >= FORGET_AFTER_SECONDS:
                del self._names[key]
        if len(self._names) < self.capacity:
            return
        idle = sorted(item for item in idle if item[2] in self._names)
        for _, _, key in idle[: max(1, len(self._names) // 2)]:
            del self._names[key]

    def failures(self, name: str) -> int:
        """Failures in a row counted for ``name`` now."""
        entry = self._names.get(_key(name))
        return entry.failures if entry is not None else 0

    def __len__(self) -> int:
        return len(self._names)


class LoginAttempt:
    """One password check under way: call :meth:`failed` or :meth:`succeeded`, and leave
    its ``with`` block in any case (a cancelled check counts neither way)."""

    def __init__(self, guard: LoginGuard, key: str, name: str, address: str | None) -> None:
        self._guard, self._key, self._name, self._address = guard, key, name, address

    def failed(self, reason: str) -> None:
        """The password did not match, or there is no such user (``reason``, for the
        log)."""
        self._guard._failed(self._key, self._name, self._address, reason)

    def succeeded(self, scope: str) -> None:
        self._guard._succeeded(self._key, self._name, self._address, scope)

    def __enter__(self) -> LoginAttempt:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._guard._release(self._key)
