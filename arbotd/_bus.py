"""The event bus: prices, signals, trades and status changes fanned out to subscribers.

The engine publishes synchronously on the hot path, so publishing never awaits, blocks or
waits for a subscriber. Each :class:`Subscription` has its own bounded buffer, drained by
its consumer (an API WebSocket client, the storage writer) with ``receive()``.

Ordering. A subscription holds one FIFO of slots in publish order. A signal, trade or
status event is a slot of its own and is never coalesced. A price takes a slot keyed by
``(symbol, exchange)`` when that key is not already pending; a newer quote of a pending
key replaces it *in place* (``coalesced`` counts these). So events arrive in publish
order, except that a coalesced price arrives where its key first became pending, with the
newest values; a signal published after a price is read after it.

Bounds. Pending prices are at most one per key. Non-price events are never dropped
silently: a subscription with more than ``max_pending`` of them unread is closed
("subscriber too slow: N events behind"), its pending events are discarded, and its next
``receive()`` raises :class:`SubscriptionClosed`. The publisher is never slowed.

Filters. ``kinds`` applies to every event, ``symbols`` (``None`` = all) to prices only.
They are checked on publish and again on read, so after ``set_symbols``/``set_kinds`` an
already pending event that is no longer wanted is skipped.

Cost. With no price subscriber ``publish_price`` is one attribute check; per matching
subscriber it is a dict lookup and store, plus a deque append for a key not pending. Only
a reader that has to wait pays for waking: ``receive()`` parks on a ``trio.Event`` made
just then, which the publisher sets if present. All of it runs in the trio thread.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable
from typing import cast

import attrs
import trio

from arbotd._errors import ArbotError
from arbotd._model import Quote

__all__ = ["KINDS", "Bus", "Event", "Subscription", "SubscriptionClosed"]

log = logging.getLogger(__name__)

KINDS = frozenset({"price", "signal", "trade", "status"})


@attrs.frozen(slots=True)
class Event:
    """One bus event. ``payload`` is a :class:`~arbotd._model.Quote` for ``"price"``, a
    ``Signal`` for ``"signal"``, a ``Trade`` for ``"trade"`` and a dict for ``"status"``."""

    kind: str
    payload: object


class SubscriptionClosed(ArbotError):
    """Raised by :meth:`Subscription.receive` once the subscription is closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _as_set(values: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a collection of strings, not the string {values!r}")
    return frozenset(values)


def _check_kinds(kinds: Iterable[str]) -> frozenset[str]:
    wanted = _as_set(kinds, "kinds")
    if unknown := wanted - KINDS:
        raise ValueError(f"unknown event kinds {sorted(unknown)}; known: {sorted(KINDS)}")
    return wanted


_PriceKey = tuple[str, str]


class Subscription:
    """A subscriber's view of the bus: ``with bus.subscribe(...) as sub:`` then
    ``async for event in sub`` (or ``await sub.receive()``). Leaving the ``with`` block
    unsubscribes. Iteration raises :class:`SubscriptionClosed` like ``receive()``."""

    __slots__ = (
        "_backlog", "_bus", "_kinds", "_max_pending", "_prices", "_queue", "_symbols",
        "_waiter", "closed_reason", "coalesced",
    )

    def __init__(
        self, bus: Bus, kinds: frozenset[str], symbols: frozenset[str] | None, max_pending: int
    ) -> None:
        self._bus = bus
        self._kinds = kinds
        self._symbols = symbols
        self._max_pending = max_pending
        self._queue: collections.deque[_PriceKey | Event] = collections.deque()
        self._prices: dict[_PriceKey, Quote] = {}
        self._backlog = 0  # unread non-price events in _queue
        self._waiter: trio.Event | None = None
        self.closed_reason: str | None = None
        self.coalesced = 0

    def __repr__(self) -> str:
        state = f"closed: {self.closed_reason}" if self.closed_reason else "open"
        return f"<Subscription {sorted(self._kinds)} {state}, {len(self._queue)} pending>"

    def receive_nowait(self) -> Event:
        """The next event; raises ``trio.WouldBlock`` when none is pending, and
        :class:`SubscriptionClosed` once closed."""
        if self.closed_reason is not None:
            raise SubscriptionClosed(self.closed_reason)
        queue = self._queue
        while queue:
            item = queue.popleft()
            if isinstance(item, Event):
                self._backlog -= 1
                if item.kind in self._kinds:
                    return item
            else:
                quote = self._prices.pop(item)
                symbols = self._symbols
                if "price" in self._kinds and (symbols is None or item[0] in symbols):
                    return Event("price", quote)
        raise trio.WouldBlock

    async def receive(self) -> Event:
        """The next event, waiting for one. Raises :class:`SubscriptionClosed` once the
        subscription is closed (by :meth:`close`, by a too-slow reader, or at shutdown)."""
        # The checkpoint pattern of trio's memory channels: always a checkpoint, but one
        # that cannot lose an event already taken off the queue.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            event = self.receive_nowait()
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return event
        if self._waiter is not None:
            raise trio.BusyResourceError("another task is already receiving on this subscription")
        while True:
            waiter = self._waiter = trio.Event()
            try:
                await waiter.wait()
            finally:
                if self._waiter is waiter:
                    self._waiter = None
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                continue  # woken by an event that a filter change made unwanted

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.receive()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, reason: str = "closed") -> None:
        """Unsubscribe and discard pending events. Closing twice keeps the first reason."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self._queue.clear()
        self._prices.clear()
        self._backlog = 0
        self._bus._remove(self)
        self._wake()

    def set_symbols(self, symbols: Iterable[str] | None) -> None:
        """Change the price filter (``None`` = every symbol)."""
        self._symbols = None if symbols is None else _as_set(symbols, "symbols")

    def set_kinds(self, kinds: Iterable[str]) -> None:
        """Change which kinds of events are delivered."""
        self._kinds = _check_kinds(kinds)
        self._bus._rebuild()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()


class Bus:
    """Fans events out to subscriptions. Publishing never blocks, awaits or raises."""

    __slots__ = ("_closed", "_price_subscribers", "_subscribers")

    def __init__(self) -> None:
        # Tuples, replaced on every change, so a publish loop can close a subscription
        # (too slow) while iterating.
        self._subscribers: tuple[Subscription, ...] = ()
        self._price_subscribers: tuple[Subscription, ...] = ()
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self,
        *,
        kinds: Iterable[str] = ("price", "signal", "trade", "status"),
        symbols: Iterable[str] | None = None,
        max_pending: int = 1000,
    ) -> Subscription:
        """A new subscription. After :meth:`close` it is returned already closed."""
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        sub = Subscription(
            self,
            _check_kinds(kinds),
            None if symbols is None else _as_set(symbols, "symbols"),
            max_pending,
        )
        if self._closed:
            sub.closed_reason = "shutting down"
        else:
            self._subscribers += (sub,)
            self._rebuild()
        return sub

    @property
    def has_price_subscribers(self) -> bool:
        return bool(self._price_subscribers)

    def publish_price(self, quote: Quote) -> None:
        """Publish a quote (the hot path): coalesced per (symbol, exchange) per subscriber."""
        subscribers = self._price_subscribers
        if not subscribers:
            return
        symbol = quote.symbol
        key = (symbol, quote.exchange)
        for sub in subscribers:
            symbols = sub._symbols
            if symbols is not None and symbol not in symbols:
                continue
            prices = sub._prices
            if key in prices:
                sub.coalesced += 1
                prices[key] = quote
            else:
                # Only a reader with nothing pending can be parked, so only a new slot
                # needs the wake-up check.
                prices[key] = quote
                sub._queue.append(key)
                if sub._waiter is not None:
                    sub._wake()

    def publish(self, kind: str, payload: object) -> None:
        """Publish a signal, trade or status event (a ``"price"`` goes to
        :meth:`publish_price`). Closes a subscription that falls ``max_pending`` behind."""
        if kind == "price":
            self.publish_price(cast(Quote, payload))
            return
        subscribers = self._subscribers
        if not subscribers:
            return
        event = Event(kind, payload)
        for sub in subscribers:
            if kind not in sub._kinds:
                continue
            sub._queue.append(event)
            sub._backlog += 1
            if sub._backlog > sub._max_pending:
                reason = f"subscriber too slow: {sub._backlog} events behind"
                log.warning("bus: closing %r: %s", sub, reason)
                sub.close(reason)
            elif sub._waiter is not None:
                sub._wake()

    def close(self) -> None:
        """Close every subscription ("shutting down"); later subscriptions start closed."""
        self._closed = True
        for sub in self._subscribers:
            sub.close("shutting down")

    def _remove(self, sub: Subscription) -> None:
        self._subscribers = tuple(s for s in self._subscribers if s is not sub)
        self._rebuild()

    def _rebuild(self) -> None:
        self._price_subscribers = tuple(s for s in self._subscribers if "price" in s._kinds)
