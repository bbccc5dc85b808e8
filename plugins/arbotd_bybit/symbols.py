"""Exchange-neutral symbols (``BTCUSDT``) in Bybit's forms, and how topics are spread over
subscription requests and connections.

Bybit v5 spot writes symbols as the neutral form, uppercase (``BTCUSDT``); the level-1
order book of a symbol is the topic ``orderbook.1.BTCUSDT`` (exchange-protocols.md 2.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

__all__ = [
    "ARGS_PER_REQUEST",
    "MAX_ARGS_CHARS",
    "chunk_topics",
    "orderbook_topic",
    "subscribe_messages",
    "to_bybit",
]

# Spot accepts at most 10 args per subscribe request, and at most 21,000 characters of
# args per connection (exchange-protocols.md 2.1).
ARGS_PER_REQUEST = 10
MAX_ARGS_CHARS = 21_000


def to_bybit(symbol: str) -> str:
    """``"btcusdt"`` -> ``"BTCUSDT"``: Bybit wants symbols uppercase."""
    return symbol.upper()


def orderbook_topic(symbol: str, depth: int = 1) -> str:
    """``"BTCUSDT"`` -> ``"orderbook.1.BTCUSDT"``."""
    return f"orderbook.{depth}.{to_bybit(symbol)}"


def chunk_topics(topics: Sequence[str], per_connection: int) -> list[list[str]]:
    """Split ``topics`` (duplicates removed, order kept) into groups of at most
    ``per_connection`` topics and at most :data:`MAX_ARGS_CHARS` characters, one group per
    connection."""
    if per_connection < 1:
        raise ValueError(f"per_connection must be >= 1, got {per_connection}")
    groups: list[list[str]] = []
    size = 0
    for topic in dict.fromkeys(topics):
        if not groups or len(groups[-1]) >= per_connection or size + len(topic) > MAX_ARGS_CHARS:
            groups.append([])
            size = 0
        groups[-1].append(topic)
        size += len(topic)
    return groups


def subscribe_messages(topics: Sequence[str], first_req_id: int = 1) -> list[str]:
    """The subscribe requests for ``topics``, :data:`ARGS_PER_REQUEST` args each, numbered
    from ``first_req_id`` so that an answer names its request."""
    return [
        orjson.dumps({
            "req_id": str(first_req_id + n),
            "op": "subscribe",
            "args": list(topics[i : i + ARGS_PER_REQUEST]),
        }).decode()
        for n, i in enumerate(range(0, len(topics), ARGS_PER_REQUEST))
    ]
