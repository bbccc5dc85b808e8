"""OKX's order book channels beyond the best level: which one a depth uses, and the
checksum of the ``books`` channel.

Facts (exchange-protocols.md section 3.1, OKX's
``#order-book-trading-market-data-ws-order-book-channel``):

* ``books5`` pushes a snapshot of 5 levels per side every 100 ms when it changed, with a
  ``seqId``; ``books`` pushes a 400-level snapshot (``"action": "snapshot"``,
  ``prevSeqId`` -1), then updates every 100 ms (``"action": "update"``), each level's new
  size, ``"0"`` removing it. Each update's ``prevSeqId`` is the ``seqId`` of the push
  before it; after about a minute without change an update comes with no levels and
  ``prevSeqId == seqId``; maintenance may reset the sequence once (``seqId <
  prevSeqId``, its ``prevSeqId`` still the last ``seqId``). Anything else is a gap: OKX
  says to resubscribe.
* ``checksum`` is the signed 32-bit CRC32 of the top 25 levels of each side, bid and ask
  alternating (``bid1 price:bid1 size:ask1 price:ask1 size:bid2 ...``, a side that runs
  out is left out), the prices and sizes as OKX wrote them. OKX deprecated it in 2026:
  it is then always 0 and no longer checked; ``seqId``/``prevSeqId`` remain.
  (Every checksum of the books recorded in ``OKX.ws.1.0``, May 2022, matches the book
  rebuilt from it by this rule.)
* Levels are ``[price, size, "0", orders]``, sizes in base currency for spot.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from arbotd.exchange import OrderBook

__all__ = [
    "BOOKS5_CHANNEL",
    "BOOKS5_DEPTH",
    "BOOKS_CHANNEL",
    "BOOKS_CHANNELS_PER_CONNECTION",
    "CHECKSUM_LEVELS",
    "book_checksum",
    "checksum_of",
    "snapshot_levels",
]

BOOKS5_CHANNEL = "books5"
BOOKS_CHANNEL = "books"
# The deepest book books5 carries; a deeper depth needs the books channel.
BOOKS5_DEPTH = 5
# OKX advises fewer than 30 channels per connection for its 50- and 400-level books.
BOOKS_CHANNELS_PER_CONNECTION = 30
CHECKSUM_LEVELS = 25


def checksum_of(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """OKX's checksum of a book whose levels (``[price, size, ...]`` as OKX wrote them)
    are given best first; only the first :data:`CHECKSUM_LEVELS` of each side count."""
    parts: list[str] = []
    bid_count = min(len(bids), CHECKSUM_LEVELS)
    ask_count = min(len(asks), CHECKSUM_LEVELS)
    for i in range(max(bid_count, ask_count)):
        if i < bid_count:
            level = bids[i]
            parts += (level[0], level[1])
        if i < ask_count:
            level = asks[i]
            parts += (level[0], level[1])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def book_checksum(book: OrderBook) -> int:
    """OKX's checksum of ``book`` (made with ``keep_text=True``)."""
    bids, asks = book.top_text(CHECKSUM_LEVELS)
    return checksum_of(bids, asks)


def snapshot_levels(levels: Sequence[Sequence[str]], depth: int
                    ) -> tuple[tuple[float, float], ...]:
    """The first ``depth`` levels of one side of a ``books5`` snapshot as ``(price,
    size)``. Raises ``ValueError``/``IndexError``/``TypeError`` for a level that is not
    two numbers."""
    return tuple((float(level[0]), float(level[1])) for level in levels[:depth])
