"""Opening a peewee database for a :class:`~arbotd_sql.config.DatabaseTarget`, and
telling the operator in one line why it failed.

peewee keeps one connection per thread on a database object: the writer thread holds
one for as long as it works, and every read opens one (from a pool on PostgreSQL, where
connecting costs milliseconds) for the length of the read.
"""

from __future__ import annotations

import contextlib
import re

import peewee
from playhouse.pool import PooledDatabase, PooledPostgresqlDatabase

from arbotd import ArbotError
from arbotd_sql.config import DatabaseTarget

__all__ = [
    "CONNECTION_ERRORS",
    "StorageError",
    "describe_error",
    "discard_connection",
    "make_database",
]

CONNECTION_ERRORS = (peewee.OperationalError, peewee.InterfaceError)
"""What a database that is away, restarting or locked raises: worth retrying. Any other
database error means the statement itself was refused."""

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
