"""A daemon killed with SIGKILL in the middle of a trade reconciles it when it restarts:
no record lost, none doubled, numbering continues, trading resumes only afterwards."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

CONFIG = """
[daemon]
mode = "simulation"
autostart = true
state_dir = "{state}"

[api]
port = 0

[storage]
url = "sqlite:///{state}/arbot.db"
flush_interval_seconds = 0.05

[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
cooldown_seconds = 1.0

[simulation]
# Many dislocations, so that trades start within seconds.
dislocation_per_hour = 900.0

[simulation.paper]
# Long enough to kill the daemon while the legs are out.
fill_delay_seconds = 4.0
reject_rate = 0.0
"""

FINAL = ("completed", "unwound", "failed", "cancelled")


class Daemon:
    """``python -m arbotd run`` with a notify socket, its stderr in a file."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.notify_path = workdir / f"notify-{time.monotonic_ns()}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(0.2)
        self.log = workdir / f"daemon-{time.monotonic_ns()}.log"
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path)}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "arbotd", "run", "-c", str(config)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if b"READY=1" in self.notify.recv(4096):
                    return
            except TimeoutError:
                assert self.process.poll() is None, self.log.read_text()
        raise AssertionError(f"no READY=1 within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.notify.close()


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_trade_cut_off_by_sigkill_is_reconciled_on_restart(tmp_path: Path) -> None:
    workdir = tmp_path
    state = workdir / "state"
    config = workdir / "arbot.toml"
    config.write_text(CONFIG.format(state=state))
    db = state / "arbot.db"

    first = Daemon(config, workdir)
    try:
        first.wait_ready()
        wait_for(
            lambda: db.exists() and rows(db, "select count(*) from trades "
                                              "where state = 'submitted'")[0][0] > 0,
            timeout=60, what="a trade with its legs out",
        )
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    finally:
        first.stop()

    cut_off = rows(db, "select id from trades where state not in "
                       "('completed', 'unwound', 'failed', 'cancelled')")
    assert cut_off, "the kill should leave a trade unfinished"
    before = rows(db, "select id, signal_id from trades order by id")
    fills_before = rows(db, "select order_id, seq from fills")
    # Each trade's signal was recorded with the trade, before its orders left.
    assert not rows(db, "select id from trades where signal_id not in "
                        "(select id from signals)")
    last_signal = rows(db, "select max(id) from signals")[0][0]

    second = Daemon(config, workdir)
    try:
        second.wait_ready()  # READY comes only after the reconciliation
        for (trade_id,) in cut_off:
            [(status,)] = rows(db, f"select state from trades where id = {trade_id}")
            assert status in FINAL, (trade_id, status)
        log = second.log.read_text()
        assert "when the daemon stopped: reconciling" in log
        assert "reconciled:" in log
        # Nothing lost, nothing doubled: the old trades are all there once, their fills
        # too, and new trades and signals get new numbers.
        after = rows(db, "select id, signal_id from trades order by id")
        assert after[: len(before)] == before
        assert len({t for t, _ in after}) == len(after)
        fills_after = rows(db, "select order_id, seq from fills")
        assert set(fills_before) <= set(fills_after)
        wait_for(lambda: rows(db, "select max(id) from signals")[0][0] > last_signal,
                 timeout=60, what="a new signal after the restart")
    finally:
        second.stop()
    assert second.process.returncode == 0
