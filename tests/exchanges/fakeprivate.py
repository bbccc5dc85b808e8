"""What the fake exchanges' private order streams share: the client connections, the
messages pushed to them in order (answers and events alike, so that a stall holds
everything back as a frozen connection would), and the faults a test sets on them all.

Faults: ``stalled`` (nothing is sent, not even answers to heartbeats; what was held back
goes out once it is lifted), ``drop_connections()``, ``drop_after_fills`` (the
connections are dropped right after that many more fill events went out: a stream lost
while an order is being filled), ``lose_fills`` (that many fill events are never sent, as if
lost on the way), ``inject`` (raw payloads: garbage), ``refuse_logins`` (every login is
answered as a refusal).
"""

from __future__ import annotations

from typing import Any

import trio
from exchanges.fakews import FakeConnection, FakeWebSocketServer

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

    def __init__(self) -> None:
        self.url = ""
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
