"""What the fake exchanges' private order streams share: the client connections, the
messages pushed to them in order (answers and events alike, so that a stall holds
everything back as a frozen connection would), and the faults a test sets on them all.

Faults: ``stalled`` (nothing is sent, not even answers to heartbeats; what was held back
goes out once it is lifted), ``drop_connections()``, ``drop_after_fills`` (the
connections are dropped right after that many more fill events went out: a stream lost
while an order is being filled), ``lose_fills`` (that many fill events are never sent, as if
lost on the way), ``inject`` (raw payloads: garbage), ``refuse_logins`` (every login is
answered as a refusal).

A venue's fake sets :attr:`FakePrivateStream.path`, implements ``read`` (its login,
subscription and heartbeat answers) and publishes its order events; :func:`serving` runs
it on 127.0.0.1 for a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import trio
from exchanges.fakews import FakeConnection, FakeWebSocketServer
from trio_websocket import WebSocketRequest, serve_websocket

# A pushed message's kind: an answer to the client, an order event, a fill event, or a
# raw payload injected by a test.
REPLY, ORDER, FILL, RAW = "reply", "order", "fill", "raw"


class PrivateConnection(FakeConnection):
    """One client connection: logged in or not, subscribed or not, and what is queued
    for it."""

    def __init__(self) -> None:
        super().__init__()
        self.logged_in = False
        self.ready = False  # subscribed to the account's orders
        self.queue_send, self.queue = trio.open_memory_channel[tuple[str, str]](10_000)

    def send(self, payload: str, kind: str = REPLY) -> None:
        self.queue_send.send_nowait((payload, kind))


class FakePrivateStream(FakeWebSocketServer):
    """The base of a fake private stream: a subclass serves the WebSocket (``handle``,
    reading requests and answering with :meth:`PrivateConnection.send`) and turns the
    fake exchange's order changes into events it :meth:`publish` es."""

    #: The stream's path; other paths are refused with 404.
    path = ""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Any] = []  # every request a client sent, decoded
        self.connections: list[FakeConnection] = []
        self.stalled = False
        self.drop_after_fills: int | None = None
        self.lose_fills = 0
        self.refuse_logins = False
        self.logins: list[bool] = []  # each login's outcome, in order
        self.heartbeats = 0
        self.fills_sent = 0
        self.events_published = 0

    @property
    def ready_connections(self) -> list[PrivateConnection]:
        return [c for c in self.open_connections
                if isinstance(c, PrivateConnection) and c.ready]

    def inject(self, payload: bytes | str) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        for connection in self.open_connections:
            assert isinstance(connection, PrivateConnection)
            connection.send(text, RAW)

    def publish(self, payload: str, kind: str = ORDER) -> None:
        """Push an event to every subscribed connection (a lost fill to none)."""
        if kind == FILL and self.lose_fills > 0:
            self.lose_fills -= 1
            return
        self.events_published += 1
        for connection in self.ready_connections:
            connection.send(payload, kind)

    async def handle(self, request: WebSocketRequest) -> None:
        if urlsplit(request.path).path != self.path:
            await request.reject(404)
            return
        await self.serve(request)

    async def serve(self, request: Any) -> None:
        await self.run_connection(request, PrivateConnection(), self.read, self._send_queued)

    async def read(self, ws: Any, connection: PrivateConnection) -> None:
        raise NotImplementedError

    async def _send_queued(self, ws: Any, connection: FakeConnection) -> None:
        assert isinstance(connection, PrivateConnection)
        async for payload, kind in connection.queue:
            while self.stalled:
                await trio.sleep(0.01)
            await ws.send_message(payload)
            if kind == FILL:
                self.fills_sent += 1
                if self.drop_after_fills is not None:
                    self.drop_after_fills -= 1
                    if self.drop_after_fills <= 0:
                        self.drop_after_fills = None
                        self.drop_connections()
                        return


PrivateT = TypeVar("PrivateT", bound=FakePrivateStream)


@asynccontextmanager
async def serving(fake: PrivateT) -> AsyncIterator[PrivateT]:
    """``fake`` served on 127.0.0.1; its ``url`` is the stream's URL to configure."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, fake.handle, "127.0.0.1", 0, None)
        fake.url = f"ws://127.0.0.1:{server.port}{fake.path}"
        yield fake
        nursery.cancel_scope.cancel()
