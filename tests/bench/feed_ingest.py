"""Binance feed ingest: quotes per second from a WebSocket into the engine, and the time
from receiving a message to the engine's decision, beside a bare WebSocket client.

Setup (2 cores, so the server has its own process and does not share the GIL):

- **server**: a subprocess that accepts WebSocket connections on loopback and streams
  Binance combined-stream bookTicker messages (``{"stream": "c000usdt@bookTicker",
  "data": {"u", "s", "b", "B", "a", "A"}}``) for 150 symbols, round robin, as fast as the
  socket takes them; prices wander and now and then cross the other venues.
- **bare client**: trio-websocket's ``open_websocket_url`` receiving messages and
  counting them, nothing else. This is the reference the target is defined against:
  a general-purpose client whose reader task hands every message to ``get_message``
  through a memory channel (a task switch per message).
- **bare wsclient**: ``arbotd.exchange.wsclient.open_connection`` receiving and counting,
  nothing else, for comparison: the transport the feeds use. It reads the socket in the
  calling task (64 KiB per read), decodes every frame of the read with wsproto at once
  and serves the following ``get_message`` calls from that batch, with no task switch.
- **feed**: ``BinanceFeed`` on the same stream (over wsclient), parsing every message
  into a Quote and handing it synchronously to a real ``arbotd.Engine`` running the
  ``xarb`` strategy for the 150 symbols on three venues (Binance and two whose books
  are filled beforehand), so every quote is compared against two other venues.

Each round measures the bare trio-websocket client, the bare wsclient, then the feed, for
the same duration (5 s, ``--quick`` 1 s) after a warm-up; medians over the rounds are
printed, with the feed's rate as a fraction of the bare trio-websocket client's (target:
at least 0.85) and the feed's p50/p99 receive-to-decision latency (one message in 16
sampled). The latency starts when the feed takes the message from the client, so it
covers parsing and the engine, not time spent queued before that (in the kernel's socket
buffer, or in a decoded batch waiting its turn).

**Depth**: the same again on Binance's diff-depth stream (``<sym>@depth@100ms``
``depthUpdate`` events changing 1 to 5 levels each, update ids in sequence) with the feed
at ``depth = 20``: it fetches each symbol's snapshot from the server
(``GET /api/v3/depth``, answered from the server's books), keeps the 150 books in step
and delivers quotes of 20 levels a side to the engine. Measured once every book is in
sync; the target is at least 0.6 of the bare trio-websocket client's rate on the same
stream. A gap or a resync during the run fails the benchmark (the stream or the books
would be wrong).

    .venv/bin/python tests/bench/feed_ingest.py            # 3 rounds of 5 s
    .venv/bin/python tests/bench/feed_ingest.py --quick    # 1 round of 1 s
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import logging
import random
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import trio
from _benchtools import median, percentile, print_table
from trio_websocket import open_websocket_url

from arbotd import Bus, Engine, Ledger, Quote
from arbotd.exchange.wsclient import open_connection
from arbotd_binance import BinanceConfig, BinanceFeed
from arbotd_binance.symbols import combined_stream_url, depth_stream
from arbotd_xarb import ArbitrageConfig, CrossExchangeStrategy

SYMBOLS = [f"C{i:03d}USDT" for i in range(150)]
OTHER_VENUES = ("venue_b", "venue_c")
WARM_UP_MESSAGES = 3000
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEMPLATE = ('{"stream":"%s@bookTicker","data":{"u":%d,"s":"%s","b":"%s","B":"%s",'
             '"a":"%s","A":"%s"}}')
_DEPTH_TEMPLATE = ('{"stream":"%s@depth@100ms","data":{"e":"depthUpdate","E":%d,"s":"%s",'
                   '"U":%d,"u":%d,"b":%s,"a":%s}}')
DEPTH = 20
# Levels a side of the server's books, and the events of their cycle.
BOOK_LEVELS = 80
DEPTH_CYCLE = 64


def base_price(index: int) -> float:
    return 10.0 + index * 3.7


# --- the server (child process) ------------------------------------------------------------


def _price_table(rng: random.Random, variants: int = 64) -> list[list[tuple[str, ...]]]:
    """Per symbol, ``variants`` (bid, bid size, ask, ask size) strings: a spread of a few
    basis points around a wandering mid, one in fifty lifted 0.8 % (an opportunity
    against the other venues, whose books sit at the base price)."""
    table = []
    for index in range(len(SYMBOLS)):
        mid = base_price(index)
        rows = []
        for _ in range(variants):
            shifted = mid * (1 + rng.gauss(0, 0.0005) + (0.008 if rng.random() < 0.02 else 0))
            rows.append((f"{shifted * 0.9999:.4f}", f"{rng.uniform(1, 50):.3f}",
                         f"{shifted * 1.0001:.4f}", f"{rng.uniform(1, 50):.3f}"))
        table.append(rows)
    return table


def _frame(payload: bytes) -> bytes:
    """An unmasked server-to-client text frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return b"\x81" + bytes([size]) + payload
    return b"\x81\x7e" + size.to_bytes(2, "big") + payload


