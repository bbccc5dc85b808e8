"""The audit trail in SqlStorage, on SQLite and PostgreSQL: entries round-trip through the
batched writer, values too long for their columns are cut (PostgreSQL would refuse them
and the entry would be lost), the query pages and filters; and ``arbotd user add`` leaves
its entry."""

from __future__ import annotations

import getpass
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from arbotd import AuditStore, make_plugin_manager
from arbotd._runtime import Runtime, load_with_plugins
from arbotd_sql import SqlStorage
from arbotd_sql.audit import MAX_DETAILS_CHARS

Make = Callable[..., SqlStorage]
T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z


async def test_entries_round_trip_newest_first(make_storage: Make, database_url: str) -> None:
    storage = make_storage(database_url)
    assert isinstance(storage, AuditStore)
    await storage.open()
    storage.record_audit(actor="alice", method="jwt", source="10.0.0.1",
                         action="POST /api/v1/trading/start", outcome="success", status=200,
                         details={"mode": "live", "symbols": ["BTCUSDT"]}, timestamp=T0)
    storage.record_audit(actor="signal", method="signal", action="SIGHUP reload",
                         outcome="refused", timestamp=T0 + 1)
    assert await storage.flush(10)
    answer = await storage.audit_entries()
    assert answer["total_count"] == 2
    assert answer["pagination"] == {"limit": 100, "offset": 0, "has_more": False}
    reload, start = answer["entries"]
    assert {k: v for k, v in start.items() if k != "id"} == {
        "timestamp": T0, "recorded_at": "2024-01-01T00:00:00Z", "actor": "alice",
        "method": "jwt", "source": "10.0.0.1", "action": "POST /api/v1/trading/start",
        "outcome": "success", "status": 200,
        "details": {"mode": "live", "symbols": ["BTCUSDT"]}}
    assert (reload["source"], reload["status"], reload["details"]) == (None, None, {})


async def test_values_too_long_are_cut_not_lost(make_storage: Make, database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    storage.record_audit(actor="a" * 500, method="m" * 100, source="s" * 500,
                         action="x" * 500, outcome="o" * 500, status=400,
                         details={"huge": "d" * (2 * MAX_DETAILS_CHARS)}, timestamp=T0)
    storage.record_audit(actor="bob", method="cli", action="user add", outcome="success",
                         details={"when": object()}, timestamp=T0 + 1)
    assert await storage.flush(10)
    odd, cut = (await storage.audit_entries())["entries"]
    assert cut["actor"].startswith("aaa") and len(cut["actor"]) == 128
    assert len(cut["method"]) == 16 and len(cut["outcome"]) == 64
    assert cut["details"]["truncated"] is True
    assert len(cut["details"]["preview"]) == MAX_DETAILS_CHARS
    assert odd["details"]["when"].startswith("<object")  # written as text
    assert storage.status()["healthy"]


async def test_filters_and_pages(make_storage: Make, database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    for n in range(6):
        storage.record_audit(actor="alice" if n % 2 else "bob", method="api_key",
                             action="POST /api/v1/trading/stop" if n < 3 else "user add",
                             outcome="success" if n % 3 else "FORBIDDEN", timestamp=T0 + n)
    assert await storage.flush(10)

    async def times(**query: Any) -> list[float]:
        return [e["timestamp"] - T0 for e in (await storage.audit_entries(**query))["entries"]]

    assert await times() == [5, 4, 3, 2, 1, 0]
    assert await times(limit=2, offset=1) == [4, 3]
    assert await times(start_time=T0 + 1, end_time=T0 + 3) == [3, 2, 1]
    assert await times(actor="alice") == [5, 3, 1]
    assert await times(action="user add", outcome="FORBIDDEN") == [3]
    page = await storage.audit_entries(limit=2, offset=4)
    assert page["pagination"]["has_more"] is False and page["total_count"] == 6


# --- arbotd user add -------------------------------------------------------------------


def _arbotd(config: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "arbotd", *args, "-c", str(config)],
                          input=stdin, capture_output=True, text=True, timeout=60)


def _stored_entries(config: Path) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        pm = make_plugin_manager()
        cfg = load_with_plugins(config, pm)
        storage = pm.hook.provide_storage(config=cfg, runtime=Runtime(cfg, pm))
        await storage.open()
        try:
            return (await storage.audit_entries())["entries"]
        finally:
            await storage.close()

    return trio.run(read)


def test_user_add_is_audited(tmp_path: Path) -> None:
    config = tmp_path / "arbot.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    password = "correct horse battery"
    assert _arbotd(config, "user", "add", "alice", "--scope", "trading",
                   stdin=password + "\n").returncode == 0
    assert _arbotd(config, "user", "add", "alice", stdin=password + "\n").returncode == 1

    taken, added = _stored_entries(config)
    account = getpass.getuser()
    assert {k: added[k] for k in ("actor", "method", "source", "action", "outcome",
                                  "status", "details")} == {
        "actor": account, "method": "cli", "source": "local", "action": "user add",
        "outcome": "success", "status": None,
        "details": {"username": "alice", "scope": "trading"}}
    assert (taken["actor"], taken["outcome"]) == (account, "failed")
    assert taken["details"]["username"] == "alice"
    assert "already exists" in taken["details"]["error"]
    assert password not in str(taken) + str(added)
