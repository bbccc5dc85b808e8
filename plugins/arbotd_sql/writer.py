"""The writer thread and the bounded queue in front of it.

The event loop only appends to the queue (:meth:`Writer.put`, a lock and a deque
append). The writer thread wakes every ``flush_interval`` seconds, or as soon as
``flush_max_rows`` records wait, takes up to that many and writes them in one
transaction.

When the database is slow, away, out of disk space or failing its I/O
(:func:`~arbotd_sql.database.is_temporary`), the batch in hand is retried with backoff and
everything else waits in the queue: nothing is lost while the daemon runs. Only a batch
the database refuses (a statement error) is written again record by record, so that only
the record it refuses is lost. The queue is bounded by ``max_backlog``: beyond it, price
bars and raw quotes (which the next minute replaces) are dropped and counted; signals,
trades, funding, equity and audit entries are always kept, with an error in the log if they
pile up far beyond the bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

import attrs
import peewee
from playhouse.pool import PooledDatabase

from arbotd_sql.database import (
    describe_error,
    discard_connection,
    is_temporary,
    write_transaction,
)
from arbotd_sql.records import Record

__all__ = ["RetryPolicy", "Writer"]

log = logging.getLogger(__name__)

HARD_CAP_FACTOR = 10
"""Records that are never dropped raise an error in the log once they exceed this many
times ``max_backlog``: memory is growing and the database has been away for long."""


@attrs.frozen
class RetryPolicy:
    """How long the writer waits before trying a failed batch again."""

    initial: float = 0.25
    factor: float = 2.0
    maximum: float = 10.0

    def delay(self, failures: int) -> float:
        return min(self.maximum, self.initial * self.factor ** max(0, failures - 1))


class Writer:
    """Owns the queue and the one thread (and connection) that writes it.

    ``write`` writes a batch of records inside the transaction the writer opens;
    ``periodic`` is run by the writer thread every ``periodic_interval`` seconds (the
    retention job).
    """

    def __init__(
        self,
        *,
        display: str,
        write: Callable[[Sequence[Record]], None],
        flush_interval: float,
        flush_max_rows: int,
        max_backlog: int,
        retry: RetryPolicy | None = None,
        periodic: Callable[[], None] | None = None,
        periodic_interval: float = 3600.0,
    ) -> None:
        self.display = display
        self._write_records = write
        self.flush_interval = flush_interval
        self.flush_max_rows = flush_max_rows
        self.max_backlog = max_backlog
        self.retry = retry or RetryPolicy()
        self._periodic = periodic
        self._periodic_interval = periodic_interval

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits for work
        self._progress = threading.Condition(self._lock)  # flush() waits for the writer
        self._durable: deque[Record] = deque()
        self._sheddable: deque[Record] = deque()
        self._in_flight = 0
        self._queued_total = 0  # records ever accepted
        self._done_total = 0  # records written, refused or shed
        self._stop_at: float | None = None  # monotonic time to give up by, once stopping
        self._thread: threading.Thread | None = None
        self._idle = False  # the writer waits for records
        self._database: peewee.Database | None = None

        self.dropped: Counter[str] = Counter()
        self._shedding = 0  # dropped in the current shedding episode
        self._overfull = False
        self.batches_written = 0
        self.records_written = 0
        self.records_refused = 0
        self.failed_writes = 0  # attempts to write a batch that failed (retried)
        self.last_error: str | None = None
        self._failing_since: float | None = None

    # --- the event loop's side -------------------------------------------------------------

    def put(self, record: Record) -> None:
        """Queue a record that must never be dropped (signal, trade, funding, equity,
        audit entry)."""
        with self._lock:
            self._durable.append(record)
            self._queued_total += 1
            if self._backlog() > self.max_backlog and self._sheddable:
                kind, _ = self._sheddable.popleft()
                self._count_shed(kind)
                self._done_total += 1
            if len(self._durable) > HARD_CAP_FACTOR * self.max_backlog and not self._overfull:
                self._overfull = True
                log.error(
                    "storage: %d signals/trades wait for %s (%s); they are kept in memory, "
                    "which keeps growing until the database is back",
                    len(self._durable), self.display, self.last_error or "slow database",
                )
            self._nudge()

    def put_sheddable(self, record: Record) -> None:
        """Queue a price bar or raw quote, unless the queue is full (then it is counted
        in ``dropped``)."""
        with self._lock:
            if self._backlog() >= self.max_backlog:
                self._count_shed(record[0])
                return
            self._sheddable.append(record)
            self._queued_total += 1
            self._nudge()

    def _nudge(self) -> None:
        # Condition.notify costs a microsecond: only when the writer sleeps on a full batch.
        if self._idle and len(self._durable) + len(self._sheddable) >= self.flush_max_rows:
            self._idle = False
            self._wake.notify()

    def _count_shed(self, kind: str) -> None:
        self.dropped[kind] += 1
        if not self._shedding:
            log.warning(
                "storage backlog is full (%d records wait for %s): dropping price bars and "
                "raw quotes until it drains; signals and trades are kept",
                self._backlog(), self.display,
            )
        self._shedding += 1

    def _backlog(self) -> int:
        return len(self._durable) + len(self._sheddable) + self._in_flight

    def backlog(self) -> int:
        """Records queued or being written."""
        with self._lock:
            return self._backlog()

    @property
    def healthy(self) -> bool:
        """Whether the last write succeeded (and the thread still runs)."""
        died = self._thread is not None and not self._thread.is_alive() and self._stop_at is None
        return self.last_error is None and not died

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, database: peewee.Database) -> None:
        self._database = database
        self._thread = threading.Thread(target=self._run, name="arbotd-sql-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Ask the thread to write everything queued and end; it gives up after
        ``timeout`` seconds of failing (and says how many records it could not write)."""
        with self._lock:
            self._stop_at = time.monotonic() + timeout
            self._wake.notify()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._progress.notify_all()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_written(self, timeout: float | None = None) -> bool:
        """Block until every record queued before the call is written (or given up);
        ``False`` on timeout. Asks the writer not to wait for the flush interval."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._queued_total
            self._wake.notify()
            while self._done_total < target and self.running:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._progress.wait(0.5 if remaining is None else min(remaining, 0.5))
                self._wake.notify()
            return self._done_total >= target

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        next_periodic = time.monotonic() + self._periodic_interval
        try:
            while True:
                with self._lock:
                    if self._stop_at is None and (
                        len(self._durable) + len(self._sheddable) < self.flush_max_rows
                    ):
                        self._idle = True
                        self._wake.wait(self.flush_interval)
                        self._idle = False
                    batch = self._take()
                    stopping = self._stop_at is not None
                if batch:
                    self._write(batch)
                elif stopping:
                    return
                if self._periodic is not None and time.monotonic() >= next_periodic:
                    next_periodic = time.monotonic() + self._periodic_interval
                    self._run_periodic()
        except Exception:  # a bug: say so loudly, /health shows it
            self.last_error = "the writer thread failed (see the log)"
            log.exception("storage: the writer thread failed; nothing more is written to %s",
                          self.display)
        finally:
            assert self._database is not None
            discard_connection(self._database)

    def _take(self) -> list[Record]:
        batch: list[Record] = []
        while self._durable and len(batch) < self.flush_max_rows:
            batch.append(self._durable.popleft())
        while self._sheddable and len(batch) < self.flush_max_rows:
            batch.append(self._sheddable.popleft())
        self._in_flight = len(batch)
        return batch

    def _write(self, batch: list[Record]) -> None:
        pending = batch
        failures = 0
        while pending:
            try:
                self._commit(pending)
            except Exception as err:
                failure: Exception | None = err
                if not is_temporary(err):
                    pending, failure = self._write_one_by_one(pending, err)
                if failure is None:
                    continue
                # Wait even when the full disk stopped the writing record by record: tried
                # again at once, the batch would be refused and go round without end.
                failures += 1
                self._failed(failure, len(pending))
                if self._give_up(pending):
                    return
                self._back_off(self.retry.delay(failures))
            else:
                self._finished(len(pending), written=True)
                pending = []

    def _back_off(self, delay: float) -> None:
        """Sleep ``delay`` seconds; new records do not cut it short (they arrive all the
        time), a request to stop does (one more try, then the give-up deadline rules)."""
        with self._lock:
            stop_requested = self._stop_at is not None
            until = time.monotonic() + delay
            while (remaining := until - time.monotonic()) > 0:
                if self._stop_at is not None:
                    if not stop_requested:
                        return
                    remaining = min(remaining, self._stop_at - time.monotonic())
                    if remaining <= 0:
                        return
                self._wake.wait(remaining)

    def _commit(self, records: Sequence[Record]) -> None:
        database = self._database
        assert database is not None
        try:
            database.connect(reuse_if_open=True)
            with write_transaction(database):
                self._write_records(records)
        except Exception as err:
            if is_temporary(err):
                discard_connection(database)  # it may be broken: the next try opens one
            raise

    def _write_one_by_one(self, records: list[Record], err: Exception
                          ) -> tuple[list[Record], Exception | None]:
        """A batch the database refused: write its records one by one, so that only the
        one it refuses is lost (with an error naming it). Returns the records still to
        write and the temporary error (database away, disk full) that stopped it, if
        one did."""
        log.warning("storage: a batch of %d records was refused (%s); writing them one by "
                    "one", len(records), describe_error(err))
        for index, record in enumerate(records):
            try:
                self._commit([record])
            except Exception as refused:
                if is_temporary(refused):
                    return records[index:], refused
                log.error("storage: the database refused a %s record, which is lost: %s: %r",
                          record[0], describe_error(refused), record[1])
                self._finished(1, written=False)
            else:
                self._finished(1, written=True)
        return [], None

    def _finished(self, count: int, *, written: bool) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - count)
            self._done_total += count
            if written:
                self.batches_written += 1
                self.records_written += count
            else:
                self.records_refused += count
            recovered = self.last_error is not None and written
            if recovered:
                self.last_error = None
            ended = self._end_shedding_episode()
            if self._overfull and len(self._durable) < self.max_backlog:
                self._overfull = False
            backlog = self._backlog()
            self._progress.notify_all()
        if recovered:
            assert self._failing_since is not None
            log.warning("storage: %s is back after %.0f s; %d queued records still to write",
                        self.display, time.monotonic() - self._failing_since, backlog)
            self._failing_since = None
            if isinstance(self._database, PooledDatabase):
                self._database.close_idle()  # they were cut too: readers get fresh ones
        if ended:
            log.warning("storage: dropped %d price bars and raw quotes while the backlog "
                        "was full", ended)

    def _end_shedding_episode(self) -> int:
        if not self._shedding or self._backlog() > self.max_backlog * 0.9:
            return 0
        ended, self._shedding = self._shedding, 0
        return ended

    def _failed(self, err: BaseException, count: int) -> None:
        self.failed_writes += 1
        cause = describe_error(err)
        first = self.last_error is None
        self.last_error = cause
        if first:
            self._failing_since = time.monotonic()
            log.warning("storage: cannot write to %s (%s); retrying, %d records wait in "
                        "memory", self.display, cause, self.backlog())

    def _give_up(self, pending: list[Record]) -> bool:
        with self._lock:
            if self._stop_at is None or time.monotonic() < self._stop_at:
                return False
            lost = [*pending, *self._durable, *self._sheddable]
            self._durable.clear()
            self._sheddable.clear()
            self._in_flight = 0
            self._done_total += len(lost)
            self._progress.notify_all()
        kinds = Counter(kind for kind, _ in lost)
        log.error("storage: giving up at shutdown: %s could not be written to %s (%s)",
                  ", ".join(f"{n} {kind} records" for kind, n in sorted(kinds.items())),
                  self.display, self.last_error)
        return True

    def _run_periodic(self) -> None:
        assert self._periodic is not None and self._database is not None
        try:
            self._database.connect(reuse_if_open=True)
            self._periodic()
        except Exception as err:
            if is_temporary(err):
                discard_connection(self._database)  # the next batch reports the outage
            else:
                log.exception("storage: the periodic retention job failed")
