"""A reconnecting WebSocket market-data feed, shared by the exchange plugins.

An exchange plugin subclasses :class:`WebSocketFeed` and says only what differs between
exchanges: which connections to open for a set of symbols (:meth:`connections`: URLs and
subscription messages, within the exchange's per-connection limits), what heartbeat to
send (:attr:`heartbeat_interval`, :meth:`heartbeat`), and how to turn one message into a
:class:`~arbotd.Quote` (:meth:`parse`). The base class does the rest the same way for
every exchange:

* each connection runs on its own, reconnecting with jittered exponential backoff; a
  connection that stayed up for ``backoff.healthy_after`` seconds is reopened at once,
  so a planned disconnect (Binance's 24 h) costs only the reconnect;
* a connection that brings no message for ``stale_after`` seconds is closed and opened
  again; while any connection is down the venue is unusable (``sink.on_feed_state``), so
  no trade uses its quotes; once every connection is up again the sink is told it is
  connected, and the feed reports itself connected (:meth:`WebSocketFeed.feed_status`)
  only once a quote has arrived since: a socket that reconnects but brings no data is
  not a usable feed;
* messages are read in the connection's own task (:mod:`arbotd.exchange.wsclient`: one
  socket read decodes many messages) and are parsed and handed to the engine
  synchronously, with no channel hop;
* garbage is skipped and counted, and :class:`Resync` (a sequence gap, a server's
  "reconnect now" notice) closes the connection and starts a fresh one;
* problems are logged at most once a minute per kind, with a count.

A feed that keeps order books gets one more service, per symbol rather than per
connection: one resync state machine per connection (:class:`_BookSyncs`). When
:meth:`~WebSocketFeed.parse` finds one symbol's book out of sync (a gap in its update
ids, a checksum that fails, a crossed book) it marks the book invalid and raises
:class:`BookResync` for it; the sink is told to forget the symbol's quote
(``sink.forget_symbol``), so nothing trades on it until its book is in sync again, and
the connection and its other symbols carry on. How the book comes back is the venue's
step:

* a REST snapshot (:class:`BookResync`, :meth:`~WebSocketFeed.sync_book`; Binance): run
  in a task of its own beside the reading loop, the parser buffering that symbol's
  updates meanwhile; also for every symbol when a connection opens
  (:attr:`WebSocketFeed.keeps_books`). A symbol that falls out of sync again soon after
  a sync waits ``sync_backoff`` before its next one, and a sync that fails is retried
  after the same backoff, so a flapping symbol cannot hammer the exchange's REST API
  (and each snapshot is weighed in the venue's request budget by its REST client);
* a resubscription (:class:`ResyncSymbol`, raised through
  :class:`~arbotd.exchange.Resubscriptions`; OKX, Bybit): an unsubscribe and a subscribe
  sent on the connection, the fresh snapshot due within a deadline and resubscriptions
  limited per hour, past which the connection starts afresh.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from arbotd._errors import ExchangeError
from arbotd._interfaces import FeedStatus, QuoteSink
from arbotd._model import Quote
from arbotd.exchange.settings import VenueConfig
from arbotd.exchange.wsclient import (
    ConnectionClosed,
    HandshakeFailed,
    WebSocketConnection,
    error_cause,
    open_connection,
)

__all__ = [
    "Backoff",
    "BookResync",
    "Connection",
    "ProblemLog",
    "Resync",
    "ResyncSymbol",
    "VenueFeed",
    "WebSocketFeed",
    "error_cause",
]

log = logging.getLogger(__name__)

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


@attrs.frozen
class Connection:
    """One WebSocket connection of a feed: where to connect, the text messages to send
    once connected (subscriptions), and the symbols it carries (exchange form ->
    exchange-neutral form)."""

    url: str
    symbols: Mapping[str, str]
    subscribe: tuple[str, ...] = ()


class Resync(Exception):
    """Raised by :meth:`WebSocketFeed.parse` when the connection must start afresh: a
    sequence gap, a book reset, a server announcing it will close. The message says why
    and is logged."""


class BookResync(Exception):
    """Raised by :meth:`WebSocketFeed.parse` when one symbol's order book can no longer be
    trusted (a gap in its update ids, a checksum that fails, a crossed book), after the
    parser has marked it so (it delivers no quote of the symbol until the book is in
    sync again) and counted it (``book_resyncs``). The connection and its other symbols
    go on; the feed tells the sink to forget the symbol's quote and brings the book back
    (see :class:`_BookSyncs`) with the feed's :meth:`WebSocketFeed.sync_book` (a REST
    snapshot). The message says why and is logged."""

    def __init__(self, symbol: str, reason: str) -> None:
        super().__init__(reason)
        self.symbol = symbol
        self.reason = reason


class ResyncSymbol(BookResync, Resync):
    """A :class:`BookResync` whose way back is a resubscription: ``messages`` (an
    unsubscribe and a subscribe, which bring a fresh snapshot) are sent on the same
    connection. The parser raises it through :class:`~arbotd.exchange.Resubscriptions`,
    which keeps the fresh snapshot's deadline and the connection's hourly budget. (It is
    a :class:`Resync` too: code that knows only that reconnects.)"""

    def __init__(self, symbol: str, reason: str, messages: Sequence[str] = ()) -> None:
        super().__init__(symbol, reason)
        self.args = (f"{symbol}: {reason}",)
        self.messages = tuple(messages)


# What a failed book sync may raise: it is logged and retried after a backoff.
_SYNC_ERRORS = (ExchangeError, OSError, ValueError, KeyError, TypeError, IndexError)


class ProblemLog:
    """Logs a kind of problem at most once per minute, with a count of the occurrences
    since the last line, so that a flood of bad messages cannot flood the journal."""

    def __init__(self, prefix: str, logger: logging.Logger = log) -> None:
        self.prefix = prefix
        self.logger = logger
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
        self.logger.warning(
            f"{self.prefix}: {message} ({count} since the last report)", *args
        )


class WebSocketFeed:
    """Base of an exchange's best bid/ask feed: an :class:`arbotd.ExchangeAdapter`.

    Subclasses set ``name`` and implement :meth:`connections` and :meth:`parse` (and, if
    the exchange wants one, :meth:`heartbeat`). ``settings`` is the plugin's config
    section: two feeds compare equal when their classes and settings are equal, so a
    reload with unchanged settings keeps the feed running.
    """

    name: str = ""
    #: Seconds between heartbeats sent by the client (``None``: the server pings, and
    #: the WebSocket client answers its pings by itself).
    heartbeat_interval: float | None = None
    #: Seconds between opening one connection and the next, for exchanges that limit how
    #: many connections an IP may open per second (OKX: 3/s). Connection ``i`` waits
    #: ``i * connect_interval`` before each (re)connect that is not already backing off.
    connect_interval: float = 0.0
    #: Whether the feed keeps order books that need a sync per symbol when a connection
    #: opens (:meth:`sync_book`); a subclass may set it per instance, from its settings.
    keeps_books: bool = False

    def __init__(
        self,
        settings: Any,
        *,
        taker_fee: float,
        premium_baseline: float = 0.0,
        stale_after: float = 10.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        connect_timeout: float = 10.0,
        sync_backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.taker_fee = taker_fee
        self.premium_baseline = premium_baseline
        self.stale_after = stale_after
        self.backoff = backoff if backoff is not None else Backoff()
        self.clock = clock
        self.connect_timeout = connect_timeout
        self.skipped_messages = 0
        self.resyncs = 0
        self.reconnects = 0  # connections that ended and were opened again (/metrics)
        # Delays between book syncs of one symbol: a symbol synced again within
        # ``healthy_after`` of its last sync (it flaps), or whose sync failed, waits.
        self.sync_backoff = sync_backoff if sync_backoff is not None else Backoff()
        # Symbols whose book fell out of sync (BookResync), and syncs that failed.
        self.book_resyncs = 0
        self.sync_failures = 0
        # symbol -> trio time its book was last synchronised, and how many times in a row
        # it fell out of sync soon after (kept across connections).
        self._synced_at: dict[str, float] = {}
        self._flaps: dict[str, int] = {}
        self._connections = 0
        self._up: set[int] = set()
        # Every connection is up (and the sink was told so).
        self._connected = False
        # ... and a quote has arrived since: what feed_status reports as connected.
        self._usable = False
        self._last_update: float | None = None
        self._latency_ms: float | None = None
        self.problems = ProblemLog(self.name or type(self).__name__,
                                   logging.getLogger(type(self).__module__))

    # --- what a subclass provides ------------------------------------------------------

    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """The connections that carry ``symbols`` (exchange-neutral names)."""
        raise NotImplementedError

    def parse(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        """Turn one message into a quote, or ``None`` for a message that carries none (an
        acknowledgement, a pong). ``state`` is a dict that lives as long as the
        connection (for sequence numbers). Raise :class:`Resync` to reconnect,
        :class:`BookResync` for one symbol's book out of sync (:class:`ResyncSymbol` to
        resubscribe it), and ``ValueError``, ``KeyError`` or ``TypeError`` for a
        malformed message (it is skipped and counted). Runs once per message: keep it
        cheap."""
        raise NotImplementedError

    def heartbeat(self) -> str | None:
        """The text message to send every :attr:`heartbeat_interval` seconds."""
        return None

    async def sync_book(
        self, symbol: str, connection: Connection, state: dict[str, Any],
        ws: WebSocketConnection,
    ) -> Quote | None:
        """Bring the book of ``symbol`` (exchange-neutral name) into sync: the snapshot
        step of :class:`_BookSyncs` (a REST snapshot, or whatever else the venue asks
        for over ``ws``). Feeds that raise :class:`BookResync` implement it; the base
        calls it for every symbol of a connection when it opens (:attr:`keeps_books`)
        and for a symbol after :class:`BookResync`, in a task of its own, while
        :meth:`parse` goes on with the connection's messages (``state`` is the dict it
        gets). Returns the quote of the book now in sync, delivered at once (``None``
        while there is none yet). Raise :class:`arbotd.ExchangeError`, ``OSError`` or
        ``ValueError`` to be retried after ``sync_backoff``, :class:`Resync` to reopen the
        connection."""
        raise NotImplementedError

    # --- ExchangeAdapter ------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, WebSocketFeed)
        return self.settings == other.settings

    def __hash__(self) -> int:
        return hash((type(self), self.settings))

    def feed_status(self) -> FeedStatus:
        """Connected while every connection is up and a quote has arrived since the
        last (re)connect; ``last_update`` is when the latest quote arrived."""
        return FeedStatus(self._usable, self._last_update, self._latency_ms)

    async def stream_quotes(
        self,
        symbols: Sequence[str],
        sink: QuoteSink,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Stream ``symbols`` until cancelled, each connection reconnecting by itself;
        ``task_status.started()`` once every connection is up."""
        plan = self.connections(symbols)
        self._connections = len(plan)
        self._up.clear()
        if not plan:
            task_status.started()
            await trio.sleep_forever()
        all_up = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                for index, connection in enumerate(plan):
                    nursery.start_soon(self._keep_connected, index, connection, sink, all_up)
                await all_up.wait()
                task_status.started()
        finally:
            self._up.clear()
            self._connected = self._usable = False

    # --- connections ------------------------------------------------------------------------

    async def _keep_connected(
        self, index: int, connection: Connection, sink: QuoteSink, all_up: trio.Event
    ) -> None:
        failures = 0
        await trio.sleep(index * self.connect_interval)
        while True:
            connected_at: list[float] = []
            reason = await self._session(index, connection, sink, all_up, connected_at)
            self._mark_down(index, sink, reason)
            self.reconnects += 1
            healthy = (
                bool(connected_at)
                and trio.current_time() - connected_at[0] >= self.backoff.healthy_after
            )
            # A connection that had been up for a while ended (a planned disconnect):
            # reconnect at once, and back off only if that fails.
            failures = 0 if healthy else failures + 1
            delay = self.backoff.delay(failures) if failures else index * self.connect_interval
            # A planned reconnect is news; a failing one is a problem the operator must see.
            level = logging.WARNING if failures else logging.INFO
            log.log(level, "%s: connection %d: %s; reconnecting in %.1f s",
                    self.name, index, reason, delay)
            await trio.sleep(delay)

    async def _session(
        self,
        index: int,
        connection: Connection,
        sink: QuoteSink,
        all_up: trio.Event,
        connected_at: list[float],
    ) -> str:
        """One connection, until it fails; returns why it ended."""
        try:
            async with open_connection(
                connection.url, connect_timeout=self.connect_timeout, close_timeout=2.0
            ) as ws:
                for message in connection.subscribe:
                    await ws.send_message(message)
                connected_at.append(trio.current_time())
                self._mark_up(index, sink, all_up)
                if self.heartbeat_interval is None:
                    return await self._read(ws, connection, sink)
                async with trio.open_nursery() as beats:
                    beats.start_soon(self._beat, ws)
                    reason = await self._read(ws, connection, sink)
                    beats.cancel_scope.cancel()
                return reason
        except HandshakeFailed as err:
            return f"connection failed: {error_cause(err)}"
        except ConnectionClosed as err:
            return f"connection closed: {err}"
        except OSError as err:
            return f"connection error: {error_cause(err)}"

    async def _read(
        self, ws: WebSocketConnection, connection: Connection, sink: QuoteSink
    ) -> str:
        """Receive, parse and deliver until the connection fails or goes stale; returns
        why."""
        # The time of the latest message, read by the watchdog. Moving a cancel scope's
        # deadline on every message costs as much as parsing it; storing a time does not.
        seen = [trio.current_time()]
        # What the parser keeps for the connection's lifetime (sequence numbers, books).
        state: dict[str, Any] = {}
        reason: str | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watchdog, seen, self.stale_after, nursery.cancel_scope)
            syncs = _BookSyncs(self, connection, state, ws, sink, nursery)
            if self.keeps_books:
                for symbol in connection.symbols.values():
                    syncs.request(symbol, resync=False)
            reason = await self._receive(ws, connection, sink, seen, state, syncs)
            nursery.cancel_scope.cancel()
        if syncs.ended is not None:
            return syncs.ended
        return reason if reason is not None else f"no message for {self.stale_after:g} s (stale)"

    async def _receive(
        self, ws: WebSocketConnection, connection: Connection, sink: QuoteSink,
        seen: list[float], state: dict[str, Any], syncs: _BookSyncs,
    ) -> str:
        """The per-message loop (the hot path of market data)."""
        deliver = sink.on_quote
        clock = self.clock
        parse = self.parse
        now = trio.current_time
        get_message = ws.get_message
        syncing = syncs.active
        checkpoint = trio.lowlevel.checkpoint
        try:
            while True:
                if syncing:
                    # The client decodes a whole socket read (hundreds of messages)
                    # before it yields: on a busy stream, the syncs' requests would
                    # advance one step per read. Let them run after every message.
                    await checkpoint()
                raw = await get_message()
                seen[0] = now()
                received = clock()
                try:
                    quote = parse(raw, connection, state, received)
                except BookResync as err:
                    await syncs.out_of_sync(err)
                    continue
                except Resync as err:
                    self.resyncs += 1
                    return f"resynchronising: {err}"
                except (ValueError, KeyError, TypeError, IndexError) as err:
                    self.skipped_messages += 1
                    self.problems.warning(
                        "bad", "skipped a message that is not understood: %s: %.200r",
                        type(err).__name__, raw
                    )
                    continue
                if quote is None:
                    continue
                self._last_update = received
                if quote.exchange_ts != received:
                    self._latency_ms = (received - quote.exchange_ts) * 1000.0
                deliver(quote)
                if not self._usable:
                    self._usable = self._connected
        except ConnectionClosed as err:
            return f"connection closed: {err}"

    def _deliver(self, quote: Quote, sink: QuoteSink) -> None:
        """Deliver a quote that does not come from the reading loop (a book just synced)
        as the loop does (its latency is not the stream's, so it is not measured)."""
        self._last_update = quote.received_ts
        sink.on_quote(quote)
        if not self._usable:
            self._usable = self._connected

    async def _beat(self, ws: WebSocketConnection) -> None:
        assert self.heartbeat_interval is not None
        try:
            while True:
                await trio.sleep(self.heartbeat_interval)
                message = self.heartbeat()
                if message is not None:
                    await ws.send_message(message)
        except ConnectionClosed:
            return  # the reader sees the close and says why

    def _mark_up(self, index: int, sink: QuoteSink, all_up: trio.Event) -> None:
        self._up.add(index)
        if len(self._up) == self._connections:
            all_up.set()
            if not self._connected:
                self._connected = True
                sink.on_feed_state(self.name, True)

    def _mark_down(self, index: int, sink: QuoteSink, reason: str) -> None:
        self._up.discard(index)
        self._usable = False
        if self._connected:
            self._connected = False
            sink.on_feed_state(self.name, False, reason)


