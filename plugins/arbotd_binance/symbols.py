"""Exchange-neutral symbols (``BTCUSDT``) in Binance's forms: ``BTCUSDT`` in messages and
REST, ``btcusdt@bookTicker`` or ``btcusdt@depth@100ms`` as a stream name (stream symbols
are lowercase)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "book_ticker_stream",
    "chunk_streams",
    "combined_stream_url",
    "depth_stream",
    "to_binance",
]


def to_binance(symbol: str) -> str:
    """``"BTCUSDT"`` -> ``"BTCUSDT"``: Binance spot writes symbols as the neutral form."""
    return symbol.upper()


def book_ticker_stream(symbol: str) -> str:
    """``"BTCUSDT"`` -> ``"btcusdt@bookTicker"``."""
    return f"{symbol.lower()}@bookTicker"


def depth_stream(symbol: str) -> str:
    """``"BTCUSDT"`` -> ``"btcusdt@depth@100ms"``: the diff-depth stream, every 100 ms."""
    return f"{symbol.lower()}@depth@100ms"


def chunk_streams(streams: Sequence[str], per_connection: int) -> list[list[str]]:
    """Split ``streams`` (duplicates removed, order kept) into groups of at most
    ``per_connection``, one group per connection."""
    if per_connection < 1:
        raise ValueError(f"per_connection must be >= 1, got {per_connection}")
    unique = list(dict.fromkeys(streams))
    return [unique[i : i + per_connection] for i in range(0, len(unique), per_connection)]


def combined_stream_url(base_url: str, streams: Sequence[str]) -> str:
    """``{base}/stream?streams=a/b``: events arrive as ``{"stream": ..., "data": ...}``."""
    return f"{base_url.rstrip('/')}/stream?streams={'/'.join(streams)}"
