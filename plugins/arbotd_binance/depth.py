"""Binance order books: the diff-depth stream kept in step with REST snapshots.

Facts (exchange-protocols.md 1.1 and 1.2, from Binance's ``web-socket-streams.md``, "How
to manage a local order book correctly", and ``rest-api.md``):

* ``<symbol>@depth@100ms`` pushes, every 100 ms when the book changed,
  ``{"e": "depthUpdate", "E": ms, "s": "BNBBTC", "U": first, "u": last, "b": [[price,
  qty], ...], "a": [...]}``: the new quantity of every level that changed from update id
  ``U`` to ``u``; a quantity of 0 removes the level.
* ``GET /api/v3/depth?symbol=&limit=`` answers ``{"lastUpdateId", "bids", "asks"}``, the
  best ``limit`` levels a side (at most 5000; the weight grows with the limit).
* The rule: buffer the stream's events, then fetch a snapshot. Drop the buffered events
  with ``u <= lastUpdateId``; the first event applied must have ``U <= lastUpdateId + 1
  <= u`` (a snapshot older than that is stale: fetch it again); from then on each event
  starts where the last one ended (``U == previous u + 1``). An event with ``u`` at or
  below the book's id is old and ignored; one with ``U`` beyond the book's id + 1 means
  updates were missed: the book is discarded and synchronised again. Binance's
  correction of 2025-11-12 spells the last two checks so (``U <= id + 1 <= u`` applies,
  overlapping or not).

:class:`SymbolBook` keeps one symbol's book on one connection and where its sync stands;
the feed (:mod:`arbotd_binance.stream`) parses events, applies them in sync, and fetches
snapshots.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs
import orjson
import trio

from arbotd import Quote, TemporaryExchangeError
from arbotd.exchange import OrderBook

__all__ = [
    "BUFFERED_EVENTS",
    "DepthEvent",
    "Snapshot",
    "StaleSnapshot",
    "SymbolBook",
    "checked_levels",
    "parse_depth_event",
    "parse_depth_snapshot",
    "snapshot_limit",
]

EXCHANGE = "binance"
# Events of a symbol kept while its snapshot is fetched (10 a second at most): older ones
# make way; the sync rule then asks for a newer snapshot if it needs them.
BUFFERED_EVENTS = 1000
# The snapshot limits Binance weighs differently (rest-api.md, "Order book").
_LIMITS = (100, 500, 1000, 5000)
# Levels a snapshot covers per level delivered: changes deeper than a snapshot's last
# level arrive on the stream, but levels there that do not change are never known, so
# the delivered levels stay well inside the part of the book a snapshot gave.
_COVER = 5

# (U, u, bids, asks, event time in seconds)
DepthEvent = tuple[int, int, list[Any], list[Any], float]


class StaleSnapshot(TemporaryExchangeError):
    """The snapshot is older than the updates the stream already brought: fetch it
    again."""

    def __init__(self, message: str) -> None:
        super().__init__(EXCHANGE, message)


@attrs.frozen
class Snapshot:
    """A ``GET /api/v3/depth`` answer: levels as Binance's ``[price, qty]`` strings."""

    last_update_id: int
    bids: list[Any]
    asks: list[Any]


def snapshot_limit(depth: int) -> int:
    """The snapshot limit for quotes of ``depth`` levels: the smallest of Binance's weight
    steps that covers ``depth`` several times over."""
    for limit in _LIMITS:
        if limit >= depth * _COVER:
            return limit
    return _LIMITS[-1]


def checked_levels(levels: Any) -> list[Any]:
    """``levels`` when it is a list of ``[price, qty]`` pairs of numbers (price above 0,
    quantity 0 or more, both finite), so that a bad message is refused before any of it
    reaches a book; ``ValueError`` or ``TypeError`` otherwise."""
    if type(levels) is not list:
        raise TypeError(f"levels are not a list: {levels!r:.80}")
    for level in levels:
        if type(level) is not list or len(level) < 2:
            raise ValueError(f"a level is not a [price, qty] pair: {level!r:.80}")
        price, size = float(level[0]), float(level[1])
        if not (0.0 < price < math.inf and 0.0 <= size < math.inf):
            raise ValueError(f"a level is not a price and a quantity: {level!r:.80}")
    return levels


