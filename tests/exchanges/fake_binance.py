"""A fake Binance spot combined-stream server on 127.0.0.1, for the feed's tests.

It serves ``/stream?streams=<sym>@bookTicker/...`` and streams bookTicker events in the real
wire format (``{"stream": "btcusdt@bookTicker", "data": {"u", "s", "b", "B", "a", "A"}}``),
with prices and sizes taken from real captured traffic (``BINANCE.ws.1.0``) when it is
there. Faults are injected by the test: drop every connection, stall (send nothing),
send raw payloads (garbage, out-of-order events).

It also serves ``<sym>@depth@100ms`` from books of its own (:class:`FakeDepthBook`, one
per symbol, shared by every connection as on Binance): every ``interval`` each book
changes a few levels, each change taking one update id, and a ``depthUpdate`` event
(``U``..``u``, the levels' new quantities) goes to every connection subscribed. The REST
fake answers ``GET /api/v3/depth`` from the same books (:meth:`FakeBinance.depth_snapshot`,
set as its ``depth_source``). Faults: :meth:`FakeBinance.skip_update` (an update id never
sent: a gap), :meth:`FakeBinance.send_crossing` (an event that crosses the book),
``stale_snapshots`` (the next snapshots come from the oldest state kept), ``stalled``.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import trio
from exchanges.fakews import FakeConnection, FakeWebSocketServer
from trio_websocket import WebSocketRequest, serve_websocket

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "recorded"
RECORDED = RECORDINGS / "BINANCE.ws.1.0"
# The REST snapshots (GET /api/v3/depth?limit=1000) taken while BINANCE.ws.1.0 recorded.
RECORDED_SNAPSHOTS = RECORDINGS / "BINANCE.http.0.0"

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


class FakeDepthBook:
    """One symbol's book on the fake exchange: levels on a 0.01 grid around a fixed mid
    (bids below, asks above: it never crosses), changed one level per update id. Keeps
    its past states for stale snapshots and the top levels after each event it sent, by
    event time, for tests to compare a client's book with."""

    LEVELS = 60
    HISTORY = 50

    def __init__(self, symbol: str, first_id: int, seed: int) -> None:
        self.symbol = symbol
        self.rng = random.Random(seed)
        self.mid = 10_000  # in ticks of 0.01
        self.bids: dict[int, str] = {}
        self.asks: dict[int, str] = {}
        for k in range(1, self.LEVELS + 1):
            self.bids[self.mid - k] = self._size()
            self.asks[self.mid + k] = self._size()
        self.update_id = first_id
        self.event_ms = 0
        # (update id, bids, asks) after each event, oldest first.
        self.history: deque[tuple[int, dict[int, str], dict[int, str]]] = deque(
            maxlen=self.HISTORY)
        # event time (ms) -> the top levels (as floats) after that event.
        self.tops: dict[int, tuple[tuple[tuple[float, float], ...], ...]] = {}
        self.skip_next = False
        for _ in range(20):  # a past, so that the oldest state kept is stale
            self.step(int(time.time() * 1000))

    def _size(self) -> str:
        return f"{self.rng.uniform(0.1, 50):.8f}"

    @staticmethod
    def price(ticks: int) -> str:
        return f"{ticks / 100:.8f}"

    def _change(self) -> tuple[str, int, str]:
        """Change one level (new, resized or removed); returns (side, ticks, new size)."""
        side = self.rng.choice("ba")
        offset = self.rng.randint(1, self.LEVELS + 10)
        size = "0.00000000" if self.rng.random() < 0.3 else self._size()
        levels = self.bids if side == "b" else self.asks
        ticks = self.mid - offset if side == "b" else self.mid + offset
        if size == "0.00000000":
            levels.pop(ticks, None)
        else:
            levels[ticks] = size
        self.update_id += 1
        return side, ticks, size

    def step(self, now_ms: int, changes: int | None = None) -> dict:
        """Make the next event (its ``data``), changing 1 to 4 levels; an update skipped
        by :meth:`FakeBinance.skip_update` changes the book but is not in the event."""
        if self.skip_next:
            self.skip_next = False
            self._change()
        first = self.update_id + 1
        changed: dict[str, dict[int, str]] = {"b": {}, "a": {}}
        for _ in range(changes or self.rng.randint(1, 4)):
            side, ticks, size = self._change()
            changed[side][ticks] = size  # one entry per level: its last quantity
        self.event_ms = max(now_ms, self.event_ms + 1)
        self.history.append((self.update_id, dict(self.bids), dict(self.asks)))
        self.tops[self.event_ms] = self.top(20)
        return {
            "e": "depthUpdate", "E": self.event_ms, "s": self.symbol, "U": first,
            "u": self.update_id,
            "b": [[self.price(t), q] for t, q in changed["b"].items()],
            "a": [[self.price(t), q] for t, q in changed["a"].items()],
        }

    def crossing(self, now_ms: int) -> dict:
        """An event with the next update id that puts a bid above the best ask; the
        exchange's own book does not take it (as if the client had missed an update)."""
        self.update_id += 1
        self.event_ms = max(now_ms, self.event_ms + 1)
        best_ask = min(self.asks)
        return {"e": "depthUpdate", "E": self.event_ms, "s": self.symbol,
                "U": self.update_id, "u": self.update_id,
                "b": [[self.price(best_ask + 1), "1.00000000"]], "a": []}

    def top(self, depth: int) -> tuple[tuple[tuple[float, float], ...], ...]:
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return (tuple((t / 100, float(q)) for t, q in bids),
                tuple((t / 100, float(q)) for t, q in asks))

    def snapshot(self, limit: int, *, stale: bool = False) -> dict:
        """``GET /api/v3/depth``'s answer now (or from the oldest state kept)."""
        update_id, bids, asks = (self.history[0] if stale and self.history
                                 else (self.update_id, self.bids, self.asks))
        return {
            "lastUpdateId": update_id,
            "bids": [[self.price(t), q] for t, q in sorted(bids.items(), reverse=True)[:limit]],
            "asks": [[self.price(t), q] for t, q in sorted(asks.items())[:limit]],
        }


