"""The Binance spot market-data feed: ``<symbol>@bookTicker`` over combined streams.

Quirks (exchange-protocols.md section 1.1, from Binance's ``web-socket-streams.md``):

* Spot bookTicker events carry no event time (no ``E``/``T``), so a quote's
  ``exchange_ts`` is its local receive time and the feed reports no latency. Should an
  event carry ``E`` (milliseconds), it is used.
* ``u`` is the book update id; within one connection, an event whose ``u`` is lower than
  the last one seen for its symbol is out of order and dropped.
* The server pings every 20 s and disconnects without a pong within a minute;
  trio-websocket answers pings by itself (``WebSocketConnection._handle_ping_event``).
* Connections last at most 24 h and ``serverShutdown`` asks clients to reconnect: both
  end in a reconnect like any other disconnect.
* At most 1024 streams per connection: symbols are spread over several connections of
  ``max_streams_per_connection`` streams each.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import orjson
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from arbotd import FeedStatus, Quote, QuoteSink
from arbotd_binance.config import BinanceConfig
from arbotd_binance.symbols import (
    book_ticker_stream,
    chunk_streams,
    combined_stream_url,
    to_binance,
)

__all__ = ["Backoff", "BinanceFeed", "parse_book_ticker"]

log = logging.getLogger(__name__)

EXCHANGE = "binance"
_LOG_INTERVAL = 60.0


@attrs.frozen
class Backoff:
    """Reconnect delays: ``first`` doubling to ``maximum``, each drawn from
    [0.5, 1.5) times the nominal delay. A connection that stayed up ``healthy_after``
    seconds is reopened at once, and the next failure starts again from ``first``."""

    first: float = 1.0
    maximum: float = 60.0
    healthy_after: float = 60.0

    def delay(self, failures: int) -> float:
        nominal = min(self.first * 2 ** max(failures - 1, 0), self.maximum)
        return nominal * (0.5 + random.random())


class _BadMessage(Exception):
    pass


def parse_book_ticker(
    raw: str | bytes, symbols: Mapping[str, str], received_ts: float
) -> tuple[int, Quote]:
    """One combined-stream bookTicker message -> ``(update id, Quote)``.

    ``symbols`` maps Binance's symbol (``s``) to the neutral one. Raises ``ValueError``,
    ``KeyError`` or ``TypeError`` for a message that is not one (the caller skips it).
    """
    data = orjson.loads(raw)["data"]
    symbol = symbols[data["s"]]
    event_ms = data.get("E")
    exchange_ts = event_ms / 1000.0 if event_ms is not None else received_ts
    quote = Quote(
        EXCHANGE,
        symbol,
        float(data["b"]),
        float(data["a"]),
        float(data["B"]),
        float(data["A"]),
        exchange_ts,
        received_ts,
    )
    return int(data["u"]), quote


class _RateLimitedLog:
    """Logs a kind of problem at most once per ``_LOG_INTERVAL``, with a count of the
    occurrences since the last line."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: Any) -> None:
        self._count[kind] = self._count.get(kind, 0) + 1
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < _LOG_INTERVAL:
            return
        self._last[kind] = now
        count = self._count.pop(kind)
        log.warning(f"binance: {message} ({count} since the last report)", *args)


