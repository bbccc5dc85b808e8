"""The Bitget spot market-data feed: the ``books1`` channel of the public WebSocket for
the best level alone (``depth = 1``), ``books15`` up to 15 levels, ``books`` beyond
(their rules are in :mod:`arbotd_bitget.books`).

Facts (bitget-upbit-protocols.md 1.1, Bitget's ``common/websocket-intro`` and
``spot/websocket_public_Depth-Channel``):

* A push is ``{"action": "snapshot", "arg": {"instType": "SPOT", "channel": "books1",
  "instId": "BTCUSDT"}, "data": [{"asks": [[px, sz]], "bids": [[px, sz]], "checksum":
  0, "seq": n, "ts": "<ms>"}], "ts": <ms>}``: prices and sizes are strings, ``seq`` a
  number, ``data[].ts`` the matching engine's time in ms.
* The client sends the text ``ping`` (Bitget: every 30 s) and gets the text ``pong``; the
  server cuts a connection after 2 min without a ping, and every connection after 24 h.
  The feed pings every ``min(25 s, stale_after / 2)``, so a healthy connection always
  brings a message within ``stale_after``; a missing ``pong`` leaves it silent, and a
  silent connection is reopened. The 24 h cut is an ordinary reconnect: a connection
  that was up a while is reopened at once.
* Subscribe acknowledgements (``"event": "subscribe"``) carry no quote. An error event
  (``{"event": "error", "code": 30001, "msg": ...}``: channel does not exist, 30006 too
  many requests...) ends the connection with a reason in the log, and the feed
  subscribes afresh after the backoff.
* A connection may send at most 10 messages a second and 240 subscribe requests an hour
  (bitget-upbit-protocols.md 1.1); pings go every few seconds, subscriptions in requests
  of at most 4096 bytes, and resubscriptions are bounded per hour
  (:class:`~arbotd.exchange.Resubscriptions`).
* On the snapshot channels a push whose ``seq`` is below its symbol's last one is out of
  order and dropped; several in a row mean the sequence restarted, and the feed
  reconnects.
* Depth: a ``books`` book whose update's ``seq`` is not above the last one, whose
  checksum does not match, or that is crossed, and a crossed ``books15`` snapshot, is out
  of sync: the engine forgets that symbol's quote and the feed resubscribes it
  (unsubscribe, subscribe) for a fresh snapshot; the connection's other symbols carry on
  (:mod:`arbotd.exchange.resubscribe`). Updates still in flight for it are dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from arbotd import Quote
from arbotd.exchange import OrderBook, ResubscribedBooks, Resubscriptions
from arbotd.exchange.feed import Backoff, Connection, Resync, VenueFeed
from arbotd_bitget.books import (
    BBO_CHANNEL,
    BOOKS15_CHANNEL,
    book_checksum,
    channel_for,
    snapshot_levels,
)
from arbotd_bitget.config import BitgetConfig
from arbotd_bitget.symbols import channel_arg, chunk, subscribe_requests, to_bitget

__all__ = [
    "OUT_OF_ORDER_LIMIT",
    "PING_INTERVAL",
    "RESUBSCRIPTIONS_PER_HOUR",
    "BitgetFeed",
    "parse_bbo",
]

log = logging.getLogger(__name__)

EXCHANGE = "bitget"
# Bitget wants a ping every 30 s and cuts a connection after 2 minutes without one
# (bitget-upbit-protocols.md 1.1); one every 25 s at most leaves room to spare.
PING_INTERVAL = 25.0
# Pushes in a row below the last seq of their symbol after which the sequence is taken to
# have restarted.
OUT_OF_ORDER_LIMIT = 3
# Bitget takes 240 subscribe requests an hour per connection (bitget-upbit-protocols.md
# 1.1); a resubscription is two (unsubscribe, subscribe), so past this many in an hour a
# book that keeps breaking reconnects instead, leaving room for the first subscriptions.
RESUBSCRIPTIONS_PER_HOUR = 100
# The key of a connection's state holding when its last pong came (or its first message).
_PONG = "pong"


def _event(message: dict[str, Any]) -> None:
    """An ``event`` message: nothing to do, or :class:`Resync` for an error."""
    if message["event"] == "error":
        raise Resync(f"Bitget answered error {message.get('code')}: {message.get('msg')}")


def _message(raw: str | bytes) -> dict[str, Any] | None:
    """A decoded push, ``None`` for a pong or an event of no consequence. Raises
    :class:`Resync` for an error event and ``ValueError``/``KeyError``/``TypeError``
    for what is not understood."""
    if raw == "pong":
        return None
    message = orjson.loads(raw)
    if not isinstance(message, dict):
        raise TypeError(f"a {type(message).__name__}, not an object")
    if "event" in message:
        _event(message)
        return None
    return message


def parse_bbo(
    raw: str | bytes, symbols: Mapping[str, str], received_ts: float
) -> tuple[int | None, Quote] | None:
    """One message of the public WebSocket -> ``(seq, Quote)`` for a ``books1`` push,
    ``None`` for a message that carries no quote (``pong``, an acknowledgement).

    ``symbols`` maps Bitget's ``instId`` to the neutral symbol. Raises :class:`Resync`
    for an error event, and ``ValueError``, ``KeyError``, ``TypeError`` or
    ``IndexError`` for a message that is not understood (the caller skips it).
    """
    message = _message(raw)
    if message is None:
        return None
    arg = message["arg"]
    if arg["channel"] != BBO_CHANNEL:
        raise ValueError(f"a push of channel {arg['channel']!r}, not {BBO_CHANNEL}")
    symbol = symbols[arg["instId"]]
    book = message["data"][-1]
    bid = book["bids"][0]
    ask = book["asks"][0]
    quote = Quote(EXCHANGE, symbol, float(bid[0]), float(ask[0]), float(bid[1]),
                  float(ask[1]), int(book["ts"]) / 1000.0, received_ts)
    seq = book.get("seq")
    return (int(seq) if seq is not None else None), quote


class BitgetFeed(ResubscribedBooks, VenueFeed):
    """Bitget spot market data, the best level or ``depth`` levels per side: an
    ``arbotd.ExchangeAdapter``.

    Two feeds compare equal when their settings are equal.
    """

    name = EXCHANGE
    # Bitget takes 300 connection requests per IP in 5 minutes and at most 100
    # connections (bitget-upbit-protocols.md 1.1): even every connection reopening at
    # once stays inside; a fifth of a second between them spreads the burst.
    connect_interval = 0.2

    def __init__(
        self,
        config: BitgetConfig,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config, backoff=backoff, clock=clock)
        self.depth = config.depth
        self.channel = channel_for(config.depth)
        # Answers to the pings are what keeps a quiet connection from looking stale.
        self.heartbeat_interval = min(PING_INTERVAL, config.stale_after_seconds / 2)
        # A pong is due after every ping; none for this long means the pings are lost.
        self.pong_timeout = config.stale_after_seconds + self.heartbeat_interval
        self.dropped_out_of_order = 0
        # Books found out of sync and resubscribed; updates dropped meanwhile.
        self.book_resyncs = 0
        self.dropped_while_resyncing = 0

    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """One connection per ``max_channels_per_connection`` symbols, each subscribing
        to the depth's channel of its instruments."""
        by_bitget = {to_bitget(s): s.upper() for s in symbols}
        url = self.config.resolved_ws_url()
        return [
            Connection(url, {i: by_bitget[i] for i in group},
                       tuple(subscribe_requests(group, self.channel)))
            for group in chunk(list(by_bitget), self.config.max_channels_per_connection)
        ]

    def heartbeat(self) -> str:
        return "ping"

    def parse(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        # Bitget says to reconnect when a ping goes unanswered: a connection whose data
        # still flows but whose pongs stopped is reopened too (a silent one is already,
        # by the staleness watchdog).
        if raw == "pong":
            state[_PONG] = received
            return None
        last_pong = state.setdefault(_PONG, received)
        if received - last_pong > self.pong_timeout:
            raise Resync(f"no pong for {received - last_pong:.0f} s")
        if self.channel != BBO_CHANNEL:
            return self._parse_depth(raw, connection, state, received)
        parsed = parse_bbo(raw, connection.symbols, received)
        if parsed is None:
            return None
        seq, quote = parsed
        if seq is None or self._in_order(quote.symbol, seq, state):
            return quote
        return None

    def _in_order(self, symbol: str, seq: int, state: dict[str, Any]) -> bool:
        """Whether a snapshot push (books1, books15) with ``seq`` is to be used: not
        below the last one of its symbol (a repeat is a snapshot re-sent unchanged)."""
        # state[symbol] = [last accepted seq, pushes below it in a row]
        seen = state.get(symbol)
        if seen is None:
            state[symbol] = [seq, 0]
            return True
        if seq >= seen[0]:
            seen[0], seen[1] = seq, 0
            return True
        seen[1] += 1
        if seen[1] >= OUT_OF_ORDER_LIMIT:
            raise Resync(f"{symbol}: {seen[1]} pushes in a row below seq {seen[0]} "
                         f"(latest {seq}): the sequence restarted")
        self.dropped_out_of_order += 1
        self.problems.warning(
            "order", "dropped out-of-order push %d < %d for %s", seq, seen[0], symbol)
        return False

    # --- depth: books15 and books --------------------------------------------------------

    def _parse_depth(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        pending = Resubscriptions.of(state, timeout=self.config.stale_after_seconds,
                                     now=received, per_hour=RESUBSCRIPTIONS_PER_HOUR)
        message = _message(raw)
        if message is None:
            return None
        arg = message["arg"]
        if arg["channel"] != self.channel:
            raise ValueError(f"a push of channel {arg['channel']!r}, not {self.channel}")
        inst_id = arg["instId"]
        symbol = connection.symbols[inst_id]
        data = message["data"]
        if self.channel == BOOKS15_CHANNEL:
            return self._snapshot(inst_id, symbol, data[-1], state, pending, received)
        return self._books(inst_id, symbol, message["action"], data, state, pending, received)

    def _snapshot(self, inst_id: str, symbol: str, push: dict[str, Any], state: dict[str, Any],
                  pending: Resubscriptions, received: float) -> Quote | None:
        """A books15 snapshot: the quote of its levels, unless it is out of order or
        crossed."""
        bids = snapshot_levels(push["bids"], self.depth)
        asks = snapshot_levels(push["asks"], self.depth)
        exchange_ts = int(push["ts"]) / 1000.0
        seq = push.get("seq")
        if seq is not None and not self._in_order(symbol, int(seq), state):
            return None
        if not bids or not asks:
            return None
        if bids[0][0] >= asks[0][0]:
            state.pop(symbol, None)  # the fresh snapshot starts the sequence afresh
            self._resync(inst_id, symbol, None, pending, received,
                         f"crossed snapshot (bid {bids[0][0]:g} >= ask {asks[0][0]:g})")
        pending.arrived(symbol)
        return Quote(EXCHANGE, symbol, bids[0][0], asks[0][0], bids[0][1], asks[0][1],
                     exchange_ts, received, bids, asks)

    @staticmethod
    def _apply(book: OrderBook, action: str, push: dict[str, Any]) -> str | None:
        """Apply one push to ``book``; what is wrong with the book after it, if anything."""
        raw_seq = push.get("seq")
        seq = None if raw_seq is None else int(raw_seq)
        if action == "snapshot":
            book.reset(push["bids"], push["asks"], seq)
        else:
            last = book.update_id
            # An update that changes nothing may repeat the last seq.
            if seq is not None and last is not None and (
                    seq < last or (seq == last and (push["bids"] or push["asks"]))):
                return f"seq {seq} is not above the last seq {last} (out of order)"
            book.apply(push["bids"], push["asks"])
            book.update_id = seq
        checksum = push.get("checksum")
        # 0: no checksum (the snapshot channels, and Bitget's own snapshots at times).
        if checksum and int(checksum) != (mine := book_checksum(book)):
            return f"checksum {checksum} does not match the book's {mine}"
        if book.crossed():
            bid, ask = book.bids.best(), book.asks.best()
            assert bid is not None and ask is not None
            return f"crossed book (bid {bid[0]:g} >= ask {ask[0]:g})"
        return None

    def resubscription_arg(self, inst_id: str) -> dict[str, Any]:
        return channel_arg(self.channel, inst_id)

