"""What the fake exchanges' WebSocket servers share: the record of each client
connection, and the faults that act on every open connection at once (drop them all,
inject a raw payload), so each fake only says what its exchange sends."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest


class FakeConnection:
    """One client connection: what it subscribed to, the payloads injected for it, and
    the cancel scope that drops it."""

    def __init__(self, subscribed: list[str] | None = None) -> None:
        self.subscribed: list[str] = list(subscribed or ())
        self.injected_send, self.injected = trio.open_memory_channel[bytes | str](1000)
        self.scope = trio.CancelScope()
        self.closed = False

    async def send_injected(self, ws: Any) -> None:
        """Send what was injected since the last call, first of all."""
        while True:
            try:
                payload = self.injected.receive_nowait()
            except trio.WouldBlock:
                return
            await ws.send_message(payload)


Worker = Callable[[Any, FakeConnection], Awaitable[None]]


class FakeWebSocketServer:
    """A mixin for a fake exchange with a ``connections`` list of :class:`FakeConnection`."""

    connections: list[FakeConnection]

    @property
    def open_connections(self) -> list[FakeConnection]:
        return [c for c in self.connections if not c.closed]

    def drop_connections(self) -> None:
        """Close every open connection (the client sees it closed)."""
        for connection in self.open_connections:
            connection.scope.cancel()

    def inject(self, payload: bytes | str) -> None:
        """Send ``payload`` as is, next, on every open connection (even while stalled)."""
        for connection in self.open_connections:
            connection.injected_send.send_nowait(payload)

    async def run_connection(self, request: WebSocketRequest, connection: FakeConnection,
                             *workers: Worker) -> None:
        """Accept ``request`` and run ``workers`` (reading, pushing) on it together until
        the client goes, one of them ends, or the test drops the connection."""
        ws = await request.accept()
        self.connections.append(connection)

        async def work(worker: Worker) -> None:
            with contextlib.suppress(ConnectionClosed):  # the client went away
                await worker(ws, connection)
            connection.scope.cancel()

        with connection.scope:
            async with trio.open_nursery() as nursery:
                for worker in workers:
                    nursery.start_soon(work, worker)
        connection.closed = True
        await ws.aclose()