class DepthMarket:
    """The server's order books, one per symbol: levels at fixed prices around the
    symbol's base price (bids below, asks above, so a book never crosses) whose sizes
    change in a cycle of events made beforehand (1 to 5 levels each, none twice in one
    event, a size of 0 removing a level); every change takes one update id, as on
    Binance. Shared by every connection, like Binance's books, so that a snapshot always
    fits the stream."""

    def __init__(self, rng: random.Random) -> None:
        self.prices: list[tuple[dict[int, str], dict[int, str]]] = []
        self.sizes: list[tuple[dict[int, str], dict[int, str]]] = []
        self.cycles: list[list[tuple[list[tuple[int, int, str]], str, str]]] = []
        for index in range(len(SYMBOLS)):
            mid = base_price(index)
            offsets = range(1, BOOK_LEVELS + 1)
            self.prices.append(({k: f"{mid * (1 - k * 1e-4):.6f}" for k in offsets},
                                {k: f"{mid * (1 + k * 1e-4):.6f}" for k in offsets}))
            self.sizes.append(({k: f"{rng.uniform(1, 50):.3f}" for k in offsets},
                               {k: f"{rng.uniform(1, 50):.3f}" for k in offsets}))
            cycle = []
            for _ in range(DEPTH_CYCLE):
                levels = rng.sample([(side, k) for side in (0, 1) for k in offsets],
                                    rng.randint(1, 5))
                changes = [(side, k, "0.000" if rng.random() < 0.2
                            else f"{rng.uniform(1, 50):.3f}") for side, k in levels]
                bids, asks = ([[self.prices[index][side][k], size]
                               for s, k, size in changes if s == side] for side in (0, 1))
                cycle.append((changes, orjson_text(bids), orjson_text(asks)))
            self.cycles.append(cycle)
        self.update_ids = [1_000_000 * (i + 1) for i in range(len(SYMBOLS))]
        self.position = 0

    def chunk(self) -> bytes:
        """The next event of every symbol, as WebSocket frames, the books moved on."""
        names = [(s.lower(), s) for s in SYMBOLS]
        now_ms = int(time.time() * 1000)
        step = self.position % DEPTH_CYCLE
        self.position += 1
        frames = []
        for index, (stream, symbol) in enumerate(names):
            changes, bids, asks = self.cycles[index][step]
            sides = self.sizes[index]
            for side, k, size in changes:
                if size == "0.000":
                    sides[side].pop(k, None)
                else:
                    sides[side][k] = size
            first = self.update_ids[index] + 1
            last = self.update_ids[index] = first + len(changes) - 1
            message = _DEPTH_TEMPLATE % (stream, now_ms, symbol, first, last, bids, asks)
            frames.append(_frame(message.encode()))
        return b"".join(frames)

    def snapshot(self, symbol: str, limit: int) -> bytes:
        """``GET /api/v3/depth``: the book with every event made so far."""
        index = SYMBOLS.index(symbol)
        prices, sizes = self.prices[index], self.sizes[index]
        sides = [[[prices[side][k], sizes[side][k]] for k in sorted(sizes[side])][:limit]
                 for side in (0, 1)]
        body = {"lastUpdateId": self.update_ids[index], "bids": sides[0], "asks": sides[1]}
        return orjson_text(body).encode()