class BinanceFeed:
    """Binance spot best bid/ask: an ``arbotd.ExchangeAdapter`` (market data only).

    Two feeds compare equal when their settings are equal.
    """

    name = EXCHANGE

    def __init__(
        self,
        config: BinanceConfig,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.taker_fee = config.taker_fee
        self.premium_baseline = config.premium_baseline
        self.backoff = backoff if backoff is not None else Backoff()
        self.clock = clock
        self.dropped_out_of_order = 0
        self.skipped_messages = 0
        self._connections = 0
        self._up: set[int] = set()
        self._usable = False
        self._last_update: float | None = None
        self._latency_ms: float | None = None
        self._problems = _RateLimitedLog()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BinanceFeed):
            return NotImplemented
        return self.config == other.config

    def __hash__(self) -> int:
        return hash(self.config)

    def __repr__(self) -> str:
        return f"BinanceFeed({self.config.resolved_ws_url()!r})"

    def feed_status(self) -> FeedStatus:
        return FeedStatus(self._usable, self._last_update, self._latency_ms)

    async def stream_quotes(
        self,
        symbols: Sequence[str],
        sink: QuoteSink,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Stream ``symbols`` until cancelled, one connection per
        ``max_streams_per_connection`` symbols, each reconnecting by itself;
        ``task_status.started()`` once every connection is subscribed."""
        by_binance = {to_binance(s): s for s in symbols}
        groups = chunk_streams(
            [book_ticker_stream(s) for s in by_binance], self.config.max_streams_per_connection
        )
        self._connections = len(groups)
        self._up.clear()
        if not groups:
            task_status.started()
            await trio.sleep_forever()
        all_up = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                for index, streams in enumerate(groups):
                    nursery.start_soon(
                        self._keep_connected, index, streams, by_binance, sink, all_up
                    )
                await all_up.wait()
                task_status.started()
        finally:
            self._up.clear()
            self._usable = False

    async def _keep_connected(
        self,
        index: int,
        streams: list[str],
        symbols: Mapping[str, str],
        sink: QuoteSink,
        all_up: trio.Event,
    ) -> None:
        url = combined_stream_url(self.config.resolved_ws_url(), streams)
        failures = 0
        while True:
            connected_at: list[float] = []
            reason = await self._session(index, url, symbols, sink, all_up, connected_at)
            self._mark_down(index, sink, reason)
            healthy = (
                bool(connected_at)
                and trio.current_time() - connected_at[0] >= self.backoff.healthy_after
            )
            # A connection that had been up for a while ended (Binance closes every
            # connection at 24 h): reconnect at once, and back off only if that fails.
            failures = 0 if healthy else failures + 1
            delay = self.backoff.delay(failures) if failures else 0.0
            # A planned reconnect is news; a failing one is a problem the operator must see.
            level = logging.WARNING if failures else logging.INFO
            log.log(level, "binance: connection %d: %s; reconnecting in %.1f s",
                    index, reason, delay)
            await trio.sleep(delay)

    async def _session(
        self,
        index: int,
        url: str,
        symbols: Mapping[str, str],
        sink: QuoteSink,
        all_up: trio.Event,
        connected_at: list[float],
    ) -> str:
        """One connection, until it fails; returns why it ended."""
        stale_after = self.config.stale_after_seconds
        last_u: dict[str, int] = {}
        deliver = sink.on_quote
        clock = self.clock
        try:
            async with open_websocket_url(
                url, connect_timeout=10, disconnect_timeout=2
            ) as ws:
                connected_at.append(trio.current_time())
                self._mark_up(index, sink, all_up)
                with trio.CancelScope() as watchdog:
                    watchdog.deadline = trio.current_time() + stale_after
                    while True:
                        raw = await ws.get_message()
                        watchdog.deadline = trio.current_time() + stale_after
                        received = clock()
                        try:
                            u, quote = parse_book_ticker(raw, symbols, received)
                        except (ValueError, KeyError, TypeError) as err:
                            if _is_server_shutdown(raw):
                                return "server shutdown announced"
                            self.skipped_messages += 1
                            self._problems.warning(
                                "bad", "skipped a message that is not a bookTicker event: "
                                "%s: %.200r", type(err).__name__, raw
                            )
                            continue
                        previous = last_u.get(quote.symbol)
                        if previous is not None and u < previous:
                            self.dropped_out_of_order += 1
                            self._problems.warning(
                                "order", "dropped out-of-order update %d < %d for %s",
                                u, previous, quote.symbol
                            )
                            continue
                        last_u[quote.symbol] = u
                        self._last_update = received
                        if quote.exchange_ts != received:
                            self._latency_ms = (received - quote.exchange_ts) * 1000.0
                        deliver(quote)
                return f"no message for {stale_after:g} s (stale)"
        except HandshakeError as err:
            return f"connection failed: {_cause(err)}"
        except ConnectionClosed as err:
            return f"connection closed: {err.reason}"
        except OSError as err:
            return f"connection error: {_cause(err)}"

    def _mark_up(self, index: int, sink: QuoteSink, all_up: trio.Event) -> None:
        self._up.add(index)
        if len(self._up) == self._connections:
            all_up.set()
            if not self._usable:
                self._usable = True
                sink.on_feed_state(self.name, True)

    def _mark_down(self, index: int, sink: QuoteSink, reason: str) -> None:
        self._up.discard(index)
        if self._usable:
            self._usable = False
            sink.on_feed_state(self.name, False, reason)


def _is_server_shutdown(raw: str | bytes) -> bool:
    try:
        message = orjson.loads(raw)
    except ValueError:
        return False
    if not isinstance(message, dict):
        return False
    data = message.get("data")
    return message.get("stream") == "!serverShutdown" or (
        isinstance(data, dict) and data.get("e") == "serverShutdown"
    )


def _cause(err: BaseException) -> str:
    """The innermost cause of a connection error, which says what went wrong (a name that
    does not resolve, a refused port, a timeout) where the outer error does not."""
    while (inner := err.__cause__ or err.__context__) is not None:
        err = inner
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
