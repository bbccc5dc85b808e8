"""The Bybit v5 spot market-data feed: ``orderbook.1.<SYMBOL>`` over the public WebSocket.

Quirks (exchange-protocols.md section 2.1, from Bybit's ``websocket/public/orderbook.mdx``
and ``wss-authentication.mdx``):

* Topics are subscribed with ``{"req_id", "op": "subscribe", "args": [...]}``, at most 10
  args per request and 21,000 characters of args per connection: symbols are spread over
  several requests, and over several connections of ``max_topics_per_connection``.
* The client keeps the connection alive with ``{"op": "ping"}`` every 20 s; the server
  answers ``{"success": true, "ret_msg": "pong", "op": "ping"}``. Acknowledgements and pongs
  carry no quote; a refused subscription (``"success": false``) reconnects, so the feed is
  unusable until every topic is subscribed.
* Level 1 is snapshot-only (pushed every 10 ms on change, re-sent with the same ``u`` after
  3 s without one); any snapshot replaces the book, and ``u == 1`` marks a service
  restart, whose snapshot is taken as is. Deltas (deeper books) update levels, size ``"0"``
  deleting one.
* Bybit documents no gap rule (section 8): a ``u`` going backwards other than to 1, or a
  delta before any snapshot, means the book cannot be trusted, and the connection starts
  afresh (unverified rule, section 2.1).
* ``ts`` (milliseconds) is the exchange's event time, so the feed reports latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from arbotd import Quote
from arbotd.exchange.feed import Backoff, Connection, Resync, WebSocketFeed
from arbotd_bybit.config import BybitConfig
from arbotd_bybit.symbols import chunk_topics, orderbook_topic, subscribe_messages, to_bybit

__all__ = ["HEARTBEAT_SECONDS", "PING", "SPOT_PATH", "BybitFeed", "OrderBook"]

EXCHANGE = "bybit"
SPOT_PATH = "/v5/public/spot"
# Bybit asks for a ping every 20 s (exchange-protocols.md 2.1).
HEARTBEAT_SECONDS = 20.0
PING = '{"op":"ping"}'
# Service restart marker (exchange-protocols.md 2.1).
_RESTART_U = 1


class OrderBook:
    """The book of one symbol on one connection: ``u`` of the last update and the levels
    (price -> size) of each side."""

    __slots__ = ("asks", "bids", "u")

    def __init__(self, u: int, bids: dict[float, float], asks: dict[float, float]) -> None:
        self.u = u
        self.bids = bids
        self.asks = asks

    def apply(self, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        """A delta: set each level, size 0 deleting it."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                p, s = float(price), float(size)
                if s == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = s


def _levels(levels: Sequence[Sequence[str]]) -> dict[float, float]:
    return {float(price): float(size) for price, size in levels if float(size) != 0.0}


class BybitFeed(WebSocketFeed):
    """Bybit spot best bid/ask: an ``arbotd.ExchangeAdapter`` (market data).

    Two feeds compare equal when their settings are equal.
    """

    name = EXCHANGE

    def __init__(
        self,
        config: BybitConfig,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        heartbeat_interval: float = HEARTBEAT_SECONDS,
    ) -> None:
        super().__init__(
            config,
            taker_fee=config.taker_fee,
            premium_baseline=config.premium_baseline,
            stale_after=config.stale_after_seconds,
            backoff=backoff,
            clock=clock,
        )
        self.config = config
        self.heartbeat_interval = heartbeat_interval
        self.service_restarts = 0
        self.refused_subscriptions = 0

    def __repr__(self) -> str:
        return f"BybitFeed({self.config.resolved_ws_url()!r})"

    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """One connection per ``max_topics_per_connection`` symbols, each subscribing in
        requests of at most 10 topics."""
        by_bybit = {to_bybit(s): s for s in symbols}
        topics = [orderbook_topic(b) for b in by_bybit]
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
        message = orjson.loads(raw)
        if not isinstance(message, dict):
            raise TypeError("not a JSON object")
        topic = message.get("topic")
        if topic is None:
            return self._control(message)
        data = message["data"]
        symbol = connection.symbols[data["s"]]
        u = int(data["u"])
        kind = message["type"]
        book: OrderBook | None = state.get(symbol)
        if kind == "snapshot":
            if u == _RESTART_U and book is not None and book.u != _RESTART_U:
                self.service_restarts += 1
                self.problems.warning("restart", "service restart (u = 1) on %s", topic)
            elif book is not None and u < book.u:
                raise Resync(f"{topic}: update id went backwards ({book.u} -> {u})")
            book = OrderBook(u, _levels(data["b"]), _levels(data["a"]))
            state[symbol] = book
        elif kind == "delta":
            if book is None:
                raise Resync(f"{topic}: a delta came before any snapshot")
            if u <= book.u:
                raise Resync(f"{topic}: delta update id {u} is not after {book.u}")
            book.apply(data["b"], data["a"])
            book.u = u
        else:
            raise ValueError(f"unknown message type {kind!r}")
        if not book.bids or not book.asks:
            return None  # one side is empty: no best price to quote
        bid = max(book.bids)
        ask = min(book.asks)
        return Quote(
            EXCHANGE, symbol, bid, ask, book.bids[bid], book.asks[ask],
            message["ts"] / 1000.0, received,
        )

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
