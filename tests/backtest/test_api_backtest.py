"""Backtests through the API, over real HTTP: ``POST /api/v1/trading/start`` with mode
``backtest`` replays the quotes the running daemon recorded, in a worker thread, while
its own feeds and trading go on untouched; ``GET /api/v1/backtests/{id}`` gives the
results."""

from __future__ import annotations

import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support import RecordingNotifier

from arbotd._daemon import Daemon
from arbotd_api.plugin import service_for

CONFIG = """
[daemon]
autostart = false
state_dir = "{state_dir}"
shutdown_timeout_seconds = 5.0

[simulation]
# Dislocations every few seconds: trades to find in a short recording.
dislocation_per_hour = 1500.0

[storage]
record_quotes = true
flush_interval_seconds = 0.1

[api]
port = 0
"""


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The API's error object, with ``status`` and ``code``."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "timestamp"}
    assert error["code"] == code
    return error


@asynccontextmanager
async def running_daemon(tmp_path: Path, extra: str = "") -> AsyncIterator[tuple[Any, str]]:
    path = tmp_path / "arbot.toml"
    path.write_text(textwrap.dedent(CONFIG).format(state_dir=tmp_path / "state") + extra)
    notifier = RecordingNotifier()
    daemon = Daemon(path, notifier=notifier)
    runtime = daemon.prepare()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        with trio.fail_after(20):
            await notifier.wait_for("READY=1")
        service = service_for(runtime)
        assert service is not None
        yield runtime, service.urls[0]
        runtime.shutdown_requested.set()


async def test_a_backtest_over_stored_quotes_leaves_the_daemon_alone(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as (runtime, url), \
            httpx.AsyncClient(base_url=url, timeout=10) as client:
        began = time.time()
        await trio.sleep(6.0)  # the simulated venues are recorded meanwhile
        control = runtime.control
        quotes_before = runtime.engine.quotes_processed
        response = await client.post("/api/v1/trading/start", json={
            "mode": "backtest", "start_time": began - 1, "end_time": time.time(),
            "balance": 5000})
        assert response.status_code == 200, response.text
        started = response.json()
        assert set(started) == {"success", "message", "mode", "start_time", "symbols_count",
                                "exchanges_count", "backtest_id"}
        assert started["mode"] == "backtest" and started["exchanges_count"] == 3
        assert started["symbols_count"] == 5
        backtest_id = started["backtest_id"]

        with trio.fail_after(30):
            while True:
                body = (await client.get(f"/api/v1/backtests/{backtest_id}")).json()
                assert body["status"] in ("running", "completed"), body
                if body["status"] == "completed":
                    break
                await trio.sleep(0.1)
        metrics = body["metrics"]
        assert body["progress_percent"] == 100 and body["error"] is None
        assert body["request"]["balance"] == 5000
        assert metrics["quotes"] > 1000 and sorted(metrics["exchanges"]) == [
            "sim_alpha", "sim_beta", "sim_gamma"]
        assert metrics["total_trades"] > 0
        assert metrics["starting_equity"] == pytest.approx(3 * (5000 + 5 * 10_000), rel=1e-6)
        assert body["pagination"]["total_count"] == metrics["total_trades"]
        assert len(body["trades"]) == min(100, metrics["total_trades"])
        assert sum(t["net_profit"] for t in body["trades"]) == pytest.approx(
            metrics["net_profit"]) or metrics["total_trades"] > 100
        page = (await client.get(f"/api/v1/backtests/{backtest_id}",
                                 params={"limit": 1, "offset": 0})).json()
        assert page["trades"] == body["trades"][:1]
        listed = (await client.get("/api/v1/backtests")).json()
        assert listed["total_count"] == 1
        with trio.fail_after(30):  # finished before the daemon stops
            while listed["backtests"][0]["status"] == "running":
                await trio.sleep(0.1)
                listed = (await client.get("/api/v1/backtests")).json()
        assert listed["backtests"][0]["status"] == "completed"
        assert listed["backtests"][0]["backtest_id"] == backtest_id
        assert "trades" not in listed["backtests"][0]

        # The daemon itself: still idle, nothing traded or stored, feeds all running.
        status = (await client.get("/api/v1/status")).json()
        assert status["status"] == "idle" and status["mode"] == "simulation"
        assert all(feed["connected"] for feed in status["exchanges"].values())
        assert control.trading is False and control.mode is None
        assert not control.recent_trades and runtime.ledger.exchanges() == []
        assert runtime.engine.quotes_processed > quotes_before
        trades = (await client.get("/api/v1/trades")).json()
        assert trades["total_count"] == 0


async def test_backtest_requests_that_cannot_run(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as (runtime, url), \
            httpx.AsyncClient(base_url=url, timeout=10) as client:
        start = "/api/v1/trading/start"
        error = assert_error(await client.post(start, json={"mode": "backtest"}),
                             400, "VALIDATION_ERROR")
        assert error["details"]["field"] == "start_time"
        assert_error(await client.post(start, json={"mode": "backtest", "start_time": 10,
                                                    "end_time": 5}), 400, "VALIDATION_ERROR")
        error = assert_error(await client.post(start, json={
            "mode": "backtest", "start_time": 1, "end_time": 2}), 400, "VALIDATION_ERROR")
        assert "no recorded quotes between" in error["message"]
        now = time.time()
        await trio.sleep(0.5)
        assert_error(await client.post(start, json={
            "mode": "backtest", "start_time": now - 60, "end_time": now + 60,
            "symbols": ["NOPE"]}), 400, "INVALID_SYMBOL")
        assert_error(await client.post(start, json={
            "mode": "backtest", "start_time": now - 60, "end_time": now + 60,
            "exchanges": ["binance"]}), 503, "EXCHANGE_NOT_AVAILABLE")
        assert_error(await client.get("/api/v1/backtests/7"), 404, "NOT_FOUND")
        assert_error(await client.get("/api/v1/backtests/x"), 400, "VALIDATION_ERROR")
        assert runtime.control.trading is False


async def test_without_recorded_quotes_or_the_replay_plugin(tmp_path: Path) -> None:
    extra = "\n[plugins]\ndisable = [\"replay\"]\n"
    async with running_daemon(tmp_path, extra) as (_, url), \
            httpx.AsyncClient(base_url=url, timeout=10) as client:
        error = assert_error(await client.post("/api/v1/trading/start", json={
            "mode": "backtest", "start_time": 1, "end_time": 2}), 403, "TRADING_DISABLED")
        assert "replay plugin" in error["message"]
        assert_error(await client.get("/api/v1/backtests"), 403, "TRADING_DISABLED")


async def test_two_backtests_asked_at_once_start_one(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as (_, url), \
            httpx.AsyncClient(base_url=url, timeout=10) as client:
        began = time.time()
        await trio.sleep(1.0)
        answers: list[httpx.Response] = []

        async def start() -> None:
            answers.append(await client.post("/api/v1/trading/start", json={
                "mode": "backtest", "start_time": began - 1, "end_time": time.time()}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(start)
            nursery.start_soon(start)
        assert sorted(a.status_code for a in answers) == [200, 403], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 403)
        assert_error(refused, 403, "TRADING_DISABLED")
        assert "one backtest runs at a time" in refused.json()["error"]["message"]
        listed = (await client.get("/api/v1/backtests")).json()
        assert listed["total_count"] == 1
        with trio.fail_after(30):  # finished before the daemon stops
            while listed["backtests"][0]["status"] == "running":
                await trio.sleep(0.1)
                listed = (await client.get("/api/v1/backtests")).json()
        assert listed["backtests"][0]["status"] == "completed"
