"""A local order book for one symbol of one venue, kept by a feed from a snapshot and
updates, and turned into :class:`~arbotd.Quote` s carrying its top levels.

What the book knows of integrity, every feed uses the same way:

* :meth:`OrderBook.reset` installs a snapshot (a REST snapshot, a channel's ``snapshot``
  message): the book is *valid* from then on;
* :meth:`OrderBook.apply` applies changes (a size of 0 removes the level);
* :meth:`OrderBook.invalidate` marks it unusable (a sequence gap, a checksum that does
  not match): the feed must not deliver quotes from it until the next snapshot, and the
  engine treats the venue's symbol as gone;
* :meth:`OrderBook.crossed` tells a book whose best bid is at or above its best ask,
  which no real book is (a missed update): treat it like a gap.

Prices are floats (the exchange's decimal strings map to the same float every time);
``keep_text`` also keeps each level's price and size as the exchange wrote them, for
checksums computed over the exchange's own strings (OKX, Bitget).

Cost: a change is a bisect into a sorted list (and, for a new or removed price, a memmove
of the levels behind it); :meth:`top` copies ``depth`` levels from two lists, or gives the
levels it gave last time when no change has reached them since.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from arbotd._model import Quote

__all__ = ["Level", "OrderBook"]

Level = tuple[float, float]


class _Side:
    """One side, best first: ``keys`` are the prices times ``sign`` (-1 for bids, so that
    one ascending list serves both sides) and ``sizes`` the sizes in the same order, so
    that the top levels are two slices. The top last asked for is kept until a change
    reaches it: a change deeper in the book leaves it as it was."""

    __slots__ = ("_top", "_top_depth", "keys", "sign", "sizes", "text")

    def __init__(self, descending: bool, keep_text: bool) -> None:
        self.sign = -1.0 if descending else 1.0
        self.keys: list[float] = []  # sign * price, ascending: best first
        self.sizes: list[float] = []
        self.text: dict[float, tuple[str, str]] | None = {} if keep_text else None
        self._top: tuple[Level, ...] = ()
        self._top_depth = 0  # the depth _top was made for; 0: none kept

    def clear(self) -> None:
        self.keys.clear()
        self.sizes.clear()
        if self.text is not None:
            self.text.clear()
        self._top_depth = 0

    def set(self, price: float, size: float, text: tuple[str, str] | None = None) -> None:
        keys = self.keys
        key = self.sign * price
        index = bisect.bisect_left(keys, key)
        found = index < len(keys) and keys[index] == key
        if size <= 0.0:
            if not found:
                return
            del keys[index]
            del self.sizes[index]
            if self.text is not None:
                self.text.pop(price, None)
        else:
            if found:
                self.sizes[index] = size
            else:
                keys.insert(index, key)
                self.sizes.insert(index, size)
            if self.text is not None and text is not None:
                self.text[price] = text
        if index < self._top_depth:
            self._top_depth = 0

    def best(self) -> Level | None:
        if not self.keys:
            return None
        return self.sign * self.keys[0], self.sizes[0]

    def top(self, depth: int) -> tuple[Level, ...]:
        if depth == self._top_depth:
            return self._top
        prices = self.keys[:depth]
        if self.sign < 0:
            prices = [-key for key in prices]
        top = tuple(zip(prices, self.sizes[:depth], strict=True))
        self._top, self._top_depth = top, depth
        return top

    def top_text(self, depth: int) -> list[tuple[str, str]]:
        assert self.text is not None
        sign, text = self.sign, self.text
        return [text[sign * key] for key in self.keys[:depth]]


class OrderBook:
    """One symbol's book on one venue. ``update_id`` is the exchange's sequence number
    of the last change applied (whatever its exchange calls it), for gap checks."""

    __slots__ = ("asks", "bids", "update_id", "valid")

    def __init__(self, *, keep_text: bool = False) -> None:
        self.bids = _Side(descending=True, keep_text=keep_text)
        self.asks = _Side(descending=False, keep_text=keep_text)
        self.update_id: int | None = None
        self.valid = False

    def reset(self, bids: Iterable[tuple[str, str]], asks: Iterable[tuple[str, str]],
              update_id: int | None = None) -> None:
        """Install a snapshot (levels as the exchange's ``(price, size)`` strings); the
        book is valid from now on."""
        self.bids.clear()
        self.asks.clear()
        self.apply(bids, asks)
        self.update_id = update_id
        self.valid = True

    def apply(self, bids: Iterable[tuple[str, str]], asks: Iterable[tuple[str, str]]
              ) -> None:
        """Apply changes: each level's new size, ``"0"`` removing it. Raises
        ``ValueError`` for a level that is not two numbers (garbage)."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            keep = side.text is not None
            for level in levels:
                price_text, size_text = level[0], level[1]
                side.set(float(price_text), float(size_text),
                         (price_text, size_text) if keep else None)

    def invalidate(self) -> None:
        """The book can no longer be trusted (a gap, a failed checksum): empty it; it is
        valid again after the next :meth:`reset`."""
        self.bids.clear()
        self.asks.clear()
        self.update_id = None
        self.valid = False

    def crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def top(self, depth: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The ``depth`` best levels of each side, best first."""
        return self.bids.top(depth), self.asks.top(depth)

    def top_text(self, depth: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The ``depth`` best levels of each side as the exchange wrote them (books made
        with ``keep_text``)."""
        return self.bids.top_text(depth), self.asks.top_text(depth)

    def quote(self, exchange: str, symbol: str, depth: int, exchange_ts: float,
              received_ts: float) -> Quote | None:
        """The quote of the book's best levels and its top ``depth`` levels; ``None``
        while the book is not valid or a side is empty."""
        if not self.valid:
            return None
        bids, asks = self.bids.top(depth), self.asks.top(depth)
        if not bids or not asks:
            return None
        (bid, bid_size), (ask, ask_size) = bids[0], asks[0]
        return Quote(exchange, symbol, bid, ask, bid_size, ask_size, exchange_ts,
                     received_ts, bids, asks)
