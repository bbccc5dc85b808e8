"""What the fake exchanges' depth channels share: the book one client subscription was
last sent, so that each push after the snapshot is the difference, as the exchanges'
incremental channels send it."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

Level = tuple[Decimal, Decimal]


class SentBook:
    """One subscription's view of a book: price -> size per side, as last sent."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def snapshot(self, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        """The client was sent these levels whole."""
        self.bids = dict(bids)
        self.asks = dict(asks)

    def changes(self, bids: Sequence[Level], asks: Sequence[Level]
                ) -> tuple[list[Level], list[Level]]:
        """The levels that differ from what was sent (a removed level with size 0), best
        first per side; what was sent becomes ``bids``/``asks``."""
        result = []
        for sent, levels, descending in ((self.bids, bids, True), (self.asks, asks, False)):
            now = dict(levels)
            changed = [(p, s) for p, s in now.items() if sent.get(p) != s]
            changed += [(p, Decimal(0)) for p in sent if p not in now]
            changed.sort(key=lambda level: level[0], reverse=descending)
            sent.clear()
            sent.update(now)
            result.append(changed)
        return result[0], result[1]

    def add(self, side: str, price: Decimal, size: Decimal) -> None:
        """A level sent on top of the book's own (a fault: a crossed level)."""
        (self.bids if side == "bids" else self.asks)[price] = size

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        """The ``depth`` best levels per side as sent, best first."""
        bids = sorted(self.bids.items(), key=lambda level: level[0], reverse=True)[:depth]
        asks = sorted(self.asks.items(), key=lambda level: level[0])[:depth]
        return bids, asks
