"""The Binance spot market-data feed over combined streams: ``<symbol>@bookTicker`` for
the best bid and ask (``depth = 1``), or ``<symbol>@depth@100ms`` kept in step with REST
snapshots for a book of ``depth`` levels (:mod:`arbotd_binance.depth`).

Quirks (exchange-protocols.md section 1.1, from Binance's ``web-socket-streams.md``):

* Spot bookTicker events carry no event time (no ``E``/``T``), so a quote's
  ``exchange_ts`` is its local receive time and the feed reports no latency. Should an
  event carry ``E`` (milliseconds), it is used.
* ``u`` is the book update id; within one connection, an event whose ``u`` is lower than
  the last one seen for its symbol is out of order and dropped.
* The server pings every 20 s and disconnects without a pong within a minute;
  the feed's WebSocket client (:mod:`arbotd.exchange.wsclient`) answers pings as it reads.
* Connections last at most 24 h and ``serverShutdown`` asks clients to reconnect: both
  end in a reconnect like any other disconnect.
* At most 1024 streams per connection: symbols are spread over several connections of
  ``max_streams_per_connection`` streams each.
* Books: each symbol of a connection is synchronised when the connection opens, once its
  first diff-depth event is buffered; a gap or a crossed book makes that symbol's book
  unusable (the engine forgets its quote) and fetches a new snapshot for it alone, the
  connection going on (:class:`arbotd.exchange.BookResync`). Snapshots are fetched a few
  at a time, weighed against the request weight budget the account shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import orjson
import trio

from arbotd import Quote, QuoteSink
from arbotd.exchange import RequestBudget, WebSocketConnection
from arbotd.exchange.feed import Backoff, BookResync, Connection, Resync, VenueFeed
from arbotd_binance.config import BinanceConfig
from arbotd_binance.depth import (
    SymbolBook,
    parse_depth_event,
    parse_depth_snapshot,
    snapshot_limit,
)
from arbotd_binance.rest import BinanceRest
from arbotd_binance.symbols import (
    book_ticker_stream,
    chunk_streams,
    combined_stream_url,
    depth_stream,
    to_binance,
)

__all__ = ["Backoff", "BinanceFeed", "parse_book_ticker"]

EXCHANGE = "binance"
# Snapshot requests in flight at once per feed (on connecting, every symbol wants one).
SNAPSHOTS_AT_ONCE = 4
# How long a symbol's first sync waits for its first diff-depth event before fetching
# its snapshot anyway. Binance asks to buffer the stream before fetching so that the
# stream covers every update after the snapshot; a combined-stream connection is
# subscribed to its streams as soon as it is open, which is before any sync starts, so a
# symbol whose book does not change is not kept without a quote.
FIRST_EVENT_WAIT = 3.0


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


class BinanceFeed(VenueFeed):
    """Binance spot best bid/ask, or order books of ``config.depth`` levels: an
    ``arbotd.ExchangeAdapter`` (market data).

    Two feeds compare equal when their settings are equal. ``budget`` is the request
    weight budget the snapshots are weighed against (the account's, shared by the
    plugin: one IP, one limit); ``transport`` is for tests.
    """

    name = EXCHANGE

    def __init__(
        self,
        config: BinanceConfig,
        *,
        backoff: Backoff | None = None,
        sync_backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        budget: RequestBudget | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(config, backoff=backoff, clock=clock, sync_backoff=sync_backoff)
        self.depth = config.depth
        self.keeps_books = config.depth > 1
        self.snapshot_limit = snapshot_limit(config.depth)
        self.dropped_out_of_order = 0
        # Diff-depth events older than the book (the snapshot had them), and snapshots
        # fetched.
        self.old_updates = 0
        self.snapshots = 0
        self._budget = budget
        self._transport = transport
        self._rest: BinanceRest | None = None
        self._snapshot_slots: trio.CapacityLimiter | None = None


    async def stream_quotes(
        self, symbols: Sequence[str], sink: QuoteSink, *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if not self.keeps_books:
            await super().stream_quotes(symbols, sink, task_status=task_status)
            return
        config = self.config
        # Public requests only: no keys.
        rest = BinanceRest(
            base_url=config.resolved_rest_url(), timeout=config.request_timeout_seconds,
            budget_fraction=config.request_budget_fraction, budget=self._budget,
            transport=self._transport,
        )
        self._rest = rest
        self._snapshot_slots = trio.CapacityLimiter(SNAPSHOTS_AT_ONCE)
        try:
            await super().stream_quotes(symbols, sink, task_status=task_status)
        finally:
            self._rest = None
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                await rest.aclose()

    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """One combined-stream connection per ``max_streams_per_connection`` symbols."""
        stream = depth_stream if self.keeps_books else book_ticker_stream
        by_binance = {to_binance(s): s for s in symbols}
        groups = chunk_streams(
            [stream(s) for s in by_binance], self.config.max_streams_per_connection
        )
        base = self.config.resolved_ws_url()
        plan = []
        for streams in groups:
            wanted = set(streams)
            carried = {b: n for b, n in by_binance.items() if stream(b) in wanted}
            plan.append(Connection(combined_stream_url(base, streams), carried))
        return plan

    def parse(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        if self.keeps_books:
            return self._parse_depth(raw, connection, state, received)
        try:
            u, quote = parse_book_ticker(raw, connection.symbols, received)
        except (ValueError, KeyError, TypeError):
            if _is_server_shutdown(raw):
                raise Resync("server shutdown announced") from None
            raise
        previous = state.get(quote.symbol)
        if previous is not None and u < previous:
            self.dropped_out_of_order += 1
            self.problems.warning(
                "order", "dropped out-of-order update %d < %d for %s", u, previous, quote.symbol
            )
            return None
        state[quote.symbol] = u
        return quote

    def _parse_depth(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        """One diff-depth event: buffered while its symbol's book is out of sync, else
        applied, giving the quote of the book's top levels."""
        try:
            symbol, event = parse_depth_event(raw, connection.symbols)
        except (ValueError, KeyError, TypeError):
            if _is_server_shutdown(raw):
                raise Resync("server shutdown announced") from None
            raise
        entry = state.get(symbol)
        if entry is None:
            entry = state[symbol] = SymbolBook(symbol)
        if entry.buffer is not None:
            entry.hold(event)
            return None
        first, last, bids, asks, event_ts = event
        book = entry.book
        local = book.update_id
        if last <= local:
            # Already in the book: a snapshot newer than the event came first.
            self.old_updates += 1
            return None
        if first > local + 1:
            entry.drop(local, event)
            self.book_resyncs += 1
            raise BookResync(symbol, f"update ids {local + 1} to {first - 1} never came")
        book.apply(bids, asks)
        book.update_id = last
        if book.crossed():
            entry.drop(last)
            self.book_resyncs += 1
            raise BookResync(symbol, f"the book crossed at update {last} (best bid at or "
                                     "above best ask)")
        return book.quote(EXCHANGE, symbol, self.depth, event_ts, received)

    async def sync_book(
        self, symbol: str, connection: Connection, state: dict[str, Any],
        ws: WebSocketConnection,
    ) -> Quote | None:
        """Fetch a snapshot of ``symbol``'s book and put it under the buffered events."""
        entry = state.get(symbol)
        if entry is None:
            entry = state[symbol] = SymbolBook(symbol)
        if entry.floor is None and not entry.buffer:
            # A connection's first sync of the symbol: see FIRST_EVENT_WAIT.
            with trio.move_on_after(FIRST_EVENT_WAIT):
                await entry.arrived.wait()
        assert self._rest is not None and self._snapshot_slots is not None
        async with self._snapshot_slots:
            data = await self._rest.depth(to_binance(symbol), self.snapshot_limit)
        self.snapshots += 1
        return entry.install(parse_depth_snapshot(data), self.depth, self.clock())


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
