"""The ``[storage]`` table, and the database a ``url`` names.

The password of a PostgreSQL database is never written in the file: ``password_env``
names the environment variable that holds it (set in the service's EnvironmentFile), so
the url can be shown in logs and errors as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from arbotd import setting

__all__ = ["DatabaseTarget", "StorageConfig", "parse_database_url"]

_EXPECTED = 'expected "sqlite:///path/to/arbot.db" or "postgresql://user@host:port/dbname"'
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@attrs.frozen
class DatabaseTarget:
    """Where the data lives. ``display`` is the url to show in logs and errors (it never
    holds a password); ``path`` is the SQLite file; ``params`` are psycopg2's connection
    keywords (``host``, ``port``, ``user``, and any ``?key=value`` of the url)."""

    kind: Literal["sqlite", "postgresql"]
    display: str
    path: Path | None = None
    database: str = ""
    params: dict[str, Any] = attrs.field(factory=dict)


def parse_database_url(url: str, state_dir: Path) -> DatabaseTarget:
    """The database ``url`` names; ``""`` is ``arbot.db`` in ``state_dir``. Raises
    ``ValueError`` with a message for the operator."""
    if not url:
        path = state_dir / "arbot.db"
        return DatabaseTarget("sqlite", _sqlite_url(path), path=path)
    scheme, _, rest = url.partition("://")
    if not rest:
        raise ValueError(f"{_EXPECTED}, got {url!r}")
    if scheme == "sqlite":
        return _parse_sqlite(url, rest)
    if scheme in ("postgresql", "postgres"):
        return _parse_postgresql(url)
    raise ValueError(f'{_EXPECTED}: unknown scheme "{scheme}"')


def _sqlite_url(path: Path) -> str:
    # sqlite:///relative/path.db, sqlite:////absolute/path.db (as SQLAlchemy and peewee)
    return f"sqlite:///{path}"


def _parse_sqlite(url: str, rest: str) -> DatabaseTarget:
    if not rest.startswith("/"):
        raise ValueError(
            'a SQLite url has no host: write "sqlite:///relative/path.db" or '
            f'"sqlite:////absolute/path.db", got {url!r}'
        )
    raw = unquote(rest[1:].split("?", 1)[0])
    if not raw or raw.endswith("/"):
        raise ValueError(f'expected a file name after "sqlite:///", got {url!r}')
    if raw == ":memory:":
        raise ValueError("an in-memory SQLite database cannot be shared by the writer "
                         "and the readers: name a file")
    return DatabaseTarget("sqlite", url, path=Path(raw).expanduser())


def _parse_postgresql(url: str) -> DatabaseTarget:
    parts = urlsplit(url)
    if parts.password is not None:
        raise ValueError(
            "the url must not contain a password: put it in an environment variable and "
            "name that variable in password_env"
        )
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"invalid port in {url!r}: {err}") from err
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValueError(f"expected the database name after the host, as in "
                         f"postgresql://user@host:5432/dbname, got {url!r}")
    params: dict[str, Any] = {"connect_timeout": 5}
    if parts.hostname:
        params["host"] = parts.hostname
    if port is not None:
        params["port"] = port
    if parts.username:
        params["user"] = unquote(parts.username)
    params.update(parse_qsl(parts.query, keep_blank_values=True))
    if "password" in params:
        raise ValueError("the url must not contain a password: use password_env")
    return DatabaseTarget("postgresql", url, database=database, params=params)


def _check_url(url: str) -> str | None:
    try:
        parse_database_url(url, Path("."))
    except ValueError as err:
        return str(err)
    return None


def _check_env_name(name: str) -> str | None:
    if name and not _ENV_NAME.fullmatch(name):
        return f"expected the name of an environment variable (such as PGPASSWORD), got {name!r}"
    return None


@attrs.frozen
class StorageConfig:
    """``[storage]``: where signals, trades, price bars and API users are kept.

    Changes apply at the next start (the database stays open across reloads).
    """

    # "" = sqlite:///<state_dir>/arbot.db. Else "sqlite:///relative/path.db",
    # "sqlite:////absolute/path.db" or "postgresql://user@host:5432/dbname".
    url: str = setting("", check=_check_url, reload="restart")
    # The environment variable holding the PostgreSQL password ("" = none, or .pgpass).
    password_env: str = setting("", check=_check_env_name, reload="restart")
    # The writer writes a batch this often, or as soon as flush_max_rows are queued.
    flush_interval_seconds: float = setting(0.25, gt=0, le=60)
    flush_max_rows: int = setting(500, ge=1, le=100_000)
    # Records kept in memory while the database is slow or away. Beyond it, price bars
    # and raw quotes are dropped (and counted); signals and trades never are.
    max_backlog: int = setting(100_000, ge=100, le=100_000_000)
    # Record every quote (for backtests); needs much disk space.
    record_quotes: bool = setting(False)
    # Price bars and raw quotes older than this are deleted (0 = kept forever). Trades,
    # fills and signals are never deleted.
    max_history_days: int = setting(90, ge=0, le=36_500)

    def validate_config(self) -> list[tuple[str, str]]:
        if self.flush_max_rows > self.max_backlog:
            return [("flush_max_rows", f"must not exceed max_backlog ({self.max_backlog})")]
        return []
