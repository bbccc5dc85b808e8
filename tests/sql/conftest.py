"""Fixtures of the storage tests: a real database of each backend, storages that are
closed after the test, and a way to take the database away and bring it back.

PostgreSQL is ``$ARBOTD_TEST_POSTGRES_URL`` (``.ci/run`` starts one), else a throwaway
server this session starts with the local ``initdb``/``pg_ctl`` (as the ``postgres``
user when the tests run as root, since PostgreSQL refuses to run as root). Each test
gets its own schema in it, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
import pytest
from support import postgres_bindir, throwaway_postgres

from arbotd_sql import RetryPolicy, SqlStorage, StorageConfig

BACKENDS = ["sqlite", "postgresql"]
FAST_RETRY = RetryPolicy(initial=0.02, factor=2.0, maximum=0.2)


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL database the tests may create schemas in."""
    configured = os.environ.get("ARBOTD_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb) on this machine and "
                    "$ARBOTD_TEST_POSTGRES_URL is not set")
    try:
        with throwaway_postgres(bindir) as url:
            yield url
    except LookupError as err:
        pytest.skip(str(err))


def _connect(url: str) -> Any:
    parts = urlsplit(url)
    connection = psycopg2.connect(
        host=parts.hostname, port=parts.port, user=parts.username,
        dbname=parts.path.lstrip("/"), password=os.environ.get("PGPASSWORD"),
    )
    connection.autocommit = True
    return connection


def with_port(url: str, port: int) -> str:
    """``url`` pointing at another port of the same host (a proxy)."""
    parts = urlsplit(url)
    netloc = f"{parts.username}@127.0.0.1:{port}" if parts.username else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """``postgres_url`` with a fresh, empty schema of its own as the search path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = _connect(postgres_url)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
    options = quote(f"-csearch_path={schema}")
    yield f"{postgres_url}?options={options}"
    with admin.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")
    admin.close()


# --- one database per test, of each backend -------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database: a SQLite file in the test's directory, or a fresh PostgreSQL
    schema."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'arbot.db'}"
    return request.getfixturevalue("postgres_schema_url")


@pytest.fixture
async def make_storage(tmp_path: Path) -> AsyncIterator[Callable[..., SqlStorage]]:
    """``make_storage(url, **settings)``: a storage with short intervals for tests (not
    opened); every storage made is closed after the test."""
    made: list[SqlStorage] = []

    def make(url: str, *, retry: RetryPolicy = FAST_RETRY, lock_timeout: float = 0.1,
             shutdown_timeout: float = 5.0, mode: str = "simulation",
             retention_interval: float = 3600.0, **settings: Any) -> SqlStorage:
        config = StorageConfig(url=url, **{"flush_interval_seconds": 0.02, **settings})
        storage = SqlStorage(config, state_dir=tmp_path / "state", mode=lambda: mode,
                             retry=retry, lock_timeout=lock_timeout,
                             shutdown_timeout=shutdown_timeout,
                             retention_interval=retention_interval)
        made.append(storage)
        return storage

    yield make
    for storage in made:
        await storage.close()


# --- taking the database away ---------------------------------------------------------------


class _CuttableProxy:
    """A TCP proxy in front of PostgreSQL that can cut every connection and refuse new
    ones (as a server that went away does), then let them through again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_off = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off.is_set():
                client.close()
                continue
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.cut_off.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self.cut_off.clear()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


class Outage:
    """``url`` is what the storage should use; ``cut()`` takes the database away
    (PostgreSQL: every connection cut and new ones refused; SQLite: another process holds
    the write lock), ``restore()`` gives it back."""

    def __init__(self, url: str, cut: Callable[[], None], restore: Callable[[], None]) -> None:
        self.url = url
        self.cut = cut
        self.restore = restore


@pytest.fixture
def outage(backend: str, database_url: str) -> Iterator[Outage]:
    if backend == "postgresql":
        parts = urlsplit(database_url)
        proxy = _CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        yield Outage(with_port(database_url, proxy.port), proxy.cut, proxy.restore)
        proxy.close()
        return
    path = Path(urlsplit(database_url).path[1:])
    holder: list[sqlite3.Connection] = []

    def cut() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        holder.append(connection)

    def restore() -> None:
        while holder:
            connection = holder.pop()
            connection.execute("ROLLBACK")
            connection.close()

    yield Outage(database_url, cut, restore)
    restore()
