"""The Upbit market-data feed: the ``orderbook`` type of the public WebSocket, each KRW
market and the KRW-USDT rate market (delivered as symbol ``USDTKRW``), in KRW as Upbit
quotes them; the engine converts them (:mod:`arbotd.fx`).

Facts (bitget-upbit-protocols.md 2.1, docs.upbit.com/kr/reference/websocket-orderbook):

* One request, a JSON array: ``[{"ticket"}, {"type": "orderbook", "codes":
  ["KRW-BTC.1", ...]}, {"format": "DEFAULT"}]``; the ``.N`` suffix is the level count (1,
  5, 15 or 30).
* Each push is the full top-N book: ``{"type": "orderbook", "code": "KRW-BTC",
  "timestamp": ms, "orderbook_units": [{"ask_price", "bid_price", "ask_size",
  "bid_size"}, ...], "stream_type": "SNAPSHOT"|"REALTIME"}``, numbers as JSON numbers.
  No sequence number, no checksum: each push replaces the book; ``timestamp`` is the
  only ordering key, so a push older than the last one of its market is dropped.
* Upbit sends JSON in binary frames (ccxt logs ``<Buffer 7b ...>``); text frames are
  read too.
* Keepalive: the server closes a connection idle for about 120 s. The client sends the
  text ``PING`` and gets ``{"status":"UP"}``; the feed pings every
  ``min(10 s, stale_after / 3)``, so a healthy quiet connection is never stale.
* Errors are ``{"error": {"name": "INVALID_PARAM", "message": ...}}`` (``WRONG_FORMAT``,
  ``NO_TICKET``, ``NO_CODES``...): the connection is opened again with the log saying why.
* A crossed snapshot is not traded on: the engine forgets the market until the next push.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from arbotd import Quote
from arbotd.exchange import Backoff, Connection, Resync, ResyncSymbol, VenueFeed
from arbotd_upbit.config import UpbitConfig
from arbotd_upbit.symbols import (
    RATE_MARKET,
    RATE_SYMBOL,
    chunk,
    subscribe_request,
    to_upbit,
)

__all__ = ["PING_INTERVAL", "UpbitFeed", "parse_orderbook"]

log = logging.getLogger(__name__)

EXCHANGE = "upbit"
PING_INTERVAL = 10.0
_STATUS_UP = "UP"


def parse_orderbook(
    raw: str | bytes, symbols: Mapping[str, str], received_ts: float, depth: int = 1
) -> Quote | None:
    """One message -> the quote of an ``orderbook`` push (``depth`` levels per side kept
    in ``bids``/``asks`` when above 1), ``None`` for ``{"status":"UP"}`` and other
    messages without a book. ``symbols`` maps Upbit's codes to neutral symbols.

    Raises :class:`Resync` for an error message, ``ValueError``/``KeyError``/
    ``TypeError``/``IndexError`` for one that is not understood."""
    message = orjson.loads(raw)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    kind = message.get("type")
    if kind != "orderbook":
        error = message.get("error")
        if isinstance(error, dict):
            raise Resync(f"Upbit answered {error.get('name')}: {error.get('message')}")
        if message.get("status") == _STATUS_UP or kind is not None:
            return None
        raise ValueError("neither a push nor a status")
    code = str(message["code"]).partition(".")[0]
    symbol = symbols[code]
    units = message["orderbook_units"]
    bids = tuple((float(u["bid_price"]), float(u["bid_size"])) for u in units[:depth]
                 if u["bid_price"])
    asks = tuple((float(u["ask_price"]), float(u["ask_size"])) for u in units[:depth]
                 if u["ask_price"])
    if not bids or not asks:
        return None  # one side is empty: no price to trade on
    levels = depth > 1
    return Quote(EXCHANGE, symbol, bids[0][0], asks[0][0], bids[0][1], asks[0][1],
                 int(message["timestamp"]) / 1000.0, received_ts,
                 bids if levels else None, asks if levels else None)


class UpbitFeed(VenueFeed):
    """Upbit's KRW markets: an ``arbotd.ExchangeAdapter`` quoted in KRW whose rate market
    is ``USDTKRW`` (Upbit's KRW-USDT). Two feeds compare equal when their settings do."""

    name = EXCHANGE
    quote_currency = "KRW"
    rate_symbol = RATE_SYMBOL
    # Upbit allows 5 new connections per second per IP (2.3).
    connect_interval = 0.25

    def __init__(self, config: UpbitConfig, *, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, backoff=backoff, clock=clock)
        self.config: UpbitConfig = config
        self.premium_mode = config.premium_mode
        self.premium_window_seconds = config.premium_window_seconds
        self.rate_max_age_seconds = config.rate_max_age_seconds
        self.depth = config.depth
        self.levels = config.levels()
        self.heartbeat_interval = min(PING_INTERVAL, config.stale_after_seconds / 3)
        self.dropped_out_of_order = 0
        self.crossed_books = 0
        self.unsupported_symbols: list[str] = []

    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """Connections of ``max_codes_per_connection`` markets each; the first also carries
        the rate market, whichever symbols are asked for."""
        by_market: dict[str, str] = {}
        for symbol in symbols:
            try:
                by_market[to_upbit(symbol)] = symbol.upper()
            except ValueError as err:
                self.unsupported_symbols.append(symbol)
                log.warning("upbit: %s; not watched on Upbit", err)
        if not by_market:
            return []
        by_market.pop(RATE_MARKET, None)
        markets = [RATE_MARKET, *by_market]
        by_market[RATE_MARKET] = RATE_SYMBOL
        url = self.config.resolved_ws_url()
        return [
            Connection(url, {m: by_market[m] for m in group},
                       (subscribe_request(group, self.levels),))
            for group in chunk(markets, self.config.max_codes_per_connection)
        ]

    def heartbeat(self) -> str:
        return "PING"

    def parse(self, raw: str | bytes, connection: Connection, state: dict[str, Any],
              received: float) -> Quote | None:
        quote = parse_orderbook(raw, connection.symbols, received, self.depth)
        if quote is None:
            return None
        last = state.get(quote.symbol)
        if last is not None and quote.exchange_ts < last:
            self.dropped_out_of_order += 1
            self.problems.warning("order", "dropped a push of %s older than the last one",
                                  quote.symbol)
            return None
        state[quote.symbol] = quote.exchange_ts
        if quote.bid >= quote.ask:
            self.crossed_books += 1
            # The next push replaces the book whole: nothing to resubscribe.
            raise ResyncSymbol(quote.symbol,
                               f"crossed book (bid {quote.bid:g} >= ask {quote.ask:g})")
        return quote
