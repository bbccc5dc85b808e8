"""Every request on a connection gets an answer or a closed connection: answers given
before a request's body arrived, bodies that come too slowly, and idle keep-alive
connections when the daemon stops. Spoken over a raw socket, so that a request's headers
and its body can be sent apart and the server's close is seen exactly."""

from __future__ import annotations

import time

import attrs
import orjson
import pytest
import trio
from apitools import API_KEY, READ_KEY, assert_error, server_factory

BOUND = 10  # seconds; generous, for a loaded two-core machine


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


@attrs.frozen
class RawResponse:
    """What :func:`assert_error` reads of an httpx response."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> object:
        return orjson.loads(self.content)


class RawConnection:
    """One HTTP/1.1 connection written by hand."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        return cls(await trio.open_tcp_stream(host, int(port)))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _more(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:  # a reset: the server closed too
            return False
        self.buffer += data
        return bool(data)

    async def response(self) -> RawResponse | None:
        """The next response, or ``None`` when the server closed the connection first."""
        while b"\r\n\r\n" not in self.buffer:
            if not await self._more():
                return None
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not await self._more():
                return None
        content, self.buffer = self.buffer[:length], self.buffer[length:]
        return RawResponse(int(status_line.split()[1]), headers, content)

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection (nothing more arrives before)."""
        return not self.buffer and not await self._more()

    async def aclose(self) -> None:
        await self.stream.aclose()


def request_head(method: str, path: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Content-Type: application/json",
             f"Content-Length: {length}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: test\r\n\r\n"
BODY = b'{"mode": "simulation"}'

# An answer each decided on the headers alone: no credentials, the read scope on a write
# route, and a client whose write requests ran out (one per minute, already used).
EARLY_ANSWERS = {
    "401": ("auth_required = true\n", {}, 401, "UNAUTHORIZED"),
    "403": ("auth_required = true\n", {"X-API-Key": READ_KEY}, 403, "FORBIDDEN"),
    "429": ("write_per_minute = 1\nwrite_burst = 1\n", {}, 429, "RATE_LIMIT_EXCEEDED"),
}


async def use_up_write_requests(api) -> None:
    async with api.client() as client:
        assert (await client.post("/api/v1/trading/stop")).status_code == 200


@pytest.mark.parametrize("case", sorted(EARLY_ANSWERS))
async def test_the_next_request_after_an_early_answer_is_answered(serve_api, case):
    extra, headers, status, code = EARLY_ANSWERS[case]
    async with serve_api(extra) as api:
        if status == 429:
            await use_up_write_requests(api)
        conn = await RawConnection.open(api.url)
        await conn.send(request_head("POST", "/api/v1/trading/start", headers, len(BODY)))
        await trio.sleep(0.3)  # the body comes a little after the headers
        await conn.send(BODY)
        await conn.send(HEALTH)
        with trio.fail_after(BOUND):
            first = await conn.response()
            assert first is not None
            assert_error(first, status, code)
            second = await conn.response()
        # The body arrived in time, so the connection carries on.
        assert second is not None and second.status_code in (200, 503), second
        await conn.aclose()


@pytest.mark.parametrize("body", ["too_large", "never_sent"])
async def test_an_early_answer_closes_a_connection_whose_body_cannot_be_read(serve_api, body):
    async with serve_api("auth_required = true\nbody_timeout_seconds = 0.5\n") as api:
        conn = await RawConnection.open(api.url)
        length = 2 * 1024 * 1024 if body == "too_large" else 100
        await conn.send(request_head("POST", "/api/v1/trading/start", {}, length))
        with trio.fail_after(BOUND):
            answer = await conn.response()
            assert answer is not None
            assert_error(answer, 401, "UNAUTHORIZED")
            assert answer.headers["connection"] == "close"
            assert await conn.closed_by_server()
        await conn.aclose()


async def test_a_body_too_slow_is_408_and_the_connection_closes(serve_api):
    async with serve_api("body_timeout_seconds = 0.5\n") as api:
        conn = await RawConnection.open(api.url)
        await conn.send(request_head("PUT", "/api/v1/trading/config", {"X-API-Key": API_KEY},
                                     50))
        await conn.send(b'{"arbitrage": ')  # and the rest never comes
        with trio.fail_after(BOUND):
            answer = await conn.response()
            assert answer is not None
            error = assert_error(answer, 408, "REQUEST_TIMEOUT")
            assert error["details"]["field"] == "body"
            assert answer.headers["connection"] == "close"
            assert answer.headers["x-ratelimit-type"] == "requests"
            assert await conn.closed_by_server()
        await conn.aclose()


async def test_an_idle_keep_alive_connection_does_not_hold_a_stop(serve_api):
    # In flight, requests get the graceful time (shutdown_timeout - 1 s); idle, none.
    async with serve_api(shutdown_timeout=10.0) as api:
        conn = await RawConnection.open(api.url)
        await conn.send(HEALTH)
        with trio.fail_after(BOUND):
            assert await conn.response() is not None
        began = time.monotonic()
        # Leaving the block stops the daemon the way SIGTERM does, and waits for it.
    assert time.monotonic() - began < 3.0
    with trio.fail_after(BOUND):
        assert await conn.closed_by_server()
    await conn.aclose()
