"""A database that cannot be reached, goes away, or cannot keep up: clear errors at start,
an event loop that never waits, a backlog that drains, bars shed before anything else."""

from __future__ import annotations

import errno
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from _storage_values import T0, completed_lifecycle, quote, signal
from support import WriteFault

import arbotd_sql.storage
from arbotd import ArbotError, ConfigError
from arbotd_sql import SqlStorage, StorageError
from arbotd_sql.models import Bar, FillRecord, SignalRecord, TradeRecord

Make = Callable[..., SqlStorage]
# ``outage`` (conftest.Outage): ``url`` for the storage, ``cut()`` and ``restore()``.


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# --- unavailable at start ---------------------------------------------------------------------


async def test_an_unreachable_postgresql_server_is_a_clear_error(
    make_storage: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_TEST_DB_PASSWORD", "s3cret-pw")
    url = f"postgresql://arbot@127.0.0.1:{closed_port()}/arbot"
    storage = make_storage(url, password_env="ARBOT_TEST_DB_PASSWORD")
    with pytest.raises(StorageError) as caught:
        await storage.open()
    assert str(caught.value) == f"cannot open the database {url}: connection refused"
    assert isinstance(caught.value, ArbotError) and not isinstance(caught.value, ConfigError)
    assert "s3cret" not in repr(caught.value.__cause__)


async def test_a_missing_postgresql_database_is_a_clear_error(make_storage: Make,
                                                              postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/arbot_no_such_db"
    with pytest.raises(StorageError) as caught:
        await make_storage(url).open()
    assert str(caught.value) == (
        f'cannot open the database {url}: database "arbot_no_such_db" does not exist'
    )


async def test_a_sqlite_path_under_a_file_is_a_clear_error(make_storage: Make,
                                                           tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    url = f"sqlite:///{tmp_path}/file/arbot.db"
    with pytest.raises(StorageError) as caught:
        await make_storage(url).open()
    assert str(caught.value).startswith(f"cannot open the database {url}: ")
    assert "directory" in str(caught.value)


async def test_an_unset_password_variable_is_a_clear_error(
    make_storage: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARBOT_TEST_DB_PASSWORD", raising=False)
    url = "postgresql://arbot@127.0.0.1:5432/arbot"
    with pytest.raises(StorageError, match=r"ARBOT_TEST_DB_PASSWORD .* is not set"):
        await make_storage(url, password_env="ARBOT_TEST_DB_PASSWORD").open()


# --- going away while running ---------------------------------------------------------------


async def test_the_database_going_away_stalls_nothing_and_the_backlog_drains(
    make_storage: Make, outage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="arbotd_sql")
    storage = make_storage(outage.url)
    await storage.open()
    storage.record_signal(signal(1))
    assert await storage.flush(10)

    outage.cut()
    started = time.perf_counter()
    for signal_id in range(2, 202):
        storage.record_signal(signal(signal_id))
        storage.observe_quote(quote("sim_alpha", "BTCUSDT", 100.0, T0 + signal_id))
    storage.record_trade(completed_lifecycle(1)[-1])
    assert time.perf_counter() - started < 0.5  # queued, never waiting for the database
    with trio.fail_after(10):
        while storage.healthy:
            await trio.sleep(0.01)
    assert storage.last_error
    # The event loop keeps its timing while the writer retries.
    ticks = trio.current_time()
    for _ in range(20):
        await trio.sleep(0.01)
    assert trio.current_time() - ticks < 1.0
    assert storage.backlog() >= 201
    assert not await storage.flush(timeout=0.3)

    outage.restore()
    assert await storage.flush(timeout=20)
    assert storage.healthy and storage.last_error is None
    assert storage.backlog() == 0
    assert await storage.read(lambda: SignalRecord.select().count()) == 201
    assert await storage.read(lambda: TradeRecord.select().count()) == 1
    assert await storage.read(lambda: FillRecord.select().count()) == 4
    assert await storage.read(lambda: Bar.select().count()) == 4  # minutes 0 to 3
    assert len(messages(caplog, "cannot write to")) == 1  # once per episode, not per try
    assert len(messages(caplog, "is back after")) == 1


async def test_close_gives_up_on_a_database_that_stays_away_and_says_what_was_lost(
    make_storage: Make, outage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make_storage(outage.url, shutdown_timeout=0.3)
    await storage.open()
    outage.cut()
    for signal_id in range(1, 6):
        storage.record_signal(signal(signal_id))
    storage.record_trade(completed_lifecycle(1)[-1])
    with trio.fail_after(10):
        await storage.close()
    [lost] = messages(caplog, "giving up at shutdown")
    assert "5 signal records" in lost and "1 trade records" in lost


# --- a backlog that outgrows its bound ----------------------------------------------------------


async def test_a_full_backlog_sheds_bars_and_never_signals_or_trades(
    make_storage: Make, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make_storage(database_url, max_backlog=100, flush_max_rows=50)
    # Not open yet: nothing drains, as when the database is away.
    for signal_id in range(1, 61):
        storage.record_signal(signal(signal_id))
    for minute in range(80):  # 79 finished bars: 40 fit beside the 60 signals
        storage.observe_quote(quote("sim_alpha", "BTCUSDT", 100.0 + minute, T0 + 60 * minute))
    assert storage.dropped_bars == 39
    storage.record_trade(completed_lifecycle(1)[-1])  # takes the place of the oldest bar
    assert storage.dropped_bars == 40
    assert storage.backlog() == 100
    assert len(messages(caplog, "backlog is full")) == 1

    await storage.open()
    assert await trio.to_thread.run_sync(storage.writer.wait_written, 10)
    assert await storage.read(lambda: SignalRecord.select().count()) == 60
    assert await storage.read(lambda: TradeRecord.select().count()) == 1
    assert await storage.read(lambda: Bar.select().count()) == 39
    assert messages(caplog, "dropped 40 price bars")


async def test_signals_and_trades_are_kept_far_beyond_the_bound_with_an_error(
    make_storage: Make, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make_storage(database_url, max_backlog=100)
    for signal_id in range(1, 1102):  # the hard cap is 10 x max_backlog
        storage.record_signal(signal(signal_id))
    assert storage.backlog() == 1101
    assert len(messages(caplog, "kept in memory")) == 1
    await storage.open()
    assert await storage.flush(20)
    assert await storage.read(lambda: SignalRecord.select().count()) == 1101


async def test_a_record_after_close_is_reported(make_storage: Make, database_url: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    storage = make_storage(database_url)
    await storage.open()
    await storage.close()
    storage.record_signal(signal(1))
    assert messages(caplog, "came after close")


# --- a full disk, an I/O error ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("error", [
    None,  # SQLite's own: the transaction ended, its rollback fails after the cause
    sqlite3.OperationalError("database or disk is full"),  # raised outside peewee's wrapper
    sqlite3.OperationalError("disk I/O error"),
    OSError(errno.ENOSPC, "No space left on device"),
], ids=["sqlite-full", "driver-full", "driver-io", "enospc"])
async def test_a_full_disk_keeps_every_record_waiting_and_reports_its_cause(
    make_storage: Make, database_url: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, error: BaseException | None,
) -> None:
    fault = WriteFault()
    fault.error = error
    fault.install(monkeypatch)
    storage = make_storage(database_url, flush_max_rows=20)
    await storage.open()
    fault.on = True
    for signal_id in range(1, 51):
        storage.record_signal(signal(signal_id))
    storage.record_trade(completed_lifecycle(1)[-1])
    with trio.fail_after(10):
        while storage.healthy:
            await trio.sleep(0.01)
    cause = "disk I/O error" if "I/O" in str(error) else (
        "no space left on device" if isinstance(error, OSError) else "database or disk is full")
    assert storage.last_error == cause
    assert storage.status()["last_error"] == cause
    [warning] = messages(caplog, "cannot write to")
    assert cause in warning and "rollback" not in warning

    fault.on = False
    assert await storage.flush(20)
    assert storage.healthy
    assert storage.writer.records_refused == 0
    assert not messages(caplog, "refused")
    assert await storage.read(lambda: SignalRecord.select().count()) == 50
    assert await storage.read(lambda: TradeRecord.select().count()) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_record_refused_while_the_disk_is_full_is_the_only_one_lost(
    make_storage: Make, database_url: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A batch with a record the database refuses (NOT NULL) is written record by
    record; the full disk stops that too, and the writer waits and reports it instead of
    going round between the two."""
    fault = WriteFault()
    fault.install(monkeypatch)
    storage = make_storage(database_url)
    await storage.open()
    fault.on = True
    for signal_id in range(1, 31):
        storage.record_signal(signal(signal_id, symbol=None if signal_id == 2 else "BTCUSDT"))
    with trio.fail_after(10):
        while storage.healthy:
            await trio.sleep(0.01)
    assert storage.last_error == "database or disk is full"

    fault.on = False
    assert await storage.flush(20)
    assert storage.healthy
    assert storage.writer.records_refused == 1
    [lost] = messages(caplog, "which is lost")
    assert "signal record" in lost
    assert await storage.read(lambda: SignalRecord.select().count()) == 29


# --- ping, for /health ------------------------------------------------------------------------


async def test_ping_reads_and_names_the_cause_when_the_database_is_away(
    make_storage: Make, outage: Any, backend: str
) -> None:
    storage = make_storage(outage.url)
    await storage.open()
    await storage.ping()
    if backend == "sqlite":  # readers of a WAL database never wait for a writer's lock
        return
    outage.cut()
    with pytest.raises(StorageError, match=r"cannot read from the database .*: "):
        await storage.ping()
    outage.restore()
    await storage.ping()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_ping_that_hangs_fails_in_time_and_never_starts_a_second_read(
    make_storage: Make, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = make_storage(database_url)
    await storage.open()
    release = threading.Event()
    reads: list[float] = []

    def hanging_read() -> int:
        reads.append(time.monotonic())
        release.wait(30)
        return 1

    monkeypatch.setattr(arbotd_sql.storage, "_schema_version", hanging_read)
    with pytest.raises(StorageError, match=r"has not answered a read for \d+ s"):
        await storage.ping(timeout=0.1)
    with pytest.raises(StorageError, match=r"has not answered a read for \d+ s"):
        await storage.ping(timeout=0.1)
    assert len(reads) == 1  # the second ping waited for the first read's thread
    release.set()
    monkeypatch.undo()
    with trio.fail_after(10):
        await storage.ping(timeout=5)


async def test_the_data_directories_are_the_sqlite_files_and_none_for_postgresql(
    make_storage: Make, tmp_path: Path
) -> None:
    sqlite = make_storage(f"sqlite:///{tmp_path}/db/arbot.db")
    assert sqlite.data_directories() == [tmp_path / "db"]
    default = make_storage("")
    assert default.data_directories() == [tmp_path / "state"]
    assert make_storage("postgresql://arbot@db.example:5432/arbot").data_directories() == []
