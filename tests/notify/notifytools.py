"""Shared by the notification tests: a fake webhook receiver that checks signatures, a fake
Telegram Bot API, and a real daemon (every installed plugin, no API) with ``[notify]``
pointing at them.

Not a ``conftest.py``: the suite's modules import the top-level ``conftest`` by name.
"""

from __future__ import annotations

import hashlib
import hmac
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio
from exchanges.fakehttp import Answer, Request, serve
from support import RecordingNotifier

from arbotd._daemon import Daemon
from arbotd_notify.plugin import service_for

WEBHOOK_SECRET = "webhook-secret-0123456789abcdef"
BOT_TOKEN = "123456:bot-token-ABCDEF"
CHAT_ID = "-100200300"


@attrs.define
class Received:
    request: Request
    status: int

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.request.body)


class FakeEndpoint:
    """Answers each request with the next status of ``statuses`` (then 200), or never
    (``stall``); keeps every request it answered, and those it is still holding."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.stall = False
        self.requests: list[Request] = []  # every request, answered or not (by serve)
        self.answered: list[Received] = []
        self._news = trio.Event()

    async def answer(self, request: Request) -> Answer:
        self._news.set()
        self._news = trio.Event()
        if self.stall:
            await trio.sleep_forever()
        status = self.statuses.pop(0) if self.statuses else 200
        self.answered.append(Received(request, status))
        self._news.set()
        self._news = trio.Event()
        return status, *self.body(request, status)

    def body(self, request: Request, status: int) -> tuple[dict[str, str], Any]:
        return {}, {"ok": status < 300}

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.answered if r.status < 300]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        with trio.fail_after(timeout):
            while not condition():
                await self._news.wait()


class FakeWebhook(FakeEndpoint):
    def signature_valid(self, request: Request) -> bool:
        expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), request.body.encode(),
                                        hashlib.sha256).hexdigest()
        return hmac.compare_digest(request.headers.get("x-arbotd-signature", ""), expected)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The accepted notifications (of ``kind``), whose signature checked out."""
        found = []
        for received in self.accepted:
            assert self.signature_valid(received.request), received.request.headers
            body = received.json
            if kind is None or body["event"] == kind:
                found.append(body)
        return found


class FakeTelegram(FakeEndpoint):
    """The Bot API's ``sendMessage``: a wrong token is 401 as Telegram answers it; a
    status of 429 answers with ``parameters.retry_after`` = ``retry_after``."""

    retry_after = 1

    async def answer(self, request: Request) -> Answer:
        if request.path != f"/bot{BOT_TOKEN}/sendMessage":
            self.answered.append(Received(request, 401))
            return 401, {}, {"ok": False, "error_code": 401,
                             "description": "Unauthorized"}
        return await super().answer(request)

    def body(self, request: Request, status: int) -> tuple[dict[str, str], Any]:
        if status == 429:
            return {}, {"ok": False, "error_code": 429,
                        "description": "Too Many Requests: retry after 1",
                        "parameters": {"retry_after": self.retry_after}}
        if status >= 300:
            return {}, {"ok": False, "error_code": status,
                        "description": "Bad Request: chat not found"}
        message = orjson.loads(request.body)
        return {}, {"ok": True, "result": {"message_id": len(self.answered),
                                           "chat": {"id": message["chat_id"]},
                                           "text": message["text"]}}

    def texts(self) -> list[str]:
        return [r.json["text"] for r in self.accepted]


@asynccontextmanager
async def open_endpoint(endpoint: FakeEndpoint) -> AsyncIterator[str]:
    """Serve ``endpoint`` on loopback; yields its base URL."""
    async with trio.open_nursery() as nursery:
        # serve() records every request before it is answered: the stalled ones too.
        url = await nursery.start(partial(serve, endpoint.answer,
                                          requests=endpoint.requests))
        yield url
        nursery.cancel_scope.cancel()


CONFIG = """
[daemon]
autostart = {autostart}
state_dir = "{state_dir}"
shutdown_timeout_seconds = 5.0

[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
cooldown_seconds = 0.2

[risk_management]
max_concurrent_trades = 5

[storage]
flush_interval_seconds = 0.05

[api]
enabled = false

[simulation]
updates_per_second = 10.0
dislocation_per_hour = {dislocations}

[simulation.paper]
fill_delay_seconds = 0.05

[notify]
enabled = true
label = "test-daemon"
check_interval_seconds = 0.05
retry_first_seconds = 0.05
retry_max_seconds = 0.2
{notify}
"""


@attrs.define
class Running:
    daemon: Daemon
    config_path: Path

    @property
    def runtime(self) -> Any:
        return self.daemon.runtime

    @property
    def service(self) -> Any:
        service = service_for(self.runtime)
        assert service is not None
        return service


def daemon_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> Callable[..., AbstractAsyncContextManager[Running]]:
    """``async with run_daemon(notify_toml) as running``: a daemon with every installed
    plugin, the webhook secret and bot token in the environment, ``notify`` (keys and
    tables) added to ``[notify]``, trading on when ``autostart``; ``dislocations`` per
    hour per venue and symbol on the simulated market; ``extra`` TOML at the end;
    ``plugins``: more plugins (name, module) besides the installed ones."""
    monkeypatch.setenv("ARBOT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("ARBOT_TELEGRAM_TOKEN", BOT_TOKEN)

    @asynccontextmanager
    async def start(notify: str, *, autostart: bool = False, dislocations: float = 0.0,
                    extra: str = "", plugins: tuple[tuple[str, Any], ...] = ()
                    ) -> AsyncIterator[Running]:
        path = tmp_path / "arbot.toml"
        text = textwrap.dedent(CONFIG).format(
            autostart=str(autostart).lower(), state_dir=tmp_path / "state",
            dislocations=dislocations, notify=textwrap.dedent(notify))
        path.write_text(text + textwrap.dedent(extra), encoding="utf-8")
        notifier = RecordingNotifier()
        daemon = Daemon(path, plugins=plugins, notifier=notifier)
        runtime = daemon.prepare()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(daemon.serve)
                with trio.fail_after(20):
                    await notifier.wait_for("READY=1")
                    while not all(s.connected for s in runtime.feeds.statuses().values()):
                        await trio.sleep(0.05)
                yield Running(daemon, path)
                runtime.shutdown_requested.set()
        except BaseExceptionGroup as group:
            error: BaseException = group
            while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]
            if error is group:
                raise
            raise error from None

    return start


def webhook_table(url: str) -> str:
    return f'\n[notify.webhook]\nenabled = true\nurl = "{url}/hook"\n'


def telegram_table(url: str) -> str:
    return (f'\n[notify.telegram]\nenabled = true\nchat_id = "{CHAT_ID}"\n'
            f'api_url = "{url}"\n')
