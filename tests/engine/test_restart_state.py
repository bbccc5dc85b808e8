"""Risk state survives a restart: the hourly cap, today's closed trades and realised
loss, the equity peak behind the drawdown limit, and an emergency stop. Each test runs the
whole daemon twice on the same database and reads the figures through the API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import trio

import arbotd_api.plugin
import arbotd_risk.plugin
import arbotd_sim.plugin
import arbotd_sql.plugin
import arbotd_xarb.plugin
from arbotd import Fill, Order, OrderStatus, Side, Trade, TradeState
from arbotd._daemon import Daemon
from arbotd_api.plugin import service_for
from arbotd_risk.manager import RiskManager
from arbotd_sql import SqlStorage, StorageConfig

CONFIG = """
[daemon]
mode = "simulation"
autostart = true
state_dir = "{state}"

[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
cooldown_seconds = 0.5
max_trades_per_hour = {cap}

[storage]
flush_interval_seconds = 0.05

[api]
port = 0

[simulation]
dislocation_per_hour = 3600.0
"""

PLUGINS = (("sim", arbotd_sim.plugin), ("xarb", arbotd_xarb.plugin),
           ("risk", arbotd_risk.plugin), ("sql", arbotd_sql.plugin),
           ("api", arbotd_api.plugin))


def write_config(tmp_path: Path, cap: int = 1000) -> Path:
    path = tmp_path / "arbot.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state", cap=cap))
    return path


@asynccontextmanager
async def api(start_daemon, config: Path) -> AsyncIterator[tuple[Daemon, httpx.AsyncClient]]:
    async with start_daemon(config, *PLUGINS) as daemon:
        service = service_for(daemon.runtime)
        assert service is not None
        async with httpx.AsyncClient(base_url=service.urls[0]) as client:
            yield daemon, client


async def wait_until(condition, what: str, timeout: float = 30) -> None:
    with trio.move_on_after(timeout):
        while not await condition():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"timed out waiting for {what}")


def risk_manager(daemon: Daemon) -> RiskManager:
    assert daemon.runtime is not None and daemon.runtime.control is not None
    [manager] = [c for c in daemon.runtime.control.risk_checks if isinstance(c, RiskManager)]
    return manager


async def test_the_hourly_cap_and_todays_trades_count_across_a_restart(
    start_daemon, tmp_path: Path
) -> None:
    config = write_config(tmp_path, cap=3)

    async def status(client: httpx.AsyncClient) -> dict:
        return (await client.get("/api/v1/status")).json()

    async with api(start_daemon, config) as (daemon, client):
        async def capped() -> bool:
            rejected = daemon.runtime.engine.rejection_counts()
            return rejected.get("max_trades_per_hour", 0) > 0
        await wait_until(capped, "the hourly cap to be reached")
        await trio.sleep(0.5)  # the last trades finish
        before = await status(client)
    assert before["signals_last_hour"] == 3

    async with api(start_daemon, config) as (daemon, client):
        after = await status(client)
        assert after["signals_last_hour"] == 3
        assert after["trades_today"] == before["trades_today"]
        # The cap still holds: books that would pay are turned down, no new signal.
        async def capped_again() -> bool:
            rejected = daemon.runtime.engine.rejection_counts()
            return rejected.get("max_trades_per_hour", 0) > 0
        await wait_until(capped_again, "an opportunity after the restart")
        signals = (await client.get("/api/v1/signals")).json()
        assert signals["total_count"] == 3


async def test_an_emergency_stop_holds_across_a_restart(start_daemon, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with api(start_daemon, config) as (_, client):
        answer = await client.post("/api/v1/risk/emergency-stop")
        assert answer.status_code == 200, answer.text

    async with api(start_daemon, config) as (daemon, client):
        # autostart is on, yet trading stays off until an operator starts it.
        assert (await client.get("/api/v1/status")).json()["status"] == "emergency_stopped"
        assert not daemon.runtime.control.trading
        answer = await client.post("/api/v1/trading/start", json={"mode": "simulation"})
        assert answer.status_code == 200, answer.text
        await trio.sleep(0.3)  # the lifted stop is written

    async with api(start_daemon, config) as (daemon, client):
        assert (await client.get("/api/v1/status")).json()["status"] == "running"


async def test_the_equity_peak_survives_a_restart(start_daemon, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with api(start_daemon, config) as (daemon, client):
        await client.get("/api/v1/risk/limits")  # measures the drawdown, so the peak
        peak = risk_manager(daemon).equity_peak
        assert peak > 0
        await trio.sleep(0.2)

    async with start_daemon(config, *PLUGINS) as daemon:
        # Before anything measured it in this run, the peak is the last run's.
        assert risk_manager(daemon).equity_peak >= peak


async def test_todays_realised_loss_counts_after_a_restart(start_daemon, tmp_path: Path
                                                           ) -> None:
    """A losing trade closed earlier today (before the restart) counts against the daily
    loss limit: /risk/limits shows it, and the limit it uses up blocks trades."""
    config = write_config(tmp_path)
    storage = SqlStorage(StorageConfig(url=f"sqlite:///{tmp_path}/state/arbot.db"),
                         state_dir=tmp_path / "state")
    await storage.open()
    now = time.time()
    qty = Decimal("10")
    trade = Trade(id=1, signal_id=1, mode="simulation", symbol="BTCUSDT",
                  buy_exchange="sim_alpha", sell_exchange="sim_beta", quantity=qty,
                  planned_buy_price=Decimal("65000"), planned_sell_price=Decimal("65200"),
                  planned_profit=Decimal("1"), started_at=now - 10)
    buy = Order("arb1b", 1, "sim_alpha", "BTCUSDT", Side.BUY, Decimal("65000"), qty,
                status=OrderStatus.FILLED, filled_quantity=qty)
    sell = Order("arb1s", 1, "sim_beta", "BTCUSDT", Side.SELL, Decimal("65200"), qty,
                 status=OrderStatus.REJECTED)
    unwind = Order("arb1u0", 1, "sim_alpha", "BTCUSDT", Side.SELL, Decimal("0"), qty,
                   status=OrderStatus.FILLED, filled_quantity=qty, purpose="unwind")
    fills = (Fill("arb1b", 1, "sim_alpha", "BTCUSDT", Side.BUY, Decimal("65000"), qty,
                  Decimal("0"), "USDT", now - 9),
             Fill("arb1u0", 1, "sim_alpha", "BTCUSDT", Side.SELL, Decimal("64880"), qty,
                  Decimal("0"), "USDT", now - 8))
    lost = trade.advance(TradeState.SUBMITTED, orders=(buy, sell, unwind), fills=fills)
    lost = lost.advance(TradeState.UNWINDING).advance(TradeState.UNWOUND,
                                                      completed_at=now - 5)
    assert lost.realized_profit == Decimal("-1200")
    storage.record_trade(lost)
    await storage.close()

    async with api(start_daemon, config) as (daemon, client):
        limits = (await client.get("/api/v1/risk/limits")).json()["limits"]
        assert limits["current_daily_loss"] == 1200.0  # beyond the default limit of 1000
        status = (await client.get("/api/v1/status")).json()
        assert status["trades_today"] == 1

        async def blocked() -> bool:
            rejected = daemon.runtime.engine.rejection_counts()
            return rejected.get("daily_loss_limit", 0) > 0
        await wait_until(blocked, "a signal turned down by the daily loss limit")
        assert not [t for t in daemon.runtime.control.recent_trades.values() if t.id != 1]
