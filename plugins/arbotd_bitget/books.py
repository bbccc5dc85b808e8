"""Bitget's order book channels: which one a depth uses, and the checksum of ``books``.

Facts (bitget-upbit-protocols.md 1.1, Bitget's ``spot/websocket_public_Depth-Channel``):

* ``books1`` pushes a snapshot of the best level every 60 ms (20 ms for ten majors),
  ``books5``/``books15`` snapshots of 5/15 levels every 200 ms; ``books`` pushes a
  snapshot of every level (``"action": "snapshot"``), then changes every 200 ms
  (``"action": "update"``): a known price with size ``"0"`` is removed, any other size
  replaces it, a new price is inserted in order.
* Every push carries ``seq`` (a number that "increases when the book is updated", for
  spotting out-of-order packets) and ``checksum``. Bitget does not say that ``seq``
  grows by one per push (unverified), so a jump is not taken for a gap; a ``seq`` at or
  below the last one on ``books`` is. A missed update shows in the checksum.
* ``checksum`` is the signed 32-bit CRC32 of ``bid1 price:bid1 size:ask1 price:ask1
  size:bid2...`` over the first 25 levels per side (a side that runs out is left out),
  prices and sizes as Bitget wrote them. The snapshot channels send 0; ccxt checks only
  updates. A nonzero checksum is checked on snapshots and updates alike, 0 never.
* Levels are ``[price, size]`` strings, sizes in the base coin.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from arbotd.exchange import OrderBook

__all__ = [
    "BBO_CHANNEL",
    "BOOKS15_CHANNEL",
    "BOOKS15_DEPTH",
    "BOOKS_CHANNEL",
    "CHECKSUM_LEVELS",
    "book_checksum",
    "channel_for",
    "checksum_of",
    "snapshot_levels",
]

BBO_CHANNEL = "books1"
BOOKS15_CHANNEL = "books15"
BOOKS_CHANNEL = "books"
# The deepest book books15 carries; a deeper depth needs the books channel.
BOOKS15_DEPTH = 15
CHECKSUM_LEVELS = 25


def channel_for(depth: int) -> str:
    """The channel that carries ``depth`` levels per side."""
    if depth <= 1:
        return BBO_CHANNEL
    return BOOKS15_CHANNEL if depth <= BOOKS15_DEPTH else BOOKS_CHANNEL


def checksum_of(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """Bitget's checksum of a book whose levels (``[price, size]`` as Bitget wrote them)
    are given best first; only the first :data:`CHECKSUM_LEVELS` of each side count."""
    parts: list[str] = []
    bid_count = min(len(bids), CHECKSUM_LEVELS)
    ask_count = min(len(asks), CHECKSUM_LEVELS)
    for i in range(max(bid_count, ask_count)):
        if i < bid_count:
            parts += (bids[i][0], bids[i][1])
        if i < ask_count:
            parts += (asks[i][0], asks[i][1])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def book_checksum(book: OrderBook) -> int:
    """Bitget's checksum of ``book`` (made with ``keep_text=True``)."""
    bids, asks = book.top_text(CHECKSUM_LEVELS)
    return checksum_of(bids, asks)


def snapshot_levels(levels: Sequence[Sequence[str]], depth: int
                    ) -> tuple[tuple[float, float], ...]:
    """The first ``depth`` levels of one side of a snapshot as ``(price, size)``. Raises
    ``ValueError``/``IndexError``/``TypeError`` for a level that is not two numbers."""
    return tuple((float(level[0]), float(level[1])) for level in levels[:depth])
