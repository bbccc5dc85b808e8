"""Ids that are never given out twice: handed out one at a time, without waiting, from
blocks reserved durably in storage beforehand.

A daemon killed after it used an id but before it recorded anything about it must not
give the same id to another trade when it starts again: a trade's client order ids are
derived from its id, and an exchange may accept a second order under an id it has
seen (Binance keeps client ids unique only among open orders). So ids are reserved in
blocks, on disk before any id of the block is used; a restart continues after the last
reserved block (the rest of a block is skipped, leaving a gap in the numbering).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["IdBlocks"]

log = logging.getLogger(__name__)

Reserve = Callable[[str, int], Awaitable[int]]


class IdBlocks:
    """Ids of one kind (``"trade"``).

    Without a ``reserve`` function (no durable storage) ids simply count up from
    ``first``. With one, :meth:`take` answers ``None`` until :meth:`refill` has reserved a
    block, and :attr:`wants_refill` says when the caller should start the next
    reservation (the owner runs :meth:`refill` in its nursery: :meth:`take` runs on the
    engine's hot path and cannot wait).
    """

    def __init__(self, name: str, *, first: int = 1, reserve: Reserve | None = None,
                 block: int = 16) -> None:
        self.name = name
        self.block = block
        self._reserve = reserve
        self._ranges: deque[list[int]] = deque()  # [next, end) of each reserved block
        self._refilling = False
        if reserve is None:
            self._ranges.append([first, 2**63])

    @property
    def remaining(self) -> int:
        return sum(end - start for start, end in self._ranges)

    @property
    def wants_refill(self) -> bool:
        """Whether fewer than half a block is left and no reservation is under way."""
        return (self._reserve is not None and not self._refilling
                and self.remaining < self.block // 2 + 1)

    def take(self) -> int | None:
        """The next id, or ``None`` when no reserved id is left."""
        ranges = self._ranges
        while ranges:
            current = ranges[0]
            if current[0] < current[1]:
                value = current[0]
                current[0] += 1
                return value
            ranges.popleft()
        return None

    async def refill(self) -> None:
        """Reserve the next block. Raises what the storage raises (nothing is added)."""
        if self._reserve is None or self._refilling:
            return
        self._refilling = True
        try:
            start = await self._reserve(self.name, self.block)
        finally:
            self._refilling = False
        self._ranges.append([start, start + self.block])