def recorded_messages(path: Path = RECORDED) -> list[tuple[float, bytes]]:
    """Every message the exchange sent in a WebSocket recording: (time, payload)."""
    messages = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if "<->" in line or not line.strip():
                continue
            when, _, payload = line.partition(": ")
            messages.append((float(when), payload.strip().encode()))
    return messages


def recorded_snapshots(path: Path = RECORDED_SNAPSHOTS) -> dict[str, tuple[float, dict]]:
    """The depth snapshots of a REST recording by symbol: (time, answer)."""
    snapshots = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            url, _, rest = line.partition(" -> ")
            when, _, body = rest.partition(": ")
            symbol = parse_qs(urlsplit(url).query)["symbol"][0]
            snapshots[symbol] = (float(when), orjson.loads(body))
    return snapshots


class RecordedDepth:
    """A ``depth_source`` for the REST fake that answers the recorded snapshots (the
    best ``limit`` levels of each, as Binance answers a smaller limit)."""

    def __init__(self) -> None:
        self.snapshots = {s: body for s, (_, body) in recorded_snapshots().items()}

    def depth_snapshot(self, symbol: str, limit: int) -> dict | None:
        body = self.snapshots.get(symbol)
        if body is None:
            return None
        return {"lastUpdateId": body["lastUpdateId"], "bids": body["bids"][:limit],
                "asks": body["asks"][:limit]}


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
        # Depth: the books by symbol (Binance form), how many snapshots to answer stale,
        # and the snapshots answered.
        self.books: dict[str, FakeDepthBook] = {}
        self.stale_snapshots = 0
        self.snapshots_served = 0
        self.depth_events_sent = 0

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
                    if stream.endswith("@bookTicker"):
                        symbol = stream.partition("@")[0].upper()
                        await ws.send_message(self.book_ticker(symbol))
            await trio.sleep(self.interval)

    # --- depth -------------------------------------------------------------------------

    def book(self, symbol: str) -> FakeDepthBook:
        """The book of ``symbol`` (Binance form), made on first use."""
        book = self.books.get(symbol)
        if book is None:
            seed = sum(map(ord, symbol))
            book = self.books[symbol] = FakeDepthBook(symbol, 5_000_000 + seed * 1000, seed)
        return book

    def depth_snapshot(self, symbol: str, limit: int) -> dict | None:
        """What ``GET /api/v3/depth`` answers (the REST fake's ``depth_source``)."""
        stale = self.stale_snapshots > 0
        if stale:
            self.stale_snapshots -= 1
        self.snapshots_served += 1
        return self.book(symbol).snapshot(limit, stale=stale)

    def skip_update(self, symbol: str) -> None:
        """The next event of ``symbol`` comes after an update id that is never sent."""
        self.book(symbol).skip_next = True

    def send_crossing(self, symbol: str) -> None:
        """Send, next, an event of ``symbol`` that crosses the book."""
        data = self.book(symbol).crossing(int(time.time() * 1000))
        self._send_depth(symbol, data)

    def _send_depth(self, symbol: str, data: dict) -> None:
        stream = f"{symbol.lower()}@depth@100ms"
        payload = orjson.dumps({"stream": stream, "data": data})
        for connection in self.open_connections:
            if stream in connection.subscribed:
                try:
                    connection.injected_send.send_nowait(payload)
                    self.depth_events_sent += 1
                except trio.WouldBlock:
                    pass  # a client that does not read loses events (it sees a gap)

    async def run_depth(self) -> None:
        """Change every subscribed book and send its event, each ``interval``."""
        while True:
            await trio.sleep(self.interval)
            if self.stalled:
                continue
            subscribed = {stream.partition("@")[0].upper()
                          for connection in self.open_connections
                          for stream in connection.subscribed if "@depth" in stream}
            now_ms = int(time.time() * 1000)
            for symbol in sorted(subscribed):
                self._send_depth(symbol, self.book(symbol).step(now_ms))


@asynccontextmanager
async def open_fake_binance(interval: float = 0.01) -> AsyncIterator[FakeBinance]:
    fake = FakeBinance(interval)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, fake.handle, "127.0.0.1", 0, None)
        fake.url = f"ws://127.0.0.1:{server.port}"
        nursery.start_soon(fake.run_depth)
        yield fake
        nursery.cancel_scope.cancel()
