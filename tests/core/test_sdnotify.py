"""The systemd notify protocol, checked on a real ``AF_UNIX`` datagram socket."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from arbotd._sdnotify import Notifier


@pytest.fixture
def notifier(notify_socket, monkeypatch) -> Iterator[Notifier]:
    """A notifier that found ``$NOTIFY_SOCKET`` in its environment, as under systemd."""
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.address)
    sender = Notifier()
    yield sender
    sender.close()


def test_ready(notifier, notify_socket):
    notifier.ready()
    notifier.ready("running, simulation mode")

    assert notify_socket.receive() == b"READY=1"
    assert notify_socket.receive() == b"READY=1\nSTATUS=running, simulation mode"


def test_reloading_carries_the_monotonic_clock_in_microseconds(notifier, notify_socket):
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading("reloading configuration")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    fields = notify_socket.receive_fields()
    assert list(fields) == ["RELOADING", "MONOTONIC_USEC", "STATUS"]
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after
    assert fields["STATUS"] == "reloading configuration"


def test_stopping_status_and_watchdog(notifier, notify_socket):
    notifier.stopping("stopping")
    notifier.status("reload failed: daemon.mode")
    notifier.watchdog()

    assert notify_socket.receive() == b"STOPPING=1\nSTATUS=stopping"
    assert notify_socket.receive() == b"STATUS=reload failed: daemon.mode"
    assert notify_socket.receive() == b"WATCHDOG=1"


def test_abstract_socket_address(monkeypatch):
    # "@name" is a socket in the abstract namespace: no file, the name starts with NUL.
    name = f"arbotd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(20)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notifier = Notifier()

        notifier.ready()

        assert receiver.recv(4096) == b"READY=1"
        notifier.close()


def test_without_notify_socket_nothing_is_sent():
    notifier = Notifier()

    assert not notifier.enabled
    notifier.ready("running")
    notifier.reloading()
    notifier.stopping()
    notifier.watchdog()
    notifier.close()


def test_a_vanished_service_manager_is_logged_not_raised(notify_socket, caplog):
    notifier = Notifier(address=notify_socket.address)
    notify_socket.close()
    os.unlink(notify_socket.address)

    with caplog.at_level(logging.WARNING, logger="arbotd._sdnotify"):
        notifier.ready()

    assert f"could not notify the service manager at {notify_socket.address}" in caplog.text
    notifier.close()


def test_nothing_is_sent_after_close(notify_socket):
    notifier = Notifier(address=notify_socket.address)
    notifier.close()

    notifier.ready()  # does not raise

    assert not notifier.enabled


# --- the watchdog --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("watchdog_usec", "interval"),
    [
        ("200000", 0.2),
        ("30000000", 30.0),
        ("", None),
        ("0", None),
        ("-5", None),
    ],
)
def test_watchdog_interval_from_environment(monkeypatch, watchdog_usec, interval):
    monkeypatch.setenv("WATCHDOG_USEC", watchdog_usec)

    assert Notifier().watchdog_interval == interval


def test_malformed_watchdog_usec_is_ignored_with_a_warning(monkeypatch, caplog):
    monkeypatch.setenv("WATCHDOG_USEC", "ten seconds")

    with caplog.at_level(logging.WARNING, logger="arbotd._sdnotify"):
        assert Notifier().watchdog_interval is None

    assert "ignoring WATCHDOG_USEC='ten seconds'" in caplog.text


def test_watchdog_for_this_process(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    assert Notifier().watchdog_interval == 0.2


def test_watchdog_meant_for_another_process_is_ignored(monkeypatch):
    # systemd sets WATCHDOG_PID when the main process is not the one it started (a
    # wrapper script); a child that inherited the variables must not feed the watchdog.
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getppid()))

    assert Notifier().watchdog_interval is None


def test_explicit_arguments_win_over_environment(notify_socket, monkeypatch, tmp_path):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "elsewhere.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")

    notifier = Notifier(address=notify_socket.address, watchdog_usec="1000000")
    notifier.watchdog()

    assert notifier.watchdog_interval == 1.0
    assert notify_socket.receive() == b"WATCHDOG=1"
    notifier.close()
