"""The daemon's lifecycle, run in this process: the shutdown deadline, and the exit status
when it cannot start or a service fails. (``test_daemon_process.py`` drives the real
process with signals.)"""

from __future__ import annotations

from typing import Any

import pytest
import trio

import arbotd
from arbotd._daemon import run_daemon
from arbotd._sdnotify import Notifier


class Stubborn:
    """A service that ignores ``shutdown_requested``."""

    name = "stubborn"

    def __init__(self) -> None:
        self.cancelled = False

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            self.cancelled = True
            raise


class Broken:
    """A service that fails while starting."""

    name = "broken"

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        raise RuntimeError("cannot bind 127.0.0.1:8080")


class ServicesPlugin:
    def __init__(self, *services: Any) -> None:
        self.services = list(services)

    @arbotd.hookimpl
    def register_services(self) -> list[Any]:
        return self.services


async def test_services_that_do_not_stop_are_cancelled_after_the_timeout(
    autojump_clock, write_config, start_daemon
):
    path = write_config("[daemon]\nautostart = false\nshutdown_timeout_seconds = 7\n")
    stubborn = Stubborn()

    async with start_daemon(path, ("stubborn", ServicesPlugin(stubborn))) as daemon:
        stop_requested_at = trio.current_time()

    assert daemon.runtime.shutdown_requested.is_set()
    assert stubborn.cancelled
    assert trio.current_time() - stop_requested_at == pytest.approx(7)


async def test_the_daemon_says_stopping_before_services_end(write_config, start_daemon):
    path = write_config("[daemon]\nautostart = false\n")

    async with start_daemon(path) as daemon:
        assert daemon.notifier.count("STOPPING=1") == 0

    assert daemon.notifier.sent[-1] == ("STOPPING=1", "STATUS=stopping")


def test_an_invalid_configuration_at_start_exits_1(write_config, notify_socket, caplog):
    path = write_config('[daemon]\nmode = "paper"\n')
    notifier = Notifier(address=notify_socket.address)

    status = run_daemon(path, entry_points=False, notifier=notifier)

    assert status == 1
    problem = f'{path}: daemon.mode: expected one of "simulation", "live", "backtest", got "paper"'
    assert f"cannot start: {problem}" in caplog.text
    assert notify_socket.receive() == f"STATUS=cannot start: {problem}".encode()
    notifier.close()


def test_a_service_that_fails_to_start_exits_1(write_config, notify_socket, caplog):
    path = write_config("[daemon]\nautostart = false\n")
    notifier = Notifier(address=notify_socket.address)

    status = run_daemon(
        path, plugins=[("broken", ServicesPlugin(Broken()))], entry_points=False, notifier=notifier
    )

    assert status == 1
    assert "service broken failed" in caplog.text
    assert "cannot bind 127.0.0.1:8080" in caplog.text
    fields = notify_socket.wait_for("STOPPING=1")
    assert fields["STATUS"].startswith("failed: ")


def test_the_status_after_a_failed_service_names_the_error(write_config, notify_socket):
    path = write_config("[daemon]\nautostart = false\n")
    notifier = Notifier(address=notify_socket.address)

    run_daemon(
        path, plugins=[("broken", ServicesPlugin(Broken()))], entry_points=False, notifier=notifier
    )

    fields = notify_socket.wait_for("STOPPING=1")
    assert "cannot bind 127.0.0.1:8080" in fields["STATUS"]
