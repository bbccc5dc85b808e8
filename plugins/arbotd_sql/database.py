"""Opening a peewee database for a :class:`~arbotd_sql.config.DatabaseTarget`, and
telling the operator in one line why it failed.

peewee keeps one connection per thread on a database object: the writer thread holds
one for as long as it works, and every read opens one (from a pool on PostgreSQL, where
connecting costs milliseconds) for the length of the read.

What a failed write means decides whether its records survive: a database that is away,
locked, out of disk space or failing its I/O is *temporary* (the writer keeps the records
and tries again), anything else means the database refused the statement.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import sqlite3
from collections.abc import Iterator

import peewee
import psycopg2
from playhouse.pool import PooledDatabase, PooledPostgresqlDatabase

from arbotd import ArbotError
from arbotd_sql.config import DatabaseTarget

__all__ = [
    "CONNECTION_ERRORS",
    "StorageError",
    "describe_error",
    "discard_connection",
    "is_temporary",
    "make_database",
    "write_transaction",
]

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (peewee.OperationalError, peewee.InterfaceError)
"""What a database that is away, restarting, locked, full or failing its I/O raises
through peewee: worth retrying. Any other database error means the statement itself was
refused."""

# The drivers' own classes: an error raised outside peewee's wrapper (while rows are
# fetched) reaches the writer unwrapped. SQLite's SQLITE_FULL and SQLITE_IOERR, and
# PostgreSQL's classes 53 (disk full, out of memory) and 58 (I/O error), are among them.
_DRIVER_TEMPORARY_ERRORS = (
    sqlite3.OperationalError,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
)
_OUT_OF_SPACE_OR_IO = (errno.ENOSPC, errno.EDQUOT, errno.EIO)
_OUT_OF_SPACE_OR_IO_TEXT = ("database or disk is full", "disk i/o error",
                            "no space left on device", "disk quota exceeded")

_POOL_SIZE = 16


class StorageError(ArbotError):
    """The database cannot be reached, or refused what was asked of it."""


def make_database(
    target: DatabaseTarget, password: str | None = None, *, lock_timeout: float = 5.0
) -> peewee.Database:
    """A database object for ``target`` (not connected yet).

    ``lock_timeout`` is how long a SQLite writer waits for another one's lock before it
    gives up (and the storage writer retries later).
    """
    if target.kind == "sqlite":
        assert target.path is not None
        # journal_mode=WAL is set once when the storage opens: it is kept in the file.
        return peewee.SqliteDatabase(
            str(target.path),
            pragmas={"synchronous": "normal", "foreign_keys": 1},
            timeout=lock_timeout,
        )
    params = dict(target.params)
    if password is not None:
        params["password"] = password
    return PooledPostgresqlDatabase(
        target.database,
        max_connections=_POOL_SIZE,
        stale_timeout=300,
        timeout=30,
        **params,
    )


def discard_connection(database: peewee.Database) -> None:
    """Drop this thread's connection, which may be broken: a pooled one is closed rather
    than handed back to the pool."""
    with contextlib.suppress(Exception):
        if isinstance(database, PooledDatabase):
            database.manual_close()
        else:
            database.close()


def is_temporary(err: BaseException) -> bool:
    """Whether a failed write may succeed later unchanged: the database is away, locked,
    out of disk space or failing its I/O (by type, errno or the database's words), here
    or in the error it was raised from (``raise ... from err``)."""
    seen: BaseException | None = err
    for _ in range(8):  # a chain of translations is short; a cycle must not hang us
        if seen is None:
            return False
        if isinstance(seen, CONNECTION_ERRORS + _DRIVER_TEMPORARY_ERRORS):
            return True
        if isinstance(seen, OSError) and seen.errno in _OUT_OF_SPACE_OR_IO:
            return True
        text = str(seen).lower()
        if any(words in text for words in _OUT_OF_SPACE_OR_IO_TEXT):
            return True
        seen = seen.__cause__
    return False


@contextlib.contextmanager
def write_transaction(database: peewee.Database, *, immediate: bool = False
                      ) -> Iterator[None]:
    """A transaction on this thread's connection (open), committed when the block ends,
    rolled back when it raises, like ``database.atomic()``, except for the error it
    raises when it fails: always the first one.

    ``atomic()`` raises the rollback's error when the rollback fails too, which hides
    the cause: SQLite has already rolled back a transaction that a full disk or an I/O
    error ended ("cannot rollback - no transaction is active"), and a cut connection
    cannot roll back ("connection already closed").

    ``immediate``: SQLite takes the write lock at the start (``BEGIN IMMEDIATE``), so a
    transaction that reads before it writes never has to start again."""
    with database.manual_commit():
        if immediate and isinstance(database, peewee.SqliteDatabase):
            database.begin("IMMEDIATE")
        else:
            database.begin()
        try:
            yield
            database.commit()
        except BaseException:
            try:
                database.rollback()
            except Exception as rollback_error:
                log.debug("storage: the rollback after a failed write failed too: %s",
                          describe_error(rollback_error))
            raise


def describe_error(err: BaseException, password: str | None = None) -> str:
    """The reason of a database error in a few words (``connection refused``, ``database
    "x" does not exist``, ``not a directory: /srv/file/arbot.db``), never the password."""
    if isinstance(err, OSError) and err.strerror:
        text = err.strerror + (f": {err.filename}" if err.filename else "")
    else:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        text = lines[0] if lines else type(err).__name__
        # libpq: 'connection to server at "127.0.0.1", port 5999 failed: Connection refused'
        if " failed: " in text:
            text = text.rsplit(" failed: ", 1)[1]
        text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    if password:
        text = text.replace(password, "***")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