def parse_depth_snapshot(data: Any) -> Snapshot:
    """A ``GET /api/v3/depth`` answer; ``ValueError``/``KeyError``/``TypeError`` for one
    that is not."""
    update_id = data["lastUpdateId"]
    if type(update_id) is not int:
        raise TypeError(f"lastUpdateId is not an integer: {update_id!r:.80}")
    return Snapshot(update_id, checked_levels(data["bids"]), checked_levels(data["asks"]))


def parse_depth_event(raw: str | bytes, symbols: Mapping[str, str]) -> tuple[str, DepthEvent]:
    """One combined-stream ``depthUpdate`` -> ``(neutral symbol, event)``; raises
    ``ValueError``, ``KeyError`` or ``TypeError`` for a message that is not one of ours."""
    data = orjson.loads(raw)["data"]
    symbol = symbols[data["s"]]
    first, last = data["U"], data["u"]
    if type(first) is not int or type(last) is not int or first > last:
        raise ValueError(f"update ids are not U <= u: {first!r:.40}, {last!r:.40}")
    event = (first, last, checked_levels(data["b"]), checked_levels(data["a"]),
             data["E"] / 1000.0)
    return symbol, event


class SymbolBook:
    """One symbol's book on one connection, and where its sync stands.

    While :attr:`buffer` is not ``None`` the book is out of sync: events are buffered
    until :meth:`install` puts a snapshot under them. ``floor`` is the id of the last
    update the stream brought before the book was dropped (a snapshot older than that
    lacks updates no buffer holds).
    """

    __slots__ = ("arrived", "book", "buffer", "event_ts", "floor", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.book = OrderBook()
        self.buffer: deque[DepthEvent] | None = deque(maxlen=BUFFERED_EVENTS)
        # Set by the first event buffered.
        self.arrived = trio.Event()
        self.floor: int | None = None
        # The exchange's time of the last event applied (a snapshot carries none).
        self.event_ts = 0.0

    def hold(self, event: DepthEvent) -> None:
        """Buffer ``event`` (the book is out of sync)."""
        buffer = self.buffer
        assert buffer is not None
        if buffer and event[0] > buffer[-1][1] + 1:
            # Updates went missing while buffering (a message skipped as garbage): those
            # before the gap can never be applied; a snapshot must cover them.
            buffer.clear()
        buffer.append(event)
        self.arrived.set()

    def drop(self, floor: int | None, event: DepthEvent | None = None) -> None:
        """The book is out of sync: empty it, and buffer from ``event`` (if any) on until
        the next snapshot. ``floor``: the id of the last update seen."""
        self.book.invalidate()
        self.buffer = deque(maxlen=BUFFERED_EVENTS)
        self.arrived = trio.Event()
        self.floor = floor
        if event is not None:
            self.hold(event)

    def install(self, snapshot: Snapshot, depth: int, now: float) -> Quote | None:
        """Put ``snapshot`` under the buffered events and apply those that follow it (the
        rule in the module's docstring). Returns the quote of the book now in sync (``None``
        while a side is empty); raises :class:`StaleSnapshot` for a snapshot older than
        what the stream brought, leaving the buffer for the next one."""
        last_id = snapshot.last_update_id
        if self.floor is not None and last_id < self.floor:
            raise StaleSnapshot(f"{self.symbol}: the snapshot (lastUpdateId {last_id}) is "
                                f"older than update {self.floor}, seen on the stream")
        buffer = self.buffer
        assert buffer is not None
        while buffer and buffer[0][1] <= last_id:
            buffer.popleft()
        if buffer and buffer[0][0] > last_id + 1:
            raise StaleSnapshot(f"{self.symbol}: the snapshot (lastUpdateId {last_id}) is "
                                f"older than the first buffered update ({buffer[0][0]})")
        book = self.book
        book.reset(snapshot.bids, snapshot.asks, last_id)
        self.event_ts = now
        for _first, last, bids, asks, event_ts in buffer:
            book.apply(bids, asks)
            book.update_id = last
            self.event_ts = event_ts
        if book.crossed():
            book.invalidate()
            raise StaleSnapshot(f"{self.symbol}: the snapshot and the buffered updates "
                                "make a crossed book")
        self.buffer = None
        self.floor = None
        return book.quote(EXCHANGE, self.symbol, depth, self.event_ts, now)
