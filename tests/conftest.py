"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import socket
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
from support import RecordingNotifier

from arbotd._daemon import Daemon

TESTS = Path(__file__).parent
EVERYTHING_SOURCE = TESTS / "plugins" / "everything.py"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                       ) -> None:
    """Tests start without systemd's variables or an ``$ARBOTD_CONFIG``, even when the suite
    itself runs under systemd (CI as a service) or in an operator's shell; and a daemon
    whose configuration names no state directory keeps its state (the SQLite database) in
    a temporary one, never in the working tree."""
    for name in (
        "ARBOTD_CONFIG",
        "JOURNAL_STREAM",
        "NOTIFY_SOCKET",
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def isolated_logging() -> Iterator[None]:
    """``arbotd._cli.main`` installs its own root handler; put the old ones back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a configuration file into the test's directory and return its path."""

    def write(text: str, name: str = "arbot.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


# --- the test plugin ------------------------------------------------------------------------


@pytest.fixture
def everything(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh copy of ``tests/plugins/everything.py``, the plugin that implements every
    hook and records each call, so no test sees another's calls."""
    spec = importlib.util.spec_from_file_location("arbotd_test_everything", EVERYTHING_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # attrs and cattrs resolve the plugin's annotations through sys.modules.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def installed_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the test plugin as a real distribution, ``arbotd-test-everything 1.2.3``,
    whose ``arbotd`` entry point is named ``everything``: a directory with the module and
    its ``.dist-info``, put on ``sys.path``. Returns the directory (for ``PYTHONPATH``)."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(EVERYTHING_SOURCE, site / "arbotd_test_everything.py")
    info = site / "arbotd_test_everything-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: arbotd-test-everything\nVersion: 1.2.3\n"
    )
    (info / "entry_points.txt").write_text("[arbotd]\neverything = arbotd_test_everything\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "arbotd_test_everything", raising=False)
    yield site
    sys.modules.pop("arbotd_test_everything", None)


# --- a daemon in this process ---------------------------------------------------------------


@pytest.fixture
def start_daemon() -> Callable[..., AbstractAsyncContextManager[Daemon]]:
    """``async with start_daemon(path, ("name", plugin), ...) as daemon``: the daemon runs
    ``serve()`` in a nursery of the test, without entry-point plugins, and is ready (it
    sent READY=1) inside the block; leaving the block stops it as SIGTERM would."""

    @asynccontextmanager
    async def start(config_path: Path, *plugins: tuple[str, Any]) -> AsyncIterator[Daemon]:
        notifier = RecordingNotifier()
        daemon = Daemon(config_path, plugins=plugins, entry_points=False, notifier=notifier)
        runtime = daemon.prepare()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(daemon.serve)
                with trio.fail_after(20):
                    await notifier.wait_for("READY=1")
                yield daemon
                runtime.shutdown_requested.set()
        except BaseExceptionGroup as group:
            # Show a failed assertion of the test as itself, not wrapped by the nursery.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    return start


# --- systemd's notification socket ----------------------------------------------------------


class NotifySocket:
    """Stands in for systemd: a bound ``AF_UNIX`` datagram socket that collects what the
    daemon sends to ``$NOTIFY_SOCKET``."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.received: list[bytes] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(address)

    def close(self) -> None:
        self._sock.close()

    def receive(self, timeout: float = 20) -> bytes:
        """The next datagram, as sent."""
        self._sock.settimeout(timeout)
        try:
            datagram = self._sock.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"nothing received within {timeout} s; so far: {self.received}"
            ) from None
        self.received.append(datagram)
        return datagram

    def receive_fields(self, timeout: float = 20) -> dict[str, str]:
        """The next datagram as a dict of its ``KEY=value`` lines."""
        return _fields(self.receive(timeout))

    def wait_for(self, field: str, timeout: float = 20) -> dict[str, str]:
        """Read datagrams until one carries ``field`` (``"READY=1"``); return it as a
        dict of its ``KEY=value`` lines."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {field} within {timeout} s; got: {self.received}")
            fields = _fields(self.receive(remaining))
            if field in (f"{key}={value}" for key, value in fields.items()):
                return fields


def _fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().split("\n"))


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    path = tmp_path / "notify.sock"
    short_dir = None
    if len(str(path)) > 100:  # sun_path holds only 108 bytes
        short_dir = Path(tempfile.mkdtemp(prefix="arbotd-"))
        path = short_dir / "notify.sock"
    sock = NotifySocket(str(path))
    yield sock
    sock.close()
    if short_dir is not None:
        shutil.rmtree(short_dir, ignore_errors=True)
