"""``arbotd run`` as a real process, the way systemd runs it: readiness, reload and stop are
checked on the notification socket, signals are real signals, logs are read from stderr.

The configuration holds only the core sections, so every installed plugin runs on the
defaults of its own sections.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CONFIG = """\
[daemon]
shutdown_timeout_seconds = 10

[plugins]

[api]
port = 0
"""

TIMEOUT = 20  # seconds; generous, for a loaded two-core machine


class DaemonProcess:
    """One ``python -m arbotd run`` with ``$NOTIFY_SOCKET`` set; stderr goes to a file
    (read at leisure, so a chatty daemon can never block on a full pipe)."""

    def __init__(self, config: Path, notify_address: str, log: Path, *args: str, **env: str):
        self.log_path = log
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "arbotd", "run", "-c", str(config), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "NOTIFY_SOCKET": notify_address, **env},
            )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_for_log(self, text: str, timeout: float = TIMEOUT) -> None:
        """Poll stderr until ``text`` appears."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline or not self.running:
                raise AssertionError(f"{text!r} not logged; stderr:\n{self.log()}")
            time.sleep(0.05)

    def wait(self, timeout: float = TIMEOUT) -> int:
        """The exit status, once the process ended."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            message = f"still running after {timeout} s; stderr:\n{self.log()}"
            raise AssertionError(message) from None

    def kill(self) -> None:
        if self.running:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start(tmp_path: Path, notify_socket: Any) -> Iterator[Callable[..., DaemonProcess]]:
    """``start(config_text, *cli_args, **env)`` runs a daemon on that configuration."""
    started: list[DaemonProcess] = []

    def start_daemon(text: str, *args: str, **env: str) -> DaemonProcess:
        config = tmp_path / "arbot.toml"
        config.write_text(text)
        log = tmp_path / f"stderr-{len(started)}.log"
        daemon = DaemonProcess(config, notify_socket.address, log, *args, **env)
        started.append(daemon)
        return daemon

    yield start_daemon
    for daemon in started:
        daemon.kill()


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ready_then_a_stop_signal_exits_0(start, notify_socket, signum):
    daemon = start(CONFIG, "--log-level", "info")

    ready = notify_socket.wait_for("READY=1")
    assert ready["STATUS"].startswith("running, simulation mode")

    daemon.send(signum)

    assert notify_socket.wait_for("STOPPING=1")["STATUS"] == "stopping"
    assert daemon.wait() == 0
    log = daemon.log()
    assert f"{signal.Signals(signum).name}: stopping" in log
    assert "arbotd stopped" in log


def test_reload_with_a_broken_file_keeps_running_then_a_fixed_file_applies(
    start, notify_socket, tmp_path
):
    daemon = start(CONFIG, "--log-level", "info")
    config = tmp_path / "arbot.toml"
    notify_socket.wait_for("READY=1")

    # A broken file: the daemon keeps the running configuration and says why.
    config.write_text(CONFIG.replace("10", '"soon"'))
    before = monotonic_usec()
    daemon.send(signal.SIGHUP)

    reloading = notify_socket.wait_for("RELOADING=1")
    assert before <= int(reloading["MONOTONIC_USEC"]) <= monotonic_usec()
    ready = notify_socket.wait_for("READY=1")
    problem = (
        f'{config}: daemon.shutdown_timeout_seconds: expected a number in (0, 600], got "soon"'
    )
    assert ready["STATUS"].endswith(f"reload failed, previous configuration kept: {problem}")
    daemon.wait_for_log(f"reload failed, keeping the running configuration: {problem}")
    assert daemon.running

    # The fixed file is applied, and the log says which sections changed.
    config.write_text(CONFIG.replace("10", "3"))
    daemon.send(signal.SIGHUP)

    notify_socket.wait_for("RELOADING=1")
    ready = notify_socket.wait_for("READY=1")
    assert "reload failed" not in ready["STATUS"]
    daemon.wait_for_log("configuration reloaded; changed sections: daemon\n")

    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_sighup_with_a_file_cut_short_is_refused_and_says_a_restart_applies_it(
    start, notify_socket, tmp_path
):
    text = CONFIG.replace("port = 0\n", "port = 0\nauth_required = true\n")
    daemon = start(text, "--log-level", "info", ARBOT_API_KEY="k" * 20)
    config = tmp_path / "arbot.toml"
    notify_socket.wait_for("READY=1")

    # The [api] table (and its auth_required) lost, as by a write that failed midway.
    config.write_text(text[: text.index("[api]")])
    daemon.send(signal.SIGHUP)

    notify_socket.wait_for("RELOADING=1")
    status = notify_socket.wait_for("READY=1")["STATUS"]
    assert f"reload failed, previous configuration kept: {config}: api: the table is " \
        "missing from the file" in status
    assert "restart" in status
    daemon.wait_for_log("reload refused, keeping the running configuration (a restart "
                        f"applies the file): {config}: api: the table is missing")
    assert daemon.running

    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_watchdog_is_fed_repeatedly(start, notify_socket):
    daemon = start(CONFIG, WATCHDOG_USEC="200000")
    notify_socket.wait_for("READY=1")

    for _ in range(3):
        assert notify_socket.wait_for("WATCHDOG=1") == {"WATCHDOG": "1"}

    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


BROKEN = CONFIG.replace("[daemon]\n", '[daemon]\nmode = "paper"\n')
BROKEN_PROBLEM = 'daemon.mode: expected one of "simulation", "live", "backtest", got "paper"'


def test_a_configuration_error_at_start_exits_1(start, notify_socket, tmp_path):
    daemon = start(BROKEN)

    assert daemon.wait() == 1
    problem = f"{tmp_path / 'arbot.toml'}: {BROKEN_PROBLEM}"
    assert f"cannot start: {problem}" in daemon.log()
    # Never READY: the only word to systemd is why it could not start.
    assert notify_socket.receive() == f"STATUS=cannot start: {problem}".encode()


def test_json_logs_for_machines(start, tmp_path):
    daemon = start(BROKEN, "--log-format", "json")

    assert daemon.wait() == 1
    entries = [json.loads(line) for line in daemon.log().splitlines()]
    assert all(set(entry) == {"time", "level", "logger", "message"} for entry in entries)
    message = f"cannot start: {tmp_path / 'arbot.toml'}: {BROKEN_PROBLEM}"
    [error] = [entry for entry in entries if entry["message"] == message]
    assert (error["level"], error["logger"]) == ("error", "arbotd._daemon")
    assert abs(error["time"] - time.time()) < 600
