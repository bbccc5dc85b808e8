"""What the feed tests of every exchange share: a sink that records what a feed
delivers, a bounded wait, and a fast backoff."""

from __future__ import annotations

from collections.abc import Callable

import trio

from arbotd import Quote
from arbotd.exchange import Backoff

# Reconnect within a fraction of a second, so fault tests stay quick.
FAST = Backoff(first=0.05, maximum=0.2, healthy_after=60.0)


class RecordingSink:
    """Stands in for the engine: keeps every quote, every change of usability and every
    symbol forgotten."""

    def __init__(self) -> None:
        self.quotes: list[Quote] = []
        self.states: list[tuple[str, bool, str]] = []
        self.forgotten: list[tuple[str, str]] = []

    def on_quote(self, quote: Quote) -> None:
        self.quotes.append(quote)

    def on_feed_state(self, exchange: str, usable: bool, reason: str = "") -> None:
        self.states.append((exchange, usable, reason))

    def forget_symbol(self, exchange: str, symbol: str) -> None:
        self.forgotten.append((exchange, symbol))

    def usable_flips(self) -> list[bool]:
        return [usable for _, usable, _ in self.states]


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Return once ``condition()`` holds; fail the test after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)
