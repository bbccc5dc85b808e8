"""Shared by the API tests: a real daemon with the installed plugins serving the API on a
free loopback port (the ``serve_api`` fixture), credentials, and assertions.

Not a ``conftest.py``: the suite's modules import the top-level ``conftest`` by name, and a
second one here would shadow it. Test modules import the fixtures from here.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from support import RecordingNotifier

from arbotd._daemon import Daemon
from arbotd_api.plugin import service_for

API_KEY = "trading-key-0123456789"
READ_KEY = "read-only-key-0123456789"
JWT_SECRET = "s" * 40

NUMBER = (int, float)


def is_iso(value: str) -> bool:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") is not None


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "timestamp"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and isinstance(error["details"], dict)
    assert is_iso(error["timestamp"])
    assert "Traceback" not in response.text
    return error


BASE_CONFIG = """
# The test's configuration: comments here must survive PUT /trading/config.
[daemon]
autostart = false
state_dir = "{state_dir}"
shutdown_timeout_seconds = {shutdown_timeout}
{daemon}

[arbitrage]
# Keep this comment.
min_profit_threshold = 0.002
{arbitrage}

[simulation]
updates_per_second = 10.0
{simulation}

[api]
port = {port}
"""


@attrs.define
class Running:
    daemon: Daemon
    url: str
    config_path: Path

    @property
    def runtime(self) -> Any:
        return self.daemon.runtime

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)


def server_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> Callable[..., AbstractAsyncContextManager[Running]]:
    """For a ``serve_api`` fixture: ``async with serve_api(extra_toml) as api`` runs the
    daemon with every installed plugin, ``extra`` appended to ``[api]`` (or more tables
    after it), ``arbitrage`` (keys) added to ``[arbitrage]``, ``daemon`` (keys) to
    ``[daemon]``, ``simulation`` (keys) to ``[simulation]``, with the test credentials in
    the environment; ``shutdown_timeout`` is ``[daemon] shutdown_timeout_seconds``."""
    monkeypatch.setenv("ARBOT_API_KEY", f"{API_KEY},{READ_KEY}:read")
    monkeypatch.setenv("ARBOT_JWT_SECRET", JWT_SECRET)

    @asynccontextmanager
    async def start(extra: str = "", *, arbitrage: str = "", daemon: str = "",
                    simulation: str = "", wait_feeds: bool = True, port: int = 0,
                    shutdown_timeout: float = 5.0) -> AsyncIterator[Running]:
        path = tmp_path / "arbot.toml"
        text = textwrap.dedent(BASE_CONFIG).format(
            state_dir=tmp_path / "state", port=port, shutdown_timeout=shutdown_timeout,
            arbitrage=textwrap.dedent(arbitrage), daemon=textwrap.dedent(daemon),
            simulation=textwrap.dedent(simulation))
        path.write_text(text + textwrap.dedent(extra), encoding="utf-8")
        notifier = RecordingNotifier()
        running = Daemon(path, notifier=notifier)
        runtime = running.prepare()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(running.serve)
                with trio.fail_after(20):
                    await notifier.wait_for("READY=1")
                    while wait_feeds and not all(
                        s.connected for s in runtime.feeds.statuses().values()
                    ):
                        await trio.sleep(0.05)
                service = service_for(runtime)
                assert service is not None
                yield Running(running, service.urls[0], path)
                runtime.shutdown_requested.set()
        except BaseExceptionGroup as group:
            # Show the one error itself, not wrapped by the daemon's nurseries.
            error: BaseException = group
            while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]
            if error is group:
                raise
            raise error from None

    return start
