"""The Bybit v5 spot market-data feed: ``orderbook.1.<SYMBOL>`` (the best level, ``depth =
1``) or ``orderbook.50.<SYMBOL>`` (up to 50 levels) over the public WebSocket.

Quirks (exchange-protocols.md section 2.1, from Bybit's ``websocket/public/orderbook.mdx``
and ``wss-authentication.mdx``):

* Topics are subscribed with ``{"req_id", "op": "subscribe", "args": [...]}``, at most 10
  args per request and 21,000 characters of args per connection: symbols are spread over
  several requests, and over several connections of ``max_topics_per_connection``.
* The client keeps the connection alive with ``{"op": "ping"}`` every 20 s; the server
  answers ``{"success": true, "ret_msg": "pong", "op": "ping"}``. Acknowledgements and pongs
  carry no quote; a refused subscription (``"success": false``) reconnects, so the feed is
  unusable until every topic is subscribed. The feed pings every ``min(20 s,
  stale_after / 2)``, so a quiet book (orderbook.50 sends nothing while it does not
  change) does not look stale.
* Level 1 is snapshot-only (pushed every 10 ms on change, re-sent with the same ``u`` after
  3 s without one); any snapshot replaces the book, and ``u == 1`` marks a service
  restart, whose snapshot is taken as is. A ``u`` going backwards other than to 1, or a
  delta before any snapshot, means the book cannot be trusted, and the connection starts
  afresh (unverified rule, section 2.1).
* Level 50 (every 20 ms): a snapshot, then deltas of the levels that changed, size ``"0"``
  deleting one; any new snapshot (``u == 1`` after a service restart among them) replaces
  the book. Bybit documents no gap rule (section 8); ``u`` counts the book's updates, so a
  delta whose ``u`` is not the last one plus 1 has missed one. Such a gap, a delta before
  any snapshot, and a crossed book (its best bid at or above its best ask) make the
  engine forget the symbol, and the feed resubscribes it (unsubscribe, subscribe) for a
  fresh snapshot, dropping the deltas still in flight meanwhile; the connection's other
  symbols carry on (:mod:`arbotd.exchange.resubscribe`). ``seq`` (a cross sequence
  shared with the symbol's other depths and trades, not consecutive) proves no gap and is
  not used.
* ``ts`` (milliseconds) is the exchange's event time, so the feed reports latency.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import orjson

from arbotd import Quote
from arbotd.exchange import OrderBook, Resubscriptions
from arbotd.exchange.feed import Backoff, Connection, Resync, VenueFeed
from arbotd_bybit.config import BybitConfig
from arbotd_bybit.symbols import chunk_topics, orderbook_topic, subscribe_messages, to_bybit

__all__ = ["BOOK_TOPIC_DEPTH", "HEARTBEAT_SECONDS", "PING", "SPOT_PATH", "BybitFeed"]

EXCHANGE = "bybit"
SPOT_PATH = "/v5/public/spot"
# Bybit asks for a ping every 20 s (exchange-protocols.md 2.1).
HEARTBEAT_SECONDS = 20.0
PING = '{"op":"ping"}'
# The topic depth that carries the books of depth 2 to 50 (exchange-protocols.md 2.1).
BOOK_TOPIC_DEPTH = 50
# Service restart marker (exchange-protocols.md 2.1).
_RESTART_U = 1
_GARBLED = (ValueError, KeyError, TypeError, IndexError)


class BybitFeed(VenueFeed):
    """Bybit spot market data, the best level or ``depth`` levels per side: an
    ``arbotd.ExchangeAdapter``.

    Two feeds compare equal when their settings are equal.
    """

    name = EXCHANGE

    def __init__(
        self,
        config: BybitConfig,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        heartbeat_interval: float | None = None,
    ) -> None:
        super().__init__(config, backoff=backoff, clock=clock)
        self.depth = config.depth
        self.topic_depth = 1 if config.depth == 1 else BOOK_TOPIC_DEPTH
        self._topic_prefix = f"orderbook.{self.topic_depth}."
        # Answers to the pings are what keeps a quiet connection from looking stale.
        self.heartbeat_interval = (
            heartbeat_interval if heartbeat_interval is not None
            else min(HEARTBEAT_SECONDS, config.stale_after_seconds / 2))
        self.service_restarts = 0
        self.refused_subscriptions = 0
        # Books found out of sync and resubscribed; deltas dropped meanwhile.
        self.book_resyncs = 0
        self.dropped_while_resyncing = 0
        self._req_ids = itertools.count(1)


    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """One connection per ``max_topics_per_connection`` symbols, each subscribing in
        requests of at most 10 topics."""
        by_bybit = {to_bybit(s): s for s in symbols}
        topics = [orderbook_topic(b, self.topic_depth) for b in by_bybit]
        url = self.config.resolved_ws_url() + SPOT_PATH
        plan = []
        for group in chunk_topics(topics, self.config.max_topics_per_connection):
            carried = {topic.split(".", 2)[2]: by_bybit[topic.split(".", 2)[2]]
                       for topic in group}
            plan.append(Connection(url, carried, tuple(subscribe_messages(group))))
        return plan

    def heartbeat(self) -> str:
        return PING

    def parse(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        pending: Resubscriptions | None = None
        if self.topic_depth != 1:
            pending = Resubscriptions.of(state, timeout=self.config.stale_after_seconds,
                                         now=received)
        message = orjson.loads(raw)
        if not isinstance(message, dict):
            raise TypeError("not a JSON object")
        topic = message.get("topic")
        if topic is None:
            return self._control(message)
        if not topic.startswith(self._topic_prefix):
            raise ValueError(f"a message of topic {topic!r}, not {self._topic_prefix}*")
        data = message["data"]
        symbol = connection.symbols[data["s"]]
        u = int(data["u"])
        kind = message["type"]
        exchange_ts = message["ts"] / 1000.0
        if pending is not None:
            return self._book(topic, kind, u, data, symbol, state, pending, exchange_ts,
                              received)
        return self._level1(topic, kind, u, data, symbol, state, exchange_ts, received)

    def _level1(self, topic: str, kind: str, u: int, data: dict[str, Any], symbol: str,
                state: dict[str, Any], exchange_ts: float, received: float) -> Quote | None:
        """``orderbook.1``: the best level per side, snapshots that replace the book."""
        book: OrderBook | None = state.get(symbol)
        if kind == "snapshot":
            if u == _RESTART_U and book is not None and book.update_id != _RESTART_U:
                self.service_restarts += 1
                self.problems.warning("restart", "service restart (u = 1) on %s", topic)
            elif book is not None and book.update_id is not None and u < book.update_id:
                raise Resync(f"{topic}: update id went backwards ({book.update_id} -> {u})")
            if book is None:
                book = state[symbol] = OrderBook()
            try:
                book.reset(data["b"], data["a"], u)
            except _GARBLED:
                book.invalidate()
                raise
        elif kind == "delta":
            if book is None or not book.valid:
                raise Resync(f"{topic}: a delta came before any snapshot")
            if book.update_id is not None and u <= book.update_id:
                raise Resync(f"{topic}: delta update id {u} is not after {book.update_id}")
            book.apply(data["b"], data["a"])
            book.update_id = u
        else:
            raise ValueError(f"unknown message type {kind!r}")
        bid, ask = book.bids.best(), book.asks.best()
        if bid is None or ask is None:
            return None  # one side is empty: no best price to quote
        return Quote(EXCHANGE, symbol, bid[0], ask[0], bid[1], ask[1], exchange_ts, received)

    def _book(self, topic: str, kind: str, u: int, data: dict[str, Any], symbol: str,
              state: dict[str, Any], pending: Resubscriptions, exchange_ts: float,
              received: float) -> Quote | None:
        """``orderbook.50``: a snapshot then deltas, applied and checked: the quote of
        the book's top ``depth`` levels."""
        book: OrderBook | None = state.get(symbol)
        if kind == "snapshot":
            if u == _RESTART_U and book is not None and book.valid:
                self.service_restarts += 1
                self.problems.warning("restart", "service restart (u = 1) on %s", topic)
            if book is None:
                book = state[symbol] = OrderBook()
            try:
                book.reset(data["b"], data["a"], u)
            except _GARBLED as err:
                self.skipped_messages += 1
                self._resync(topic, symbol, book, pending, received,
                             f"a snapshot that is not understood ({type(err).__name__}: {err})")
            pending.arrived(symbol)
        elif kind == "delta":
            if book is None or not book.valid or book.update_id is None:
                if pending.awaiting(symbol):
                    self.dropped_while_resyncing += 1  # in flight before the resubscription
                    return None
                self._resync(topic, symbol, book, pending, received,
                             "a delta before any snapshot")
            if u != book.update_id + 1:
                self._resync(topic, symbol, book, pending, received,
                             f"delta update id {u} does not follow {book.update_id} (a gap)")
            try:
                book.apply(data["b"], data["a"])
            except _GARBLED as err:
                # Part of it may be applied: the book can no longer be trusted.
                self.skipped_messages += 1
                self._resync(topic, symbol, book, pending, received,
                             f"a delta that is not understood ({type(err).__name__}: {err})")
            book.update_id = u
        else:
            raise ValueError(f"unknown message type {kind!r}")
        if book.crossed():
            bid, ask = book.bids.best(), book.asks.best()
            assert bid is not None and ask is not None
            self._resync(topic, symbol, book, pending, received,
                         f"crossed book (bid {bid[0]:g} >= ask {ask[0]:g})")
        return book.quote(EXCHANGE, symbol, self.depth, exchange_ts, received)

    def _resync(self, topic: str, symbol: str, book: OrderBook | None,
                pending: Resubscriptions, received: float, reason: str) -> NoReturn:
        """Forget the symbol's book and resubscribe its topic (see
        :mod:`arbotd.exchange.resubscribe`)."""
        if book is not None:
            book.invalidate()
        self.book_resyncs += 1
        messages = [orjson.dumps({"req_id": f"resync-{next(self._req_ids)}", "op": op,
                                  "args": [topic]}).decode()
                    for op in ("unsubscribe", "subscribe")]
        pending.resync(symbol, reason, messages, received)

    def _control(self, message: dict[str, Any]) -> None:
        """An answer to a request (subscribe, ping): nothing to quote, unless the request
        was refused."""
        op = message.get("op")
        if message.get("success") is False:
            self.refused_subscriptions += op == "subscribe"
            reason = message.get("ret_msg") or "no reason given"
            self.problems.warning("refused", "%s refused: %s", op, reason)
            raise Resync(f"{op} refused: {reason}")
        if op in ("subscribe", "ping", "pong", "unsubscribe"):
            return None
        raise ValueError("neither a topic message nor an answer to a request")
