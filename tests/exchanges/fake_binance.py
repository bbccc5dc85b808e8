"""A fake Binance spot combined-stream server on 127.0.0.1, for the feed's tests.

It serves ``/stream?streams=<sym>@bookTicker/...`` and streams bookTicker events in the real
wire format (``{"stream": "btcusdt@bookTicker", "data": {"u", "s", "b", "B", "a", "A"}}``),
with prices and sizes taken from real captured traffic (``BINANCE.ws.1.0``) when it is
there. Faults are injected by the test: drop every connection, stall (send nothing),
send raw payloads (garbage, out-of-order events).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import trio
from exchanges.fakews import FakeConnection, FakeWebSocketServer
from trio_websocket import WebSocketRequest, serve_websocket

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "data" / "recorded" / "BINANCE.ws.1.0"

# The example of Binance's web-socket-streams.md, used when the recording is missing.
_DOC_EXAMPLE = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000",
                "a": "25.36520000", "A": "40.66000000"}


def recorded_book_tickers(path: Path = RECORDED) -> list[dict]:
    """Every bookTicker message (the whole ``{"stream", "data"}`` object) of a recording."""
    messages = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if "@bookTicker" not in line or "<->" in line:
                continue
            _, _, payload = line.partition(": ")
            messages.append(orjson.loads(payload))
    return messages


def _templates() -> list[dict]:
    if RECORDED.exists():
        return [m["data"] for m in recorded_book_tickers()]
    return [_DOC_EXAMPLE]


class FakeBinance(FakeWebSocketServer):
    """The server's state and its fault switches. ``url`` is the base URL to configure."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.url = ""
        self.stalled = False
        self.connections: list[FakeConnection] = []
        self.requested: list[list[str]] = []
        self._templates = _templates()
        self._u = itertools.count(1_000_000)

    def book_ticker(self, symbol: str, u: int | None = None, **fields: str) -> bytes:
        """A bookTicker event for ``symbol`` (Binance form) in the combined-stream wrapper,
        with the next update id unless ``u`` is given."""
        update_id = next(self._u) if u is None else u
        template = self._templates[update_id % len(self._templates)]
        data = {**template, "u": update_id, "s": symbol, **fields}
        return orjson.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": data})

    async def handle(self, request: WebSocketRequest) -> None:
        target = urlsplit(request.path)
        streams_arg = parse_qs(target.query).get("streams", [""])[0]
        streams = [s for s in streams_arg.split("/") if s]
        if target.path != "/stream" or not streams:
            await request.reject(400, body=b'{"code":-1121,"msg":"Invalid request."}')
            return
        self.requested.append(streams)
        await self.run_connection(request, FakeConnection(streams), self._push)

    async def _push(self, ws: Any, connection: FakeConnection) -> None:
        while True:
            await connection.send_injected(ws)
            if not self.stalled:
                for stream in connection.subscribed:
                    symbol = stream.partition("@")[0].upper()
                    await ws.send_message(self.book_ticker(symbol))
            await trio.sleep(self.interval)


@asynccontextmanager
async def open_fake_binance(interval: float = 0.01) -> AsyncIterator[FakeBinance]:
    fake = FakeBinance(interval)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, fake.handle, "127.0.0.1", 0, None)
        fake.url = f"ws://127.0.0.1:{server.port}"
        yield fake
        nursery.cancel_scope.cancel()
