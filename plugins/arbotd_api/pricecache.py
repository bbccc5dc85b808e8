"""The answer of ``/prices/current``, serialised once per change.

With 150 symbols on 3 venues the answer is about 50 KB, and building and serialising it
afresh cost more than the rest of a request. Quotes are immutable values, so each one's
JSON is kept while it is the latest of its (symbol, exchange); the whole answer is kept
while the book has not changed (the engine's quote count and book revision).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from arbotd import Quote

__all__ = ["PriceCache"]


class PriceCache:
    def __init__(self) -> None:
        self._fragments: dict[tuple[str, str], tuple[Quote, bytes]] = {}
        self._names: dict[str, bytes] = {}
        self._answer: tuple[Any, bytes] | None = None

    def answer(self, engine: Any, symbol: str | None, exchange: str | None) -> bytes:
        """``{"timestamp", "prices": {symbol: {exchange: quote}}}`` as JSON bytes;
        ``timestamp`` is when the answer was built (it is reused until a quote moves)."""
        version = (engine.quotes_processed, engine.book_revision, symbol, exchange)
        if self._answer is not None and self._answer[0] == version:
            return self._answer[1]
        rows = []
        for name, quotes in sorted(engine.book.items()):
            if symbol is not None and name != symbol:
                continue
            venues = [
                self._name(venue) + b":" + self._fragment(quote)
                for venue, quote in sorted(quotes.items())
                if exchange is None or venue == exchange
            ]
            if venues:
                rows.append(self._name(name) + b":{" + b",".join(venues) + b"}")
        body = (b'{"timestamp":' + orjson.dumps(time.time()) + b',"prices":{'
                + b",".join(rows) + b"}}")
        self._answer = (version, body)
        return body

    def _fragment(self, quote: Quote) -> bytes:
        key = (quote.symbol, quote.exchange)
        cached = self._fragments.get(key)
        if cached is not None and cached[0] is quote:
            return cached[1]
        data = orjson.dumps({"bid": quote.bid, "ask": quote.ask, "bid_size": quote.bid_size,
                             "ask_size": quote.ask_size, "timestamp": quote.received_ts})
        self._fragments[key] = (quote, data)
        return data

    def _name(self, name: str) -> bytes:
        encoded = self._names.get(name)
        if encoded is None:
            encoded = self._names[name] = orjson.dumps(name)
        return encoded
