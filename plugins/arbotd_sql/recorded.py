"""Reading back the raw quotes recorded with ``[storage] record_quotes = true``, for
backtests (the ``replay`` plugin duck-types :meth:`SqlStorage.recorded_quotes`).

Rows come in ``received_ts`` order (ties by insertion order), a page at a time with
keyset pagination on ``(received_ts, id)``: each page is one indexed range query, so a
long range is read in constant memory and at a constant cost per page, however far in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from arbotd import Quote
from arbotd_sql.models import RawQuote

__all__ = ["PAGE_ROWS", "recorded_exchanges", "recorded_quote_pages"]

PAGE_ROWS = 10_000


def _in_range(start: float, end: float, symbols: Sequence[str] | None,
              exchanges: Sequence[str] | None) -> Any:
    condition = (RawQuote.received_ts >= start) & (RawQuote.received_ts < end)
    if symbols:
        condition &= RawQuote.symbol.in_(list(symbols))
    if exchanges:
        condition &= RawQuote.exchange.in_(list(exchanges))
    return condition


def recorded_quote_pages(start: float, end: float, *, symbols: Sequence[str] | None = None,
                         exchanges: Sequence[str] | None = None,
                         page_rows: int = PAGE_ROWS) -> Iterator[list[Quote]]:
    """The recorded quotes with ``start <= received_ts < end`` (optionally only of some
    symbols and exchanges), in pages of up to ``page_rows``. Needs a connection open in
    the calling thread for as long as it is iterated."""
    columns = (RawQuote.id, RawQuote.exchange, RawQuote.symbol, RawQuote.bid, RawQuote.ask,
               RawQuote.bid_size, RawQuote.ask_size, RawQuote.exchange_ts,
               RawQuote.received_ts)
    lower, seen_id = start, None
    while True:
        # The lower bound moves up to the last row read, so every page is an index range
        # scan from there (an OR of two conditions would make SQLite scan from start).
        condition = _in_range(lower, end, symbols, exchanges)
        if seen_id is not None:
            condition &= ~((RawQuote.received_ts == lower) & (RawQuote.id <= seen_id))
        query = (RawQuote.select(*columns).where(condition)
                 .order_by(RawQuote.received_ts, RawQuote.id).limit(page_rows))
        rows = list(query.tuples())
        if not rows:
            return
        yield [Quote(exchange, symbol, bid, ask, bid_size, ask_size, exchange_ts, received_ts)
               for _, exchange, symbol, bid, ask, bid_size, ask_size, exchange_ts, received_ts
               in rows]
        if len(rows) < page_rows:
            return
        lower, seen_id = rows[-1][8], rows[-1][0]


def recorded_exchanges(start: float, end: float) -> list[str]:
    """The exchanges with recorded quotes in ``start <= received_ts < end``, by name."""
    query = (RawQuote.select(RawQuote.exchange).where(_in_range(start, end, None, None))
             .group_by(RawQuote.exchange).order_by(RawQuote.exchange))
    return [exchange for (exchange,) in query.tuples()]
