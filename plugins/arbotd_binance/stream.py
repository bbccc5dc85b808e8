"""The Binance spot market-data feed: ``<symbol>@bookTicker`` over combined streams.

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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from arbotd import Quote
from arbotd.exchange.feed import Backoff, Connection, Resync, WebSocketFeed
from arbotd_binance.config import BinanceConfig
from arbotd_binance.symbols import (
    book_ticker_stream,
    chunk_streams,
    combined_stream_url,
    to_binance,
)

__all__ = ["Backoff", "BinanceFeed", "parse_book_ticker"]

EXCHANGE = "binance"


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


class BinanceFeed(WebSocketFeed):
    """Binance spot best bid/ask: an ``arbotd.ExchangeAdapter`` (market data).

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
        super().__init__(
            config,
            taker_fee=config.taker_fee,
            premium_baseline=config.premium_baseline,
            stale_after=config.stale_after_seconds,
            backoff=backoff,
            clock=clock,
        )
        self.config = config
        self.dropped_out_of_order = 0

    def __repr__(self) -> str:
        return f"BinanceFeed({self.config.resolved_ws_url()!r})"

    def connections(self, symbols: Sequence[str]) -> list[Connection]:
        """One combined-stream connection per ``max_streams_per_connection`` symbols."""
        by_binance = {to_binance(s): s for s in symbols}
        groups = chunk_streams(
            [book_ticker_stream(s) for s in by_binance], self.config.max_streams_per_connection
        )
        base = self.config.resolved_ws_url()
        plan = []
        for streams in groups:
            wanted = set(streams)
            carried = {b: n for b, n in by_binance.items() if book_ticker_stream(b) in wanted}
            plan.append(Connection(combined_stream_url(base, streams), carried))
        return plan

    def parse(
        self, raw: str | bytes, connection: Connection, state: dict[str, Any], received: float
    ) -> Quote | None:
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
