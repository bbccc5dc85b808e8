"""The shared REST client base (:class:`arbotd.exchange.RestClient`) against a tiny fake
exchange on :mod:`fakehttp`: what every exchange's transport failures, pauses and server
errors turn into, the clock offset, and that no secret is ever shown."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import httpx
import pytest
import trio
from exchanges.fakehttp import Answer, Request, serve

from arbotd import ExchangeError, PermanentExchangeError, TemporaryExchangeError
from arbotd.exchange import PauseRule, RequestBudget, RestClient

KEY = "tiny-api-key-0123"
SECRET = "tiny-api-secret-4567"
PAUSES = {429: PauseRule("request rate limit hit", 30.0), 418: PauseRule("banned", 120.0)}


class TinyNotSent(TemporaryExchangeError):
    """The request certainly did not reach the tiny exchange."""


class TinyRest(RestClient):
    """The smallest exchange client: one budget, a signature header, JSON answers with
    ``{"code", "msg"}`` on errors."""

    exchange = "tiny"
    venue = "Tiny"
    not_sent = TinyNotSent

    def __init__(self, base_url: str, secret: str | None = SECRET, **kwargs: Any) -> None:
        super().__init__(base_url, credentials=(KEY, secret), pauses=PAUSES, **kwargs)
        self._secret = secret or ""
        self.budget = RequestBudget("tiny requests", 100, 60.0)
        self.observed: list[int] = []

    async def server_time(self) -> int:
        return int((await self.call("/time", signed=False))["ms"])

    async def call(self, path: str = "/thing", budgets: list[RequestBudget] | None = None,
                   *, signed: bool = True) -> Any:
        where = f"GET {path}"
        response = await self.send("GET", path, budgets=budgets or [self.budget],
                                   sign=self._sign if signed else None, where=where)
        try:
            return response.json()
        except ValueError as err:
            raise self.malformed(where, response) from err

    def _sign(self) -> dict[str, str]:
        digest = hmac.new(self._secret.encode(), str(self.timestamp_ms()).encode(),
                          hashlib.sha256).hexdigest()
        return {"X-KEY": KEY, "X-SIGN": digest}

    def observe(self, path: str, response: httpx.Response) -> None:
        self.observed.append(response.status_code)

    def describe(self, response: httpx.Response) -> str:
        try:
            return f" (code {response.json()['code']})"
        except (ValueError, KeyError, TypeError):
            return ""


@attrs.define
class TinyFake:
    """Answers every request with ``answer`` (``/time`` with a fixed clock) after calling
    ``before_answer``; with ``stall``, never answers at all."""

    url: str = ""
    answer: Answer = (200, {}, {"ok": True})
    stall: bool = False
    before_answer: Callable[[], None] = lambda: None
    requests: list[Request] = attrs.field(factory=list)

    async def respond(self, request: Request) -> Answer:
        if self.stall:
            await trio.sleep_forever()
        self.before_answer()
        if request.path == "/time":
            return 200, {}, {"ms": 1_000_005_000}
        return self.answer


@asynccontextmanager
async def open_tiny() -> AsyncIterator[TinyFake]:
    fake = TinyFake()
    async with trio.open_nursery() as nursery:
        fake.url = await nursery.start(partial(serve, fake.respond, requests=fake.requests))
        yield fake
        nursery.cancel_scope.cancel()


async def test_an_ordinary_answer_comes_back_signed_after_the_budget() -> None:
    async with open_tiny() as fake, TinyRest(fake.url) as rest:
        assert await rest.call() == {"ok": True}
        assert fake.requests[-1].headers["x-key"] == KEY
        assert "x-sign" in fake.requests[-1].headers
        assert rest.budget.used == 1 and rest.observed == [200]


async def test_a_client_error_is_left_to_the_exchange_to_read() -> None:
    async with open_tiny() as fake, TinyRest(fake.url) as rest:
        fake.answer = (400, {}, {"code": -1121, "msg": "Invalid symbol."})
        assert await rest.call() == {"code": -1121, "msg": "Invalid symbol."}


async def test_a_timeout_is_temporary_and_the_outcome_unknown() -> None:
    async with open_tiny() as fake, TinyRest(fake.url, timeout=0.2) as rest:
        fake.stall = True
        with pytest.raises(TemporaryExchangeError, match="GET /thing: timed out, outcome "
                           "unknown") as caught:
            await rest.call()
    # It may have reached the exchange: not the "certainly not sent" error.
    assert not isinstance(caught.value, TinyNotSent)
    assert caught.value.exchange == "tiny"


async def test_a_refused_connection_is_certainly_not_sent() -> None:
    async with open_tiny() as fake:
        url = fake.url
    async with TinyRest(url, timeout=1) as rest:
        with pytest.raises(TinyNotSent, match=r"connection failed \(ConnectError\)"):
            await rest.call()


@pytest.mark.parametrize(("retry_after", "pause"), [("7", 7.0), (None, 30.0)])
async def test_a_429_pauses_the_first_budget(retry_after: str | None, pause: float) -> None:
    async with open_tiny() as fake, TinyRest(fake.url) as rest:
        headers = {"Retry-After": retry_after} if retry_after else {}
        fake.answer = (429, headers, {"code": -1003, "msg": "Too many requests."})
        other = RequestBudget("tiny per endpoint", 10, 1.0)
        with pytest.raises(TinyNotSent) as caught:
            await rest.call(budgets=[rest.budget, other])
        assert caught.value.retry_after == pause
        assert str(caught.value) == (
            f"tiny: GET /thing: HTTP 429, request rate limit hit (code -1003); "
            f"pausing {pause:g} s")
        assert not rest.budget.available() and rest.budget.blocked_for() > pause - 1
        assert other.available()
        assert rest.observed == [429]  # the budgets saw the answer's headers first


async def test_every_pause_rule_applies() -> None:
    async with open_tiny() as fake, TinyRest(fake.url) as rest:
        fake.answer = (418, {"Retry-After": "300"}, b"")
        with pytest.raises(TinyNotSent, match="HTTP 418, banned") as caught:
            await rest.call()
        assert caught.value.retry_after == 300.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_temporary_and_the_outcome_unknown(status: int) -> None:
    async with open_tiny() as fake, TinyRest(fake.url) as rest:
        fake.answer = (status, {}, {"code": -1000, "msg": "An unknown error occurred."})
        with pytest.raises(TemporaryExchangeError) as caught:
            await rest.call()
        assert str(caught.value) == f"tiny: GET /thing: HTTP {status}, outcome unknown " \
                                    "(code -1000)"
        assert caught.value.retry_after is None and rest.budget.available()


async def test_an_answer_that_is_not_json() -> None:
    async with open_tiny() as fake, TinyRest(fake.url) as rest:
        fake.answer = (200, {}, b"<html>maintenance</html>")
        with pytest.raises(TemporaryExchangeError, match="HTTP 200, the answer is not "
                           "Tiny's JSON"):
            await rest.call()
        fake.answer = (404, {}, b"<html>not found</html>")
        with pytest.raises(PermanentExchangeError, match=r"GET /thing: HTTP 404$"):
            await rest.call()


async def test_sync_time_takes_the_midpoint_of_the_round_trip() -> None:
    ticks = iter([1_000_000.0, 1_000_000.2])
    async with open_tiny() as fake, TinyRest(fake.url, clock=lambda: next(ticks)) as rest:
        assert await rest.sync_time() == 1_000_005_000 - 1_000_000_100
        assert rest.offset_ms == 4900


async def test_a_sliding_budget_counts_the_request_from_its_answer() -> None:
    now = [0.0]
    budget = RequestBudget("tiny sliding", 1, 5.0, fraction=1.0, clock=lambda: now[0],
                           sliding=True)
    async with open_tiny() as fake, TinyRest(fake.url) as rest:
        # The exchange receives the request, and may count it, as late as 10.
        fake.before_answer = partial(now.__setitem__, 0, 10.0)
        await rest.send("GET", "/thing", budgets=[budget])
    now[0] = 12.0  # past the window from the acquire (0 + 5), inside the answer's (10 + 5)
    assert not budget.available()
    now[0] = 15.0
    assert budget.available()


async def test_no_secret_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[ExchangeError] = []
    async with open_tiny() as fake, TinyRest(fake.url, timeout=0.2) as rest:
        assert repr(rest) == f"TinyRest(base_url={fake.url!r}, offset_ms=0)"
        for answer in [(429, {"Retry-After": "0"}, {"code": -1003}), (503, {}, b""),
                       (200, {}, b"nope"), (400, {}, b"")]:
            fake.answer = answer  # type: ignore[assignment]
            with pytest.raises(ExchangeError) as caught:
                await rest.call()
            errors.append(caught.value)
        fake.stall = True
        with pytest.raises(ExchangeError) as caught:
            await rest.call()
        errors.append(caught.value)
    for err in errors:
        for e in (err, err.__cause__, err.__context__):
            if e is not None:
                assert SECRET not in str(e) and SECRET not in repr(e)
    for record in caplog.records:
        assert SECRET not in record.getMessage() and KEY not in record.getMessage()


async def test_credentials_decide_has_credentials() -> None:
    async with TinyRest("http://127.0.0.1:1") as rest:
        assert rest.has_credentials
    async with TinyRest("http://127.0.0.1:1", secret=None) as rest:
        assert not rest.has_credentials
