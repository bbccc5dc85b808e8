"""The HTTP/1.1 server under the fake exchanges' REST APIs: trio + h11 on 127.0.0.1.

A fake is a coroutine ``answer(request) -> (status, headers, body)``; :func:`serve` reads
each request into a :class:`Request` (recorded before it is answered, so that a test sees
a request whose answer stalls), encodes the body as JSON (``bytes`` go as they are, for
the malformed answers of fault tests) and closes the connection after every answer. One
request per connection, as the fakes have always answered: a stalled answer never holds
a pooled connection that another request would wait for.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import h11
import orjson
import trio

__all__ = ["Answer", "Handler", "Request", "serve"]


@attrs.define
class Request:
    """One request as the fake received it; header names are lower-case."""

    method: str
    target: str
    path: str
    query: str
    headers: dict[str, str]
    body: str = ""
    arrived: float = 0.0
    # Set by a fake that checks the request's signature.
    signature_valid: bool | None = None

    @property
    def params(self) -> dict[str, str]:
        """The query string's parameters, then a form body's (Binance reads both,
        exchange-protocols.md 1.2)."""
        form = self.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded")
        return dict(parse_qsl(self.query + ("&" + self.body if form and self.body else "")))


# Status, headers, and a JSON-encodable body (or the exact bytes to send).
Answer = tuple[int, Mapping[str, str], Any]
Handler = Callable[[Request], Awaitable[Answer]]


async def serve(
    handler: Handler,
    *,
    requests: list[Request] | None = None,
    content_type: str = "application/json",
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer HTTP requests with ``handler`` on a free port of ``host`` until cancelled;
    ``task_status.started`` gets the base URL. Each request is appended to ``requests``
    when given."""
    connection = partial(_answer_one, handler, requests, content_type)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, connection, 0, host=host))
        task_status.started(f"http://{host}:{listeners[0].socket.getsockname()[1]}")


async def _answer_one(
    handler: Handler,
    requests: list[Request] | None,
    content_type: str,
    stream: trio.SocketStream,
) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        request = await _receive(conn, stream)
        if request is None:
            return
        if requests is not None:
            requests.append(request)
        status, headers, body = await handler(request)
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        sent = {**headers, "Content-Type": content_type, "Content-Length": str(len(payload)),
                "Connection": "close"}
        await stream.send_all(conn.send(h11.Response(
            status_code=status, headers=list(sent.items()))))
        await stream.send_all(conn.send(h11.Data(data=payload)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
        pass  # the client went away or spoke garbage: just close
    finally:
        await stream.aclose()


async def _receive(conn: h11.Connection, stream: trio.SocketStream) -> Request | None:
    """The next request on ``stream``, ``None`` when the client closed first."""
    start: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Request):
            start = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and start is not None:
            break
        elif isinstance(event, h11.ConnectionClosed):
            return None
    target = start.target.decode()
    parts = urlsplit(target)
    return Request(
        method=start.method.decode(), target=target, path=parts.path, query=parts.query,
        headers={k.decode().lower(): v.decode() for k, v in start.headers},
        body=body.decode(), arrived=time.time(),
    )
