"""The OKX spot market-data feed: the ``bbo-tbt`` channel of the public WebSocket.

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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from arbotd import Quote
from arbotd.exchange.feed import Backoff, Connection, Resync, WebSocketFeed
from arbotd_okx.config import OkxConfig
from arbotd_okx.symbols import BBO_CHANNEL, chunk, subscribe_requests, to_okx

__all__ = ["OUT_OF_ORDER_LIMIT", "PING_INTERVAL", "OkxFeed", "parse_bbo"]

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


class OkxFeed(WebSocketFeed):
    """OKX spot best bid/ask: an ``arbotd.ExchangeAdapter`` (market data).

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
        super().__init__(
            config,
            taker_fee=config.taker_fee,
            premium_baseline=config.premium_baseline,
            stale_after=config.stale_after_seconds,
            backoff=backoff,
            clock=clock,
        )
        self.config = config
        # Answers to the pings are what keeps a quiet connection from looking stale.
        self.heartbeat_interval = min(PING_INTERVAL, config.stale_after_seconds / 2)
        self.dropped_out_of_order = 0
        self.sequence_resets = 0

    def __repr__(self) -> str:
        return f"OkxFeed({self.config.resolved_ws_url()!r})"

    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """One connection per ``max_channels_per_connection`` symbols, each subscribing to
        the ``bbo-tbt`` channel of its instruments."""
        by_okx = {to_okx(s): s.upper() for s in symbols}
        url = self.config.resolved_ws_url()
        return [
            Connection(url, {i: by_okx[i] for i in group}, tuple(subscribe_requests(group)))
            for group in chunk(list(by_okx), self.config.max_channels_per_connection)
        ]

    def heartbeat(self) -> str:
        return "ping"

    def parse(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
        parsed = parse_bbo(raw, connection.symbols, received)
        if parsed is None:
            return None
        seq, prev, quote = parsed
        if seq is None:
            return quote
        # state[symbol] = [last accepted seqId, pushes below it in a row]
        seen = state.get(quote.symbol)
        if seen is None:
            state[quote.symbol] = [seq, 0]
            return quote
        if seq >= seen[0]:
            seen[0], seen[1] = seq, 0
            return quote
        if prev is not None and seq < prev:
            # The documented maintenance reset: the sequence restarts lower, once.
            self.sequence_resets += 1
            log.info("okx: %s sequence reset from %d to %d", quote.symbol, seen[0], seq)
            seen[0], seen[1] = seq, 0
            return quote
        seen[1] += 1
        if seen[1] >= OUT_OF_ORDER_LIMIT:
            raise Resync(
                f"{quote.symbol}: {seen[1]} pushes in a row below seqId {seen[0]} "
                f"(latest {seq}): the sequence restarted"
            )
        self.dropped_out_of_order += 1
        self.problems.warning(
            "order", "dropped out-of-order push %d < %d for %s", seq, seen[0], quote.symbol
        )
        return None
