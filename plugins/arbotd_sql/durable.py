"""The thread that makes durable writes: a trade recorded before its orders leave, a
block of ids reserved, an emergency stop saved.

One thread with one connection of its own (kept open: opening a SQLite connection for
each write costs as much as the write), apart from the batched writer, so a trade never
waits behind a batch of price bars, and each write is its own transaction that is on
disk when the caller resumes: SQLite syncs its log on this connection's commits
(``synchronous=FULL``), PostgreSQL waits for its WAL flush (``synchronous_commit``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import peewee
import trio

from arbotd_sql.database import CONNECTION_ERRORS, discard_connection, write_transaction

__all__ = ["DurableWrites"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Any constant other than the schema migration's: serialises id reservations of several
# daemons sharing one PostgreSQL database.
_PG_LOCK = 0x4172_626F_7449

Job = tuple[Callable[..., Any], tuple[Any, ...], Callable[[outcome.Outcome], None]]


class DurableWrites:
    """Runs ``fn(*args)`` in a durable transaction on the thread, one job at a time."""

    def __init__(self, database: peewee.Database) -> None:
        self._database = database
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """The result of ``fn(*args)`` once its transaction is committed; raises what it
        (or the commit) raised. Waits for the job even when cancelled: a write that may
        have reached the disk must not be taken for one that did not."""
        self._ensure_thread()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        result: list[outcome.Outcome] = []

        def deliver(value: outcome.Outcome) -> None:
            result.append(value)
            token.run_sync_soon(done.set)

        self._jobs.put((fn, args, deliver))
        with trio.CancelScope(shield=True):
            await done.wait()
        return result[0].unwrap()

    def close(self) -> None:
        """End the thread once the jobs queued before are done (blocking)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="arbotd-sql-durable",
                                                daemon=True)
                self._thread.start()

    def _work(self) -> None:
        database = self._database
        try:
            while (job := self._jobs.get()) is not None:
                fn, args, deliver = job
                deliver(outcome.capture(self._transaction, fn, args))
        finally:
            discard_connection(database)

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        database = self._database
        # A connection cut while idle (a PostgreSQL restart) fails its first use: one
        # more try on a new one.
        for attempt in (1, 2):
            fresh = database.is_closed()
            try:
                if fresh:
                    database.connect()
                    if isinstance(database, peewee.SqliteDatabase):
                        database.execute_sql("PRAGMA synchronous=FULL")
                return self._once(fn, args)
            except CONNECTION_ERRORS:
                discard_connection(database)
                if fresh or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _once(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        database = self._database
        with write_transaction(database, immediate=True):
            if not isinstance(database, peewee.SqliteDatabase):  # PostgreSQL
                database.execute_sql("SET LOCAL synchronous_commit TO on")
                database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
            return fn(*args)