class VenueFeed(WebSocketFeed):
    """A :class:`WebSocketFeed` set up from a venue's table (a
    :class:`~arbotd.exchange.VenueConfig`, kept as :attr:`config`): its taker fee,
    premium baseline and stale bound. A venue's feed subclasses it and adds what its
    own keys (depth, connections' bounds) say."""

    def __init__(
        self,
        config: VenueConfig,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        sync_backoff: Backoff | None = None,
    ) -> None:
        super().__init__(
            config,
            taker_fee=config.taker_fee,
            premium_baseline=config.premium_baseline,
            stale_after=config.stale_after_seconds,
            backoff=backoff,
            clock=clock,
            sync_backoff=sync_backoff,
        )
        self.config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.resolved_ws_url()!r})"


class _BookSyncs:
    """One connection's per-symbol resync state machine. A symbol is in sync, or out of
    sync (the sink forgot its quote: the engine trades without it) while one of two
    steps brings it back, the feed's choice through the exception its parser raises:

    * :class:`BookResync`: the feed's :meth:`WebSocketFeed.sync_book` (a REST snapshot
      put under the buffered updates), in a task of its own in the connection's nursery
      (so that it ends with it), retried after ``sync_backoff`` when it fails, and
      delayed by the same backoff for a symbol that falls out of sync again soon after
      its last sync (it flaps); it also runs for every symbol when the connection opens;
    * :class:`ResyncSymbol`: its resubscription messages, sent at once on the connection;
      the parser's :class:`~arbotd.exchange.Resubscriptions` bounds that step instead (a
      deadline for the fresh snapshot, an hourly budget), reconnecting past either.

    The symbol is in sync again once its next quote is delivered (by the sync, or by
    the parser from the fresh snapshot)."""

    def __init__(
        self, feed: WebSocketFeed, connection: Connection, state: dict[str, Any],
        ws: WebSocketConnection, sink: QuoteSink, nursery: trio.Nursery,
    ) -> None:
        self.feed = feed
        self.connection = connection
        self.state = state
        self.ws = ws
        self.sink = sink
        self.nursery = nursery
        # Why the connection must be reopened, once a sync said so (Resync).
        self.ended: str | None = None
        # The symbols being synchronised, and those whose sync is under way rather than
        # waiting out a backoff (read by the reading loop).
        self.running: set[str] = set()
        self.active: set[str] = set()

    async def out_of_sync(self, err: BookResync) -> None:
        """``err.symbol``'s book broke (the parser raised ``err``): forget its quote and
        bring it back by the step ``err`` names."""
        feed = self.feed
        self.sink.forget_symbol(feed.name, err.symbol)
        if isinstance(err, ResyncSymbol):
            feed.problems.warning("resync", "resubscribing %s", err)
            for message in err.messages:
                await self.ws.send_message(message)
            return
        feed.problems.warning(
            "book", "%s: %s; synchronising its book again", err.symbol, err)
        self.request(err.symbol, resync=True)

    def request(self, symbol: str, *, resync: bool) -> None:
        """Synchronise ``symbol``'s book (``resync``: it fell out of sync, rather than the
        connection opening). A symbol already being synchronised is left to that sync."""
        if symbol in self.running:
            return
        self.running.add(symbol)
        self.nursery.start_soon(self._run, symbol, resync)

    async def _run(self, symbol: str, resync: bool) -> None:
        feed = self.feed
        backoff = feed.sync_backoff
        try:
            if resync:
                # A symbol out of sync again soon after its last sync flaps: each time in
                # a row waits longer (a one-off gap after a quiet spell is fixed at once).
                last = feed._synced_at.get(symbol)
                recent = last is not None and (
                    trio.current_time() - last < backoff.healthy_after)
                flaps = feed._flaps.get(symbol, 0) + 1 if recent else 0
                feed._flaps[symbol] = flaps
                if flaps:
                    await trio.sleep(backoff.delay(flaps))
            failures = 0
            while True:
                self.active.add(symbol)
                try:
                    quote = await feed.sync_book(symbol, self.connection, self.state,
                                                 self.ws)
                    break
                except Resync as err:
                    feed.resyncs += 1
                    self.ended = f"resynchronising: {err}"
                    self.nursery.cancel_scope.cancel()
                    return
                except ConnectionClosed:
                    return  # the reader sees the close and says why
                except _SYNC_ERRORS as err:
                    failures += 1
                    feed.sync_failures += 1
                    feed.problems.warning(
                        "sync", "%s: its book could not be synchronised: %s", symbol, err)
                    self.active.discard(symbol)
                    await trio.sleep(backoff.delay(failures))
        finally:
            self.running.discard(symbol)
            self.active.discard(symbol)
        feed._synced_at[symbol] = trio.current_time()
        if quote is not None:
            feed._deliver(quote, self.sink)


async def _watchdog(seen: list[float], stale_after: float, reader: trio.CancelScope) -> None:
    """Cancel ``reader`` once no message has come for ``stale_after`` seconds (``seen[0]``
    is the trio time of the latest)."""
    while True:
        deadline = seen[0] + stale_after
        if trio.current_time() >= deadline:
            reader.cancel()
            return
        await trio.sleep_until(deadline)
