"""``SqlStorage``: the :class:`arbotd.Storage` backend on peewee (SQLite or PostgreSQL).

Nothing here touches the database on the event loop's thread. ``record_*`` and
``observe_quote`` queue for the writer thread (:mod:`arbotd_sql.writer`); ``open``,
``read`` and the user methods run in trio's worker threads, each read with its own
connection (SQLite in WAL mode lets them read while the writer writes).

Every model is bound to ``models.database``, which ``open`` points at this storage's
database: one open ``SqlStorage`` per process.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
import peewee
import trio
from playhouse.pool import PooledDatabase

from arbotd import (
    ArbotError,
    Balance,
    Quote,
    Signal,
    StoredState,
    Trade,
    secret_from_env,
    to_decimal,
)
from arbotd_sql import audit, candles, models, queries, recorded
from arbotd_sql.config import StorageConfig, parse_database_url
from arbotd_sql.database import (
    CONNECTION_ERRORS,
    StorageError,
    describe_error,
    make_database,
)
from arbotd_sql.durable import DurableWrites
from arbotd_sql.migrations import migrate_schema
from arbotd_sql.models import ApiUser, Bar, IdSequence, RawQuote, SchemaVersion
from arbotd_sql.records import (
    AUDIT,
    BAR,
    EQUITY,
    FUNDING,
    QUOTE,
    SIGNAL,
    STATE,
    TRADE,
    write_records,
    write_state,
    write_trades,
)
from arbotd_sql.state import load_state, next_id
from arbotd_sql.writer import RetryPolicy, Writer

__all__ = ["SCOPES", "SqlStorage"]

log = logging.getLogger(__name__)

T = TypeVar("T")

SCOPES = ("read", "trading")
"""The scopes an API user may have."""

_DAY = 86_400.0
PING_TIMEOUT = 1.5
"""Seconds :meth:`SqlStorage.ping` waits for the database's answer (less than the API's
2 s bound on a ping, so that the answer says how long the database has been silent)."""


class SqlStorage:
    """Signals, trades, price bars, equity, API users and the audit trail in a SQL
    database.

    ``mode`` tells the trading mode an equity snapshot belongs to. ``shutdown_timeout``
    bounds how long :meth:`close` keeps retrying a database that is away.
    ``lock_timeout`` is how long a SQLite writer waits for another writer's lock.
    """

    def __init__(
        self,
        settings: StorageConfig,
        *,
        state_dir: Path,
        mode: Callable[[], str] = lambda: "simulation",
        shutdown_timeout: float = 10.0,
        lock_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        retention_interval: float = 3600.0,
    ) -> None:
        try:
            self.target = parse_database_url(settings.url, state_dir)
        except ValueError as err:
            raise StorageError(f"[storage] url: {err}") from err
        self.settings = settings
        self.display = self.target.display
        self._mode = mode
        self._shutdown_timeout = shutdown_timeout
        self._lock_timeout = lock_timeout
        self._writer = Writer(
            display=self.display,
            write=write_records,
            flush_interval=settings.flush_interval_seconds,
            flush_max_rows=settings.flush_max_rows,
            max_backlog=settings.max_backlog,
            retry=retry,
            periodic=self._retention_job if settings.max_history_days else None,
            periodic_interval=retention_interval,
        )
        self._record_quotes = settings.record_quotes
        # (symbol, exchange) -> [open, high, low, close] of the minute starting at _minute
        self._bars: dict[tuple[str, str], list[float]] = {}
        self._minute = 0
        self._database: peewee.Database | None = None
        self._durable: DurableWrites | None = None
        self._durable_error: str | None = None  # why the last durable write failed
        self._durable_failures = 0
        self._password: str | None = None
        self._closed = False
        # One ping's read at a time: a read abandoned by its caller keeps the token until
        # its thread ends.
        self._ping_limiter = trio.CapacityLimiter(1)
        self._ping_started = 0.0  # monotonic time the latest ping's read began

    def __repr__(self) -> str:
        return f"SqlStorage({self.display!r})"

    # --- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> StoredState:
        """Connect, create or migrate the schema, start the writer and return the saved
        state. Raises :class:`StorageError` naming the database and the cause."""
        if self._database is not None:
            raise StorageError(f"the database {self.display} is already open")
        name = self.settings.password_env
        self._password = secret_from_env(name) if name else None
        if name and self._password is None:
            raise StorageError(
                f"cannot open the database {self.display}: the environment variable {name} "
                "named by [storage] password_env is not set"
            )
        try:
            database, state = await trio.to_thread.run_sync(self._open_database)
        except StorageError as err:
            raise StorageError(f"cannot open the database {self.display}: {err}") from err
        except (peewee.PeeweeException, OSError) as err:
            cause = describe_error(err, self._password)
            raise StorageError(f"cannot open the database {self.display}: {cause}") from err
        self._database = database
        self._durable = DurableWrites(database)
        self._writer.start(database)
        log.info("storage: %s open; %d unfinished trades to reconcile", self.display,
                 len(state.unfinished_trades))
        return state

    def _open_database(self) -> tuple[peewee.Database, StoredState]:
        if self.target.path is not None:
            _make_directory(self.target.path.parent)
        database = make_database(self.target, self._password, lock_timeout=self._lock_timeout)
        models.database.initialize(database)
        try:
            with database.connection_context():
                if isinstance(database, peewee.SqliteDatabase):
                    # Kept in the file: readers never wait for the writer, nor it for them.
                    database.execute_sql("PRAGMA journal_mode=wal")
                migrate_schema(database)
                state = load_state(time.time())
        except BaseException:
            _close_all(database)
            raise
        return database, state

    async def close(self) -> None:
        """Write everything queued (and the bars of the current minute), then stop the
        writer and close the connections. Gives up after ``shutdown_timeout`` seconds of a
        database that is away, saying in the log what could not be written."""
        if self._closed:
            return
        self._closed = True
        self._queue_bars()
        if self._database is None:
            if self._writer.backlog():
                log.error("storage: closed before it was opened; %d records not written",
                          self._writer.backlog())
            return
        self._writer.stop(self._shutdown_timeout)
        await trio.to_thread.run_sync(self._writer.join)
        if self._durable is not None:
            await trio.to_thread.run_sync(self._durable.close)
        _close_all(self._database)

    async def flush(self, timeout: float | None = None) -> bool:
        """Write what is queued now, and the bars of the current minute so far (a later
        write of the same minute merges into them). ``False`` if not done in ``timeout``
        seconds."""
        self._queue_bars()
        return await trio.to_thread.run_sync(
            self._writer.wait_written, timeout, abandon_on_cancel=True
        )

    # --- queueing (event loop) -------------------------------------------------------------------

    def observe_quote(self, quote: Quote) -> None:
        """Hot path: fold the mid price into the quote's 1-minute bar (local receive
        time, so virtual time in a backtest); a new minute queues the bars of the last."""
        if self._record_quotes:
            self._writer.put_sheddable((QUOTE, quote))
        bid, ask = quote.bid, quote.ask
        if not (bid > 0 and ask > 0):  # one-sided book (or NaN): no mid price
            return
        mid = (bid + ask) / 2
        minute = int(quote.received_ts // 60) * 60
        if minute > self._minute:
            self._roll(minute)
        key = (quote.symbol, quote.exchange)
        bar = self._bars.get(key)
        if bar is None:
            self._bars[key] = [mid, mid, mid, mid]
            return
        if mid > bar[1]:
            bar[1] = mid
        elif mid < bar[2]:
            bar[2] = mid
        bar[3] = mid

    def _roll(self, minute: int) -> None:
        self._queue_bars()
        self._bars.clear()
        self._minute = minute

    def _queue_bars(self) -> None:
        put, start = self._writer.put_sheddable, self._minute
        for (symbol, exchange), (open_, high, low, close) in self._bars.items():
            put((BAR, (symbol, exchange, start, open_, high, low, close)))

    def record_signal(self, signal: Signal) -> None:
        self._put((SIGNAL, signal))

    def record_trade(self, trade: Trade) -> None:
        self._put((TRADE, trade))

    def record_funding(self, exchange: str, asset: str, amount: Decimal, timestamp: float
                       ) -> None:
        self._put((FUNDING, (exchange, asset, to_decimal(amount), timestamp)))

    def record_equity(self, timestamp: float, equity_usd: float, balances: Sequence[Balance]
                      ) -> None:
        self._put((EQUITY, (timestamp, equity_usd, self._mode(), tuple(balances))))

    def record_audit(self, *, actor: str, method: str, action: str, outcome: str,
                     source: str | None = None, status: int | None = None,
                     details: Mapping[str, Any] | None = None,
                     timestamp: float | None = None) -> None:
        """One entry of the audit trail (:class:`arbotd.AuditStore`), queued like a trade:
        never dropped. Never raises."""
        try:
            row = audit.audit_row(actor=actor, method=method, action=action,
                                  outcome=outcome, source=source, status=status,
                                  details=details, timestamp=timestamp)
        except Exception:  # a caller's odd value must not fail the call it describes
            log.exception("storage: the audit entry %r %r could not be built", action,
                          outcome)
            return
        self._put((AUDIT, row))

    def _put(self, record: tuple[str, Any]) -> None:
        if self._closed:
            log.error("storage: a %s record came after close and is not written: %r", *record)
            return
        self._writer.put(record)

    # --- durable writes (arbotd.DurableStorage) -----------------------------------------------

    async def commit_trade(self, trade: Trade, signal: Signal | None = None) -> None:
        """Write ``trade`` with its orders and fills (and the ``signal`` it came from) in
        a transaction of its own that is on disk when this returns (before any of its
        orders is sent). Raises :class:`StorageError` naming the cause."""
        await self._durably(f"trade {trade.id}", _write_trade_and_signal, trade, signal)

    async def reserve_ids(self, name: str, count: int) -> int:
        """Reserve ``count`` ids of the kind ``name`` durably; return the first."""
        if count < 1:
            raise ValueError(f"reserve at least one id, not {count}")
        return await self._durably(f"a block of {name} ids", _reserve_ids, name, count)

    async def save_state(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON-ready, ``None`` removes it) under ``key`` across restarts,
        on disk when this returns."""
        await self._durably(f"the state {key!r}", write_state, key, _json(value), time.time())

    def record_state(self, key: str, value: Any) -> None:
        """:meth:`save_state` through the writer (returns at once)."""
        self._put((STATE, (key, _json(value), time.time())))

    async def _durably(self, what: str, fn: Callable[..., T], /, *args: Any) -> T:
        if self._durable is None or self._closed:
            raise StorageError(f"cannot write {what}: the database {self.display} is not open")
        try:
            result = await self._durable.run(fn, *args)
        except (peewee.PeeweeException, OSError, sqlite3.Error) as err:
            cause = describe_error(err, self._password)
            self._durable_failures += 1
            if self._durable_error is None:
                log.error("storage: cannot write %s to %s: %s", what, self.display, cause)
            self._durable_error = f"cannot write durably: {cause}"
            raise StorageError(f"cannot write {what} to {self.display}: {cause}") from err
        if self._durable_error is not None:
            log.warning("storage: durable writes to %s succeed again", self.display)
            self._durable_error = None
        return result

    # --- state for /health ---------------------------------------------------------------------

    def backlog(self) -> int:
        return self._writer.backlog()

    @property
    def healthy(self) -> bool:
        """Whether the last attempts to write succeeded: the writer's, and the last
        durable write's (a trade recorded before its orders)."""
        return self._writer.healthy and self._durable_error is None

    @property
    def last_error(self) -> str | None:
        """Why the database cannot be written to now (``None`` while it can)."""
        return self._writer.last_error or self._durable_error

    @property
    def write_errors(self) -> int:
        """Writes that failed since the start: the writer's attempts at a batch (each
        retried) and durable writes (a trade recorded before its orders)."""
        return self._writer.failed_writes + self._durable_failures

    @property
    def dropped_bars(self) -> int:
        """Price bars dropped because the backlog was full."""
        return self._writer.dropped[BAR]

    @property
    def dropped_quotes(self) -> int:
        """Raw quotes dropped because the backlog was full."""
        return self._writer.dropped[QUOTE]

    @property
    def writer(self) -> Writer:
        return self._writer

    def status(self) -> dict[str, Any]:
        """For ``/health`` and ``/metrics``: ``healthy`` is false from the first failed
        write until one succeeds again, and ``last_error`` says why it failed
        (``database or disk is full``, ``connection refused``); ``write_errors`` counts
        the failed writes since the start, ``dropped_*`` what a full backlog shed."""
        return {
            "database": self.display,
            "healthy": self.healthy,
            "last_error": self.last_error,
            "backlog": self.backlog(),
            "write_errors": self.write_errors,
            "dropped_bars": self.dropped_bars,
            "dropped_quotes": self.dropped_quotes,
        }

    def data_directories(self) -> list[Path]:
        """The directories of this machine the database's files are in, for the disk
        check of ``/health``: the SQLite file's; none for PostgreSQL, whose server may be
        another machine."""
        return [] if self.target.path is None else [self.target.path.parent]

    async def ping(self, timeout: float = PING_TIMEOUT) -> None:
        """A cheap read (the schema's version stamp) on a connection of its own, for
        ``/health``. Raises :class:`StorageError` naming the cause when the read fails or
        does not answer within ``timeout`` seconds.

        One read at a time: a read that hangs (a server that stopped answering) is left
        to its thread, and the pings after it wait for that thread, never start another,
        and fail after their ``timeout`` saying how long the database has been silent."""
        database = self._database
        if database is None or self._closed:
            raise StorageError(f"the database {self.display} is not open")
        with trio.move_on_after(timeout):
            await trio.to_thread.run_sync(self._ping_in_thread, database,
                                          abandon_on_cancel=True, limiter=self._ping_limiter)
            return
        silent = time.monotonic() - self._ping_started
        raise StorageError(f"the database {self.display} has not answered a read for "
                           f"{max(silent, timeout):.0f} s")

    def _ping_in_thread(self, database: peewee.Database) -> None:
        self._ping_started = time.monotonic()
        self._read_in_thread(database, _schema_version, (), {})

    # --- reading ---------------------------------------------------------------------------------

    async def read(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker thread with a connection of its own: ``fn``
        is a plain function using the models (``await storage.read(queries.trades,
        limit=50)``). Database errors become :class:`StorageError`."""
        database = self._database
        if database is None or self._closed:
            raise StorageError(f"the database {self.display} is not open")
        call = functools.partial(self._read_in_thread, database, fn, args, kwargs)
        return await trio.to_thread.run_sync(call)

    def _read_in_thread(self, database: peewee.Database, fn: Callable[..., T],
                        args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        # A pooled connection may have been cut while idle (the server restarted): its
        # first use fails and it is not handed out again, so one more try gets a new one.
        attempts = 2 if isinstance(database, PooledDatabase) else 1
        for attempt in range(1, attempts + 1):
            try:
                with database.connection_context():
                    return fn(*args, **kwargs)
            except CONNECTION_ERRORS as err:
                if attempt < attempts:
                    continue
                raise StorageError(f"cannot read from the database {self.display}: "
                                   f"{describe_error(err, self._password)}") from err
            except peewee.PeeweeException as err:
                raise StorageError(f"the database {self.display} refused a query: "
                                   f"{describe_error(err, self._password)}") from err
        raise AssertionError("unreachable")

    # --- history for the API (arbotd.HistoryStore) -------------------------------------------

    async def trades(self, *, start_date: dt.date | None = None,
                     end_date: dt.date | None = None, symbol: str | None = None,
                     status: str | None = None, limit: int = 100, offset: int = 0
                     ) -> dict[str, Any]:
        """:func:`arbotd_sql.queries.trades`."""
        return await self.read(queries.trades, start_date=start_date, end_date=end_date,
                               symbol=symbol, status=status, limit=limit, offset=offset)

    async def trade(self, trade_id: int) -> dict[str, Any] | None:
        """:func:`arbotd_sql.queries.trade`."""
        return await self.read(queries.trade, trade_id)

    async def signals(self, *, start_time: float | None = None,
                      end_time: float | None = None, symbol: str | None = None,
                      executed: bool | None = None, limit: int = 100, offset: int = 0
                      ) -> dict[str, Any]:
        """:func:`arbotd_sql.queries.signals`."""
        return await self.read(queries.signals, start_time=start_time, end_time=end_time,
                               symbol=symbol, executed=executed, limit=limit, offset=offset)

    async def price_history(self, *, symbol: str, exchange: str | None = None,
                            start_time: float, end_time: float, interval: str = "1m"
                            ) -> dict[str, Any]:
        """:func:`arbotd_sql.candles.price_history`."""
        return await self.read(candles.price_history, symbol=symbol, exchange=exchange,
                               start_time=start_time, end_time=end_time, interval=interval)

    async def performance(self, *, start: dt.date | None = None, end: dt.date | None = None,
                          period: str | None = None, mode: str | None = None
                          ) -> dict[str, Any]:
        """:func:`arbotd_sql.queries.performance`."""
        return await self.read(queries.performance, start=start, end=end, period=period,
                               mode=mode)

    async def symbol_performance(self, *, symbols: Sequence[str] | None = None,
                                 start: dt.date | None = None, end: dt.date | None = None,
                                 metrics: Sequence[str] | None = None,
                                 mode: str | None = None) -> dict[str, Any]:
        """:func:`arbotd_sql.queries.symbol_performance` (``metrics=None``: all)."""
        return await self.read(queries.symbol_performance, symbols=symbols, start=start,
                               end=end, metrics=queries.SYMBOL_METRICS if metrics is None
                               else metrics, mode=mode)

    # --- the audit trail for the API (arbotd.AuditStore) ------------------------------------

    async def audit_entries(self, *, start_time: float | None = None,
                            end_time: float | None = None, actor: str | None = None,
                            action: str | None = None, outcome: str | None = None,
                            limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """:func:`arbotd_sql.audit.audit_entries`."""
        return await self.read(audit.audit_entries, start_time=start_time,
                               end_time=end_time, actor=actor, action=action,
                               outcome=outcome, limit=limit, offset=offset)

    # --- recorded quotes, for backtests ----------------------------------------------------

    def recorded_quotes(self, start: float, end: float, *,
                        symbols: Sequence[str] | None = None,
                        exchanges: Sequence[str] | None = None) -> Iterator[list[Quote]]:
        """The raw quotes recorded with ``start <= received_ts < end``, in batches in
        ``received_ts`` order (:func:`arbotd_sql.recorded.recorded_quote_pages`).

        A synchronous generator for a worker thread (a backtest's): it holds a connection
        of that thread while it is iterated and never touches the event loop. Raises
        :class:`StorageError` when the database is not open or refuses the query."""
        database = self._database
        if database is None or self._closed:
            raise StorageError(f"the database {self.display} is not open")
        try:
            with database.connection_context():
                yield from recorded.recorded_quote_pages(start, end, symbols=symbols,
                                                         exchanges=exchanges)
        except peewee.PeeweeException as err:
            raise StorageError(f"cannot read recorded quotes from {self.display}: "
                               f"{describe_error(err, self._password)}") from err

    async def recorded_exchanges(self, start: float, end: float) -> list[str]:
        """The exchanges with raw quotes recorded in ``start <= received_ts < end``."""
        return await self.read(recorded.recorded_exchanges, start, end)

    # --- retention ---------------------------------------------------------------------------

    async def prune_history(self, now: float | None = None) -> int:
        """Delete the price bars and raw quotes older than ``max_history_days`` before
        ``now`` (default: the time of the latest quote seen, else the wall clock); return
        how many rows went. Trades, fills and signals are never deleted."""
        days = self.settings.max_history_days
        if not days:
            return 0
        return await self.read(_prune_before, (now or self._now()) - days * _DAY)

    def _retention_job(self) -> None:
        """Run by the writer thread every ``retention_interval``."""
        deleted = _prune_before(self._now() - self.settings.max_history_days * _DAY)
        if deleted:
            log.info("storage: deleted %d price bars and raw quotes older than %d days",
                     deleted, self.settings.max_history_days)

    def _now(self) -> float:
        # Quotes carry the daemon's clock (virtual in a backtest); the writer thread
        # cannot ask trio's clock.
        return self._minute + 60.0 if self._minute else time.time()

    # --- users ---------------------------------------------------------------------------------

    async def add_user(self, username: str, password_hash: str, scope: str) -> None:
        """Add an API user; raises :class:`arbotd.ArbotError` when the name is taken."""
        if scope not in SCOPES:
            raise ArbotError(f"a user's scope is read or trading, not {scope!r}")
        if not username or len(username) > 64:
            raise ArbotError("a user name has 1 to 64 characters")
        if not await self.read(_insert_user, username, password_hash, scope, time.time()):
            raise ArbotError(f"user {username!r} already exists")

    async def list_users(self) -> list[dict[str, Any]]:
        """Every user: ``username``, ``scope``, ``created_at``, ``token_generation``, by
        name."""
        return await self.read(_list_users)

    async def get_user(self, username: str) -> dict[str, Any] | None:
        """``username``, ``password_hash``, ``scope``, ``created_at``,
        ``token_generation``; ``None`` when unknown."""
        return await self.read(_get_user, username)

    async def remove_user(self, username: str) -> None:
        """Delete a user; raises :class:`arbotd.ArbotError` for an unknown user."""
        if not await self.read(_delete_user, username):
            raise ArbotError(f"no user {username!r}")

    async def set_password(self, username: str, password_hash: str) -> int:
        """Replace a user's password hash and raise its token generation (its tokens stop
        working); return the new generation. Raises :class:`arbotd.ArbotError` for an
        unknown user."""
        generation = await self.read(_next_generation, username,
                                     {ApiUser.password_hash: password_hash})
        if generation is None:
            raise ArbotError(f"no user {username!r}")
        return generation

    async def revoke_tokens(self, username: str) -> int:
        """Raise a user's token generation: every token issued so far stops working.
        Returns the new generation; raises :class:`arbotd.ArbotError` for an unknown user."""
        generation = await self.read(_next_generation, username, {})
        if generation is None:
            raise ArbotError(f"no user {username!r}")
        return generation

    async def set_scope(self, username: str, scope: str) -> None:
        """Change a user's scope; raises :class:`arbotd.ArbotError` for an unknown user or
        scope."""
        if scope not in SCOPES:
            raise ArbotError(f"a user's scope is read or trading, not {scope!r}")
        if not await self.read(_set_scope, username, scope):
            raise ArbotError(f"no user {username!r}")


# --- the sync functions that run in worker threads ---------------------------------------------


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _write_trade_and_signal(trade: Trade, signal: Signal | None) -> None:
    if signal is not None:
        write_records([(SIGNAL, signal)])
    write_trades([trade])


def _reserve_ids(name: str, count: int) -> int:
    start = next_id(name)
    IdSequence.insert(name=name, next_value=start + count).on_conflict(
        conflict_target=[IdSequence.name], preserve=[IdSequence.next_value]
    ).execute()
    return start


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where the directory should be
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(directory)) from None


def _close_all(database: peewee.Database) -> None:
    if isinstance(database, PooledDatabase):
        database.close_all()
    elif not database.is_closed():
        database.close()


def _schema_version() -> int | None:
    return SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar()


def _prune_before(cutoff: float) -> int:
    with models.database.atomic():
        bars = Bar.delete().where(Bar.minute < cutoff).execute()
        quotes = RawQuote.delete().where(RawQuote.received_ts < cutoff).execute()
    return bars + quotes


def _insert_user(username: str, password_hash: str, scope: str, created_at: float) -> bool:
    try:
        with models.database.atomic():
            ApiUser.create(username=username, password_hash=password_hash, scope=scope,
                           created_at=created_at)
    except peewee.IntegrityError:
        return False
    return True


def _list_users() -> list[dict[str, Any]]:
    query = ApiUser.select(ApiUser.username, ApiUser.scope, ApiUser.created_at,
                           ApiUser.token_generation)
    return list(query.order_by(ApiUser.username).dicts())


def _get_user(username: str) -> dict[str, Any] | None:
    query = ApiUser.select(ApiUser.username, ApiUser.password_hash, ApiUser.scope,
                           ApiUser.created_at, ApiUser.token_generation
                           ).where(ApiUser.username == username)
    return query.dicts().first()


def _delete_user(username: str) -> bool:
    return ApiUser.delete().where(ApiUser.username == username).execute() > 0


def _next_generation(username: str, changes: dict[Any, Any]) -> int | None:
    """Raise the user's token generation (and apply ``changes``) in one transaction, so
    that a new password never goes without the revocation of the old tokens; the new
    generation, or ``None`` for an unknown user."""
    with models.database.atomic():
        updated = ApiUser.update({**changes,
                                  ApiUser.token_generation: ApiUser.token_generation + 1}
                                 ).where(ApiUser.username == username).execute()
        if not updated:
            return None
        return ApiUser.select(ApiUser.token_generation).where(
            ApiUser.username == username).scalar()


def _set_scope(username: str, scope: str) -> bool:
    return ApiUser.update(scope=scope).where(ApiUser.username == username).execute() > 0
