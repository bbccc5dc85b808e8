"""A daemon killed with SIGKILL at any moment of a live trade never loses track of an
order: every order that reached an exchange is in the database under its client order id,
no client order id reaches an exchange twice, and the restarted daemon reconciles every
trade it finds and numbers new ones after every id it ever used.

The daemon runs as a real subprocess against fake Bybit and OKX servers of this test,
which record every order request that arrives (duplicates included)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from exchanges.fake_bybit import FakeBybit, open_fake_bybit
from exchanges.fake_okx import FakeOkx, open_fake_okx

CONFIG = """
[daemon]
mode = "live"
autostart = true
shutdown_timeout_seconds = 5

[arbitrage]
symbols = ["BTCUSDT"]
min_profit_threshold = 0.001
trade_amount_usd = 1000.0
cooldown_seconds = 0.5

[risk_management]
max_concurrent_trades = 1

[live]
balance_refresh_seconds = 5.0

[exchanges.bybit]
enabled = true
ws_url = "{bybit_ws}"
rest_url = "{bybit_rest}"

[exchanges.okx]
enabled = true
ws_url = "{okx_ws}"
rest_url = "{okx_rest}"

[storage]
url = "sqlite:///{db}"
flush_interval_seconds = 0.05

[simulation]
enabled = false

[api]
enabled = false
"""

FINAL = ("completed", "unwound", "failed", "cancelled")


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYBIT_API_KEY", "test-api-key")
    monkeypatch.setenv("BYBIT_API_SECRET", "test-api-secret")
    monkeypatch.setenv("OKX_API_KEY", "test-okx-key")
    monkeypatch.setenv("OKX_API_SECRET", "test-okx-secret")
    monkeypatch.setenv("OKX_API_PASSPHRASE", "test-okx-passphrase")


def rows(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return []


def no_opportunity(bybit: FakeBybit, okx: FakeOkx) -> None:
    bybit.set_book("BTCUSDT", [("64990.0", "5")], [("65000.0", "5")])
    okx.set_book("BTC-USDT", [("64995.0", "5")], [("65005.0", "5")])


def open_opportunity(okx: FakeOkx) -> None:
    okx.set_book("BTC-USDT", [("65700.0", "5")], [("65710.0", "5")])


class DaemonProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: trio.Process | None = None

    async def start(self) -> None:
        with self.log.open("w") as out:
            self.process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "arbotd", "run", "-c", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ),
                cwd=self.config.parent,
            )

    def text(self) -> str:
        return self.log.read_text()

    async def wait_for(self, condition: Callable[[], bool], what: str,
                       timeout: float = 60) -> None:
        assert self.process is not None
        with trio.move_on_after(timeout):
            while not condition():
                assert self.process.poll() is None, f"the daemon died:\n{self.text()}"
                await trio.sleep(0.005)
            return
        raise AssertionError(f"timed out waiting for {what}:\n{self.text()}")

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            return await self.process.wait()


@pytest.mark.slow
async def test_a_kill_at_any_moment_never_sends_an_order_twice_or_loses_one(
    tmp_path: Path, keys: None
) -> None:
    db = tmp_path / "arbot.db"
    async with open_fake_bybit(interval=0.05) as bybit, open_fake_okx(interval=0.05) as okx:
        no_opportunity(bybit, okx)
        config = tmp_path / "arbot.toml"
        config.write_text(CONFIG.format(bybit_ws=bybit.ws_url, bybit_rest=bybit.rest_url,
                                        okx_ws=okx.ws_url, okx_rest=okx.rest_url, db=db))

        def trade_ids() -> set[int]:
            return {row[0] for row in rows(db, "select id from trades")}

        # Kill as soon as the engine says it executes a signal (before or while the trade
        # is recorded), as soon as the trade is on disk (before or while its orders go
        # out), and once an order reached OKX whose answer never came.
        for round_, moment in enumerate(("signal", "recorded", "order")):
            daemon = DaemonProcess(config, tmp_path / f"daemon-{round_}.log")
            okx.stall_orders, okx.stall_seconds = moment == "order", 120.0
            known, arrived = trade_ids(), len(okx.arrivals)
            await daemon.start()
            await daemon.wait_for(lambda d=daemon: "trading started" in d.text(),
                                  "trading to start")
            open_opportunity(okx)
            if moment == "signal":
                await daemon.wait_for(lambda d=daemon: " executing" in d.text(),
                                      "a signal executed")
            elif moment == "recorded":
                await daemon.wait_for(lambda k=known: bool(trade_ids() - k), "a trade on disk")
            else:
                await daemon.wait_for(lambda a=arrived: len(okx.arrivals) > a,
                                      "an order at OKX")
            await daemon.kill()
            no_opportunity(bybit, okx)
            okx.stall_orders = False

        last = DaemonProcess(config, tmp_path / "daemon-last.log")
        await last.start()
        # Trading starts only once every trade left unfinished is reconciled.
        await last.wait_for(lambda: "trading started" in last.text(), "reconciliation")
        assert await last.stop() == 0

    states = rows(db, "select id, state, reason from trades order by id")
    assert states, "no trade was recorded"
    assert all(state in FINAL for _, state, _ in states), states
    # Every order that reached an exchange is recorded, and none arrived twice.
    arrivals = Counter(bybit.arrivals + okx.arrivals)
    assert arrivals and max(arrivals.values()) == 1, arrivals
    recorded = {row[0] for row in rows(db, "select client_order_id from orders")}
    assert set(arrivals) <= recorded, (arrivals, recorded)
    # The trade cut off with its order at OKX was reconciled from what OKX said.
    reconciled = "when the daemon stopped: reconciling"
    assert any(reconciled in (tmp_path / f"daemon-{n}.log").read_text()
               for n in (1, 2)) or reconciled in last.text()