def orjson_text(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _answer_snapshot(connection: trio.SocketStream, market: DepthMarket,
                           target: str) -> None:
    query = dict(parse_qsl(urlsplit(target).query))
    body = market.snapshot(query["symbol"], int(query.get("limit", "100")))
    await connection.send_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    await connection.aclose()


async def _stream(connection: trio.SocketStream, table: list[list[tuple[str, ...]]],
                  market: DepthMarket) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        data = await connection.receive_some(4096)
        if not data:
            return
        request += data
    target = request.split(b" ", 2)[1].decode()
    if target.startswith("/api/v3/depth"):
        await _answer_snapshot(connection, market, target)
        return
    key = b""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    await connection.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    async with trio.open_nursery() as nursery:
        if "@depth" in target:
            nursery.start_soon(_send_depth_forever, connection, market)
        else:
            nursery.start_soon(_send_forever, connection, table)
        # The client sends nothing but its close frame: then hang up.
        with contextlib.suppress(trio.BrokenResourceError):
            await connection.receive_some(4096)
        nursery.cancel_scope.cancel()
    await connection.aclose()


async def _send_forever(connection: trio.SocketStream, table: list[list[tuple[str, ...]]]
                        ) -> None:
    names = [(s.lower(), s) for s in SYMBOLS]
    update_id = 1
    variant = 0
    try:
        while True:
            chunk = []
            for (stream, symbol), rows in zip(names, table, strict=True):
                bid, bid_size, ask, ask_size = rows[variant % len(rows)]
                message = _TEMPLATE % (stream, update_id, symbol, bid, bid_size, ask, ask_size)
                chunk.append(_frame(message.encode()))
                update_id += 1
            variant += 1
            await connection.send_all(b"".join(chunk))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def _send_depth_forever(connection: trio.SocketStream, market: DepthMarket) -> None:
    try:
        while True:
            await connection.send_all(market.chunk())
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def serve() -> None:
    """Print the port, serve until stdin closes."""
    table = _price_table(random.Random(7))
    market = DepthMarket(random.Random(11))
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(
            trio.serve_tcp, partial(_stream, table=table, market=market), 0,
            host="127.0.0.1"))
        print(listeners[0].socket.getsockname()[1], flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()


# --- the clients ---------------------------------------------------------------------------


async def bare_client(url: str, duration: float, *, wsclient: bool = False) -> float:
    """Messages per second received by trio-websocket alone (or by arbotd's wsclient)."""
    received = 0

    async def receive(ws: Any) -> None:
        nonlocal received
        while True:
            await ws.get_message()
            received += 1

    opened = open_connection(url) if wsclient else open_websocket_url(url)
    async with opened as ws, trio.open_nursery() as nursery:
        nursery.start_soon(receive, ws)
        while received < WARM_UP_MESSAGES:
            await trio.sleep(0.01)
        start_count, start = received, time.perf_counter()
        await trio.sleep(duration)
        rate = (received - start_count) / (time.perf_counter() - start)
        nursery.cancel_scope.cancel()
    return rate


class TimedSink:
    """The engine as the feed's sink, sampling receive-to-decision time (one quote in 16;
    the feed's clock is ``time.perf_counter``, so ``received_ts`` is comparable)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0
        self.samples: list[float] = []

    def on_quote(self, quote: Quote) -> None:
        self.engine.on_quote(quote)
        self.count += 1
        if not self.count & 15:
            self.samples.append(time.perf_counter() - quote.received_ts)

    def on_feed_state(self, exchange: str, usable: bool, reason: str = "") -> None:
        self.engine.on_feed_state(exchange, usable, reason)

    def forget_symbol(self, exchange: str, symbol: str) -> None:
        self.engine.forget_symbol(exchange, symbol)


def make_engine() -> Engine:
    strategy = CrossExchangeStrategy(ArbitrageConfig(
        symbols=SYMBOLS, cooldown_seconds=5.0, max_trades_per_hour=100000,
        max_spread_age_seconds=3600.0))
    engine = Engine(strategies=[strategy], bus=Bus(), ledger=Ledger(), clock=time.perf_counter)
    engine.set_venues(dict.fromkeys(("binance", *OTHER_VENUES), 0.001), {})
    now = time.perf_counter()
    for venue in OTHER_VENUES:
        engine.on_feed_state(venue, True)
        for index, symbol in enumerate(SYMBOLS):
            mid = base_price(index)
            engine.on_quote(Quote(venue, symbol, mid * 0.9999, mid * 1.0001, 20.0, 20.0,
                                  now, now))
    return engine


async def feed_client(url: str, duration: float, *, depth: int = 1
                      ) -> tuple[float, list[float], int]:
    """Quotes per second through BinanceFeed into the engine, latency samples (s), and
    the signals the engine found. With ``depth`` > 1 the feed keeps books (snapshots from
    the same server) and is measured once every book is in sync."""
    engine = make_engine()
    sink = TimedSink(engine)
    config = BinanceConfig(enabled=True, ws_url=url, rest_url=url.replace("ws:", "http:"),
                           depth=depth, stale_after_seconds=60.0)
    feed = BinanceFeed(config, clock=time.perf_counter)
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, SYMBOLS, sink)
        with trio.fail_after(120):
            while any("binance" not in engine.book.get(s, {}) for s in SYMBOLS):
                await trio.sleep(0.01)
        start_count = sink.count
        while sink.count < start_count + WARM_UP_MESSAGES:
            await trio.sleep(0.01)
        start_count, start = sink.count, time.perf_counter()
        sink.samples.clear()
        signals_before = engine.signals_detected
        await trio.sleep(duration)
        rate = (sink.count - start_count) / (time.perf_counter() - start)
        samples = list(sink.samples)
        nursery.cancel_scope.cancel()
    if feed.skipped_messages or feed.dropped_out_of_order:
        raise SystemExit(f"the feed skipped {feed.skipped_messages} and dropped "
                         f"{feed.dropped_out_of_order} messages: the stream is wrong")
    if feed.book_resyncs or feed.sync_failures:
        raise SystemExit(f"{feed.book_resyncs} books fell out of sync and "
                         f"{feed.sync_failures} syncs failed: the stream or a book is wrong")
    return rate, samples, engine.signals_detected - signals_before


class Runs:
    """The rates and samples of one stream's rounds."""

    def __init__(self) -> None:
        self.bare: list[float] = []
        self.wsclient: list[float] = []
        self.feed: list[float] = []
        self.latencies: list[float] = []
        self.signals = 0

    async def round(self, url: str, stream_url: str, duration: float, depth: int) -> None:
        self.bare.append(await bare_client(stream_url, duration))
        self.wsclient.append(await bare_client(stream_url, duration, wsclient=True))
        rate, samples, found = await feed_client(url, duration, depth=depth)
        self.feed.append(rate)
        self.latencies.extend(samples)
        self.signals += found

    def report(self, feed_name: str, target: float, ratio_name: str) -> None:
        bare, fed, bare_wsclient = median(self.bare), median(self.feed), median(self.wsclient)
        p50 = percentile(self.latencies, 0.5) * 1e6
        p99 = percentile(self.latencies, 0.99) * 1e6
        print_table(
            ["client", "messages/s", "µs/message", "receive->decision p50 µs", "p99 µs"],
            [
                ["bare trio-websocket client", f"{bare:,.0f}", f"{1e6 / bare:.1f}", "-", "-"],
                ["bare wsclient (the feeds' client)", f"{bare_wsclient:,.0f}",
                 f"{1e6 / bare_wsclient:.1f}", "-", "-"],
                [feed_name, f"{fed:,.0f}", f"{1e6 / fed:.1f}", f"{p50:.1f}", f"{p99:.1f}"],
            ],
        )
        print(f"  {ratio_name}: {fed / bare:.2f} (target >= {target:g}); "
              f"of the bare wsclient's: {fed / bare_wsclient:.2f}; "
              f"signals found: {self.signals}")


async def measure(url: str, rounds: int, duration: float) -> None:
    depth_url = combined_stream_url(url, [depth_stream(s) for s in SYMBOLS])
    level_one, books = Runs(), Runs()
    for _ in range(rounds):
        await level_one.round(url, url, duration, 1)
        await books.round(url, depth_url, duration, DEPTH)
    print(f"feed_ingest: {len(SYMBOLS)} symbols x 3 venues (Binance over loopback), "
          f"{rounds} round(s) of {duration:g} s")
    print("== best bid/ask (bookTicker, depth = 1) ==")
    level_one.report("BinanceFeed -> Engine (xarb)", 0.85, "feed/bare rate ratio")
    print(f"== order books (diff depth, depth = {DEPTH}, snapshots over REST) ==")
    books.report(f"BinanceFeed depth {DEPTH} -> Engine (xarb)", 0.6,
                 "depth feed/bare rate ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve)
        return
    logging.basicConfig(level=logging.WARNING)
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (1.0 if args.quick else 5.0)
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        trio.run(measure, f"ws://127.0.0.1:{port}", rounds, duration)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
