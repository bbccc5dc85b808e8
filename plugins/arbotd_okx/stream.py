"""The OKX spot market-data feed: the ``bbo-tbt`` channel of the public WebSocket for the
best level alone (``depth = 1``), ``books5`` up to 5 levels, ``books`` beyond (their rules
are in :mod:`arbotd_okx.books`).

Facts (exchange-protocols.md section 3.1, from OKX's ``#overview-websocket-connect`` and
``#order-book-trading-market-data-ws-order-book-channel``):

* A push is ``{"arg": {"channel": "bbo-tbt", "instId": "BTC-USDT"}, "data": [{"asks":
  [[px, sz, "0", numOrders]], "bids": [...], "ts": "<ms>", "seqId": n}]}``: a snapshot of
  the best level per side, sizes in base currency, ``ts`` the exchange's time in ms.
* The server closes a connection that has had no traffic for 30 s. The client sends the
  text ``ping`` (not JSON) and gets the text ``pong``; the feed pings every
  ``min(20 s, stale_after / 2)``, so a quiet but healthy connection always brings a
  message within ``stale_after`` and a silent one is reopened.
* Subscribe acknowledgements (``"event": "subscribe"``) carry no quote. Error events
  (``"event": "error"``, e.g. 60012 invalid request, 64003 channel not allowed) end the
  connection with a reason in the log, and the feed subscribes afresh.
* ``{"event": "notice", "code": "64008"}`` announces a service upgrade 60 s before the
  server closes the connection: the feed reconnects at once.
* ``seqId`` only grows on one connection. A snapshot channel re-sends its latest
  snapshot (the same ``seqId``) after about 60 s without change, which is accepted. A
  push whose ``seqId`` is below the last one is out of order and dropped, except the
  documented maintenance reset (``seqId < prevSeqId`` in the same push), which is
  accepted. Should the sequence restart lower without saying so, several pushes in a row
  fall below the last one: the feed then reconnects, which starts the sequence afresh.
* Subscriptions are sent in requests of at most 64 KB of args; symbols are spread over
  connections of ``max_channels_per_connection`` channels.
* Depth: a ``books`` book whose update does not follow the last ``seqId``, whose
  checksum does not match, or that is crossed (its best bid at or above its best ask), and
  a crossed ``books5`` snapshot, is out of sync: the engine forgets that symbol's quote and
  the feed resubscribes it (unsubscribe, subscribe) for a fresh snapshot, as OKX says to;
  the connection's other symbols carry on (:mod:`arbotd.exchange.resubscribe`). The
  updates still in flight for it until then are dropped.
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
from arbotd_okx.books import (
    BOOKS5_CHANNEL,
    BOOKS5_DEPTH,
    BOOKS_CHANNEL,
    BOOKS_CHANNELS_PER_CONNECTION,
    book_checksum,
    snapshot_levels,
)
from arbotd_okx.config import OkxConfig
from arbotd_okx.symbols import BBO_CHANNEL, chunk, subscribe_requests, to_okx

__all__ = ["OUT_OF_ORDER_LIMIT", "PING_INTERVAL", "OkxFeed", "channel_for", "parse_bbo"]

log = logging.getLogger(__name__)

EXCHANGE = "okx"
# OKX closes a connection after 30 s without traffic (exchange-protocols.md 3.1); a ping
# every 20 s at most keeps it open with room to spare.
PING_INTERVAL = 20.0
# The service-upgrade notice (exchange-protocols.md 3.1).
SERVICE_UPGRADE = "64008"
# Pushes in a row below the last seqId of their symbol after which the sequence is taken
# to have restarted.
OUT_OF_ORDER_LIMIT = 3


def channel_for(depth: int) -> str:
    """The channel that carries ``depth`` levels per side."""
    if depth <= 1:
        return BBO_CHANNEL
    return BOOKS5_CHANNEL if depth <= BOOKS5_DEPTH else BOOKS_CHANNEL


def parse_bbo(
    raw: str | bytes, symbols: Mapping[str, str], received_ts: float
) -> tuple[int | None, int | None, Quote] | None:
    """One message of the public WebSocket -> ``(seqId, prevSeqId, Quote)`` for a
    ``bbo-tbt`` push, ``None`` for a message that carries no quote (``pong``, a subscribe
    acknowledgement, an event of no consequence).

    ``symbols`` maps OKX's ``instId`` to the neutral symbol. Raises :class:`Resync` for
    an error event and the service-upgrade notice, and ``ValueError``, ``KeyError``,
    ``TypeError`` or ``IndexError`` for a message that is not understood (the caller
    skips it).
    """
    if raw == "pong":
        return None
    message = orjson.loads(raw)
    try:
        arg = message["arg"]
        data = message["data"]
    except KeyError:
        _event(message)
        return None
    if arg["channel"] != BBO_CHANNEL:
        raise ValueError(f"a push of channel {arg['channel']!r}, not {BBO_CHANNEL}")
    symbol = symbols[arg["instId"]]
    book = data[-1]
    bid = book["bids"][0]
    ask = book["asks"][0]
    quote = Quote(
        EXCHANGE,
        symbol,
        float(bid[0]),
        float(ask[0]),
        float(bid[1]),
        float(ask[1]),
        int(book["ts"]) / 1000.0,
        received_ts,
    )
    seq = book.get("seqId")
    prev = book.get("prevSeqId")
    return (
        int(seq) if seq is not None else None,
        int(prev) if prev is not None else None,
        quote,
    )


def _event(message: dict[str, Any]) -> None:
    """An ``event`` message: nothing to do, or :class:`Resync`. Raises ``KeyError`` for a
    message that is neither a push nor an event."""
    event = message["event"]
    if event == "error":
        raise Resync(f"OKX answered error {message.get('code')}: {message.get('msg')}")
    if event == "notice" and str(message.get("code")) == SERVICE_UPGRADE:
        raise Resync(f"service upgrade announced ({SERVICE_UPGRADE}: {message.get('msg')})")
    if event == "notice":
        log.info("okx: notice %s: %s", message.get("code"), message.get("msg"))


class OkxFeed(ResubscribedBooks, VenueFeed):
    """OKX spot market data, the best level or ``depth`` levels per side: an
    ``arbotd.ExchangeAdapter``.

    Two feeds compare equal when their settings are equal.
    """

    name = EXCHANGE
    # OKX accepts 3 new connections per second per IP (exchange-protocols.md 3.1).
    connect_interval = 0.4

    def __init__(
        self,
        config: OkxConfig,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config, backoff=backoff, clock=clock)
        self.depth = config.depth
        self.channel = channel_for(config.depth)
        # Answers to the pings are what keeps a quiet connection from looking stale.
        self.heartbeat_interval = min(PING_INTERVAL, config.stale_after_seconds / 2)
        self.dropped_out_of_order = 0
        self.sequence_resets = 0
        # Books found out of sync and resubscribed; updates dropped meanwhile.
        self.book_resyncs = 0
        self.dropped_while_resyncing = 0


    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """One connection per ``max_channels_per_connection`` symbols (at most
        :data:`~arbotd_okx.books.BOOKS_CHANNELS_PER_CONNECTION` on ``books``), each
        subscribing to the depth's channel of its instruments."""
        by_okx = {to_okx(s): s.upper() for s in symbols}
        url = self.config.resolved_ws_url()
        per_connection = self.config.max_channels_per_connection
        if self.channel == BOOKS_CHANNEL:
            per_connection = min(per_connection, BOOKS_CHANNELS_PER_CONNECTION)
        return [
            Connection(url, {i: by_okx[i] for i in group},
                       tuple(subscribe_requests(group, self.channel)))
            for group in chunk(list(by_okx), per_connection)
        ]

    def heartbeat(self) -> str:
        return "ping"

    def parse(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        if self.channel != BBO_CHANNEL:
            return self._parse_depth(raw, connection, state, received)
        parsed = parse_bbo(raw, connection.symbols, received)
        if parsed is None:
            return None
        seq, prev, quote = parsed
        if seq is None or self._in_order(quote.symbol, seq, prev, state):
            return quote
        return None

    def _in_order(self, symbol: str, seq: int, prev: int | None, state: dict[str, Any]) -> bool:
        """Whether a snapshot push (bbo-tbt, books5) with ``seqId`` ``seq`` is to be used:
        not below the last one of its symbol, or the documented maintenance reset."""
        # state[symbol] = [last accepted seqId, pushes below it in a row]
        seen = state.get(symbol)
        if seen is None:
            state[symbol] = [seq, 0]
            return True
        if seq >= seen[0]:
            seen[0], seen[1] = seq, 0
            return True
        if prev is not None and seq < prev:
            # The documented maintenance reset: the sequence restarts lower, once.
            self.sequence_resets += 1
            log.info("okx: %s sequence reset from %d to %d", symbol, seen[0], seq)
            seen[0], seen[1] = seq, 0
            return True
        seen[1] += 1
        if seen[1] >= OUT_OF_ORDER_LIMIT:
            raise Resync(
                f"{symbol}: {seen[1]} pushes in a row below seqId {seen[0]} "
                f"(latest {seq}): the sequence restarted"
            )
        self.dropped_out_of_order += 1
        self.problems.warning(
            "order", "dropped out-of-order push %d < %d for %s", seq, seen[0], symbol
        )
        return False

    # --- depth: books5 and books -------------------------------------------------------

    def _parse_depth(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        pending = Resubscriptions.of(state, timeout=self.config.stale_after_seconds,
                                     now=received)
        if raw == "pong":
            return None
        message = orjson.loads(raw)
        try:
            arg = message["arg"]
            data = message["data"]
        except KeyError:
            _event(message)
            return None
        if arg["channel"] != self.channel:
            raise ValueError(f"a push of channel {arg['channel']!r}, not {self.channel}")
        inst_id = arg["instId"]
        symbol = connection.symbols[inst_id]
        if self.channel == BOOKS5_CHANNEL:
            return self._books5(inst_id, symbol, data[-1], state, pending, received)
        return self._books(inst_id, symbol, message["action"], data, state, pending, received)

    def _books5(self, inst_id: str, symbol: str, push: dict[str, Any], state: dict[str, Any],
                pending: Resubscriptions, received: float) -> Quote | None:
        """A books5 snapshot: the quote of its levels, unless it is out of order or
        crossed."""
        bids = snapshot_levels(push["bids"], self.depth)
        asks = snapshot_levels(push["asks"], self.depth)
        exchange_ts = int(push["ts"]) / 1000.0
        seq = push.get("seqId")
        if seq is not None:
            prev = push.get("prevSeqId")
            if not self._in_order(symbol, int(seq), None if prev is None else int(prev), state):
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
        seq = push.get("seqId")
        if action == "snapshot":
            book.reset(push["bids"], push["asks"], None if seq is None else int(seq))
        else:
            prev = push.get("prevSeqId")
            if prev is not None and book.update_id is not None and int(prev) != book.update_id:
                return f"prevSeqId {prev} is not the last seqId {book.update_id} (a gap)"
            book.apply(push["bids"], push["asks"])
            book.update_id = None if seq is None else int(seq)
        checksum = push.get("checksum")
        # 0: no checksum (OKX deprecated it in 2026).
        if checksum and int(checksum) != (mine := book_checksum(book)):
            return f"checksum {checksum} does not match the book's {mine}"
        if book.crossed():
            bid, ask = book.bids.best(), book.asks.best()
            assert bid is not None and ask is not None
            return f"crossed book (bid {bid[0]:g} >= ask {ask[0]:g})"
        return None

    def resubscription_arg(self, inst_id: str) -> dict[str, Any]:
        return {"channel": self.channel, "instId": inst_id}
