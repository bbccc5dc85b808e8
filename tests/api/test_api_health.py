"""``/health`` tells the truth about storage: writes that fail turn the database check to
fail with their cause and back to pass once writes succeed again, with nothing lost, and
the disk check watches the filesystem the database is on."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from apitools import server_factory
from support import WriteFault, resize_filesystem, tiny_filesystem

from arbotd import Signal, Trade

T0 = 1_700_000_000.0  # long before any signal the simulated venues make during a test
COUNT = 120


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


def signal(signal_id: int) -> Signal:
    return Signal(id=signal_id, symbol="BTCUSDT", buy_exchange="sim_alpha",
                  sell_exchange="sim_beta", buy_price=65_000.0, sell_price=65_100.0,
                  buy_size=0.5, sell_size=0.5, quantity=0.01, profit=0.8,
                  profit_percent=0.12, spread_percent=0.15, fees=0.13, confidence=0.9,
                  timestamp=T0 + signal_id)


def trade(trade_id: int) -> Trade:
    return Trade(id=trade_id, signal_id=1, mode="simulation", symbol="BTCUSDT",
                 buy_exchange="sim_alpha", sell_exchange="sim_beta",
                 quantity=Decimal("0.010"), planned_buy_price=Decimal("65000"),
                 planned_sell_price=Decimal("65100"), planned_profit=Decimal("0.8"),
                 started_at=T0)


def sqlite_storage(directory: Path) -> str:
    """The ``[api]`` lines and ``[storage]`` table of a daemon whose database is in
    ``directory``, and whose disk check fails below 0.1 GB."""
    return (f"health_min_free_disk_gb = 0.1\n\n"
            f"[storage]\nurl = \"sqlite:///{directory}/arbot.db\"\n")


async def health_until(client: httpx.AsyncClient, status_code: int) -> dict[str, Any]:
    """The body of the first ``/health`` answer with ``status_code`` (30 s at most)."""
    with trio.fail_after(30):
        while True:
            response = await client.get("/api/v1/health")
            if response.status_code == status_code:
                return response.json()
            await trio.sleep(0.05)


async def stored_signal_ids(client: httpx.AsyncClient) -> set[int]:
    response = await client.get("/api/v1/signals", params={
        "start_time": T0, "end_time": T0 + 10_000_000, "limit": 1000})
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["signals"]}


async def test_failing_writes_fail_the_database_check_with_their_cause_until_they_succeed(
    serve_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = WriteFault()
    fault.install(monkeypatch)
    async with serve_api() as api, api.client() as client:
        storage = api.runtime.storage
        healthy = await health_until(client, 200)
        assert healthy["checks"]["database"]["status"] == "pass"
        assert "message" not in healthy["checks"]["database"]

        fault.on = True
        for signal_id in range(1, COUNT + 1):
            storage.record_signal(signal(signal_id))
        storage.record_trade(trade(900_001))
        failing = await health_until(client, 503)
        database = failing["checks"]["database"]
        assert failing["healthy"] is False and database["status"] == "fail"
        # The cause, not the rollback that failed after it.
        assert "database or disk is full" in database["message"], database
        assert "rollback" not in database["message"]
        assert database["backlog"] >= COUNT + 1
        assert isinstance(database["response_time_ms"], float)

        fault.on = False
        recovered = await health_until(client, 200)
        assert recovered["checks"]["database"]["status"] == "pass"
        assert "message" not in recovered["checks"]["database"]
        assert await storage.flush(20)
        assert await stored_signal_ids(client) == set(range(1, COUNT + 1))
        assert (await client.get("/api/v1/trades/900001")).status_code == 200
        assert fault.failures >= 1


async def test_a_full_filesystem_under_the_database_fails_health_until_space_is_freed(
    serve_api: Any, tmp_path: Path
) -> None:
    with tiny_filesystem(tmp_path / "tiny") as mount:
        async with serve_api(sqlite_storage(mount)) as api, api.client() as client:
            storage = api.runtime.storage
            recorded = 0
            with trio.fail_after(60):
                while storage.status()["healthy"]:  # until a write fails
                    for _ in range(50):
                        recorded += 1
                        storage.record_signal(signal(recorded))
                    await storage.flush(0.5)
            failing = await health_until(client, 503)
            database, disk = failing["checks"]["database"], failing["checks"]["disk"]
            assert database["status"] == "fail"
            assert "database or disk is full" in database["message"], database
            assert disk == {"status": "fail", "free_space_gb": 0.0, "path": str(mount)}

            resize_filesystem(mount, "400m")
            recovered = await health_until(client, 200)
            assert recovered["checks"]["disk"]["path"] == str(mount)
            assert await storage.flush(20)
            assert await stored_signal_ids(client) == set(range(1, recorded + 1))


async def test_the_disk_check_watches_the_database_directory(
    serve_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_dir = (tmp_path / "database").resolve()
    real_disk_usage = shutil.disk_usage
    if real_disk_usage(tmp_path).free < 0.2e9:
        pytest.skip("the test's filesystem has less than 0.2 GB free")

    def disk_usage(path: Any) -> Any:
        usage = real_disk_usage(path)
        # As if the database had a filesystem of its own with 20 MB left.
        return usage._replace(free=20_000_000) if Path(path) == database_dir else usage

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    async with serve_api(sqlite_storage(database_dir)) as api, api.client() as client:
        response = await client.get("/api/v1/health")
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["disk"] == {"status": "fail", "free_space_gb": 0.0,
                                  "path": str(database_dir)}
        assert checks["database"]["status"] == "pass"
