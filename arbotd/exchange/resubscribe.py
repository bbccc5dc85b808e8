"""The bookkeeping of the resubscription step of a symbol's resync.

A depth feed whose venue resends a snapshot on subscription (OKX, Bybit) brings a broken
book back by resubscribing that symbol (the resubscription step of the feed's per-symbol
resync state machine, :class:`arbotd.exchange.feed._BookSyncs`): its parser invalidates
the book and calls :meth:`Resubscriptions.resync`, which raises
:class:`~arbotd.exchange.ResyncSymbol` with an unsubscribe and a subscribe for that
symbol; the feed makes the sink forget the symbol and sends them, and the connection's
other symbols carry on. :class:`Resubscriptions` keeps what that step needs per
connection:

* which symbols await their fresh snapshot; the updates still in flight for them are
  dropped, not taken for another gap;
* a deadline for each: a snapshot that does not come in time (a subscribe the server
  ignored) makes the whole connection start afresh (:class:`~arbotd.exchange.Resync`);
* a budget: exchanges limit subscribe requests per connection (OKX: 480 an hour,
  exchange-protocols.md 3.1), so past ``per_hour`` resubscriptions a book that keeps
  breaking reconnects instead, which also starts a fresh budget (this is what a
  flapping symbol meets, where the snapshot step has its backoff).

The parser takes the connection's :class:`Resubscriptions` from its state with
:meth:`Resubscriptions.of` at each message, which checks the deadline against the
message's time (one float comparison; pongs count, so a quiet connection is checked too).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from typing import Any, NoReturn

from arbotd.exchange.feed import Resync, ResyncSymbol

__all__ = ["RESUBSCRIPTIONS_PER_HOUR", "Resubscriptions"]

#: Resubscriptions one connection may make in an hour before it reconnects instead; two
#: requests each (unsubscribe, subscribe) keep OKX's 480 requests an hour per connection
#: in reach of the initial subscriptions.
RESUBSCRIPTIONS_PER_HOUR = 200
_HOUR = 3600.0
# The key of a connection's parser state holding its Resubscriptions (a feed's symbols,
# its other keys there, are uppercase).
_STATE_KEY = "resubscriptions"


class Resubscriptions:
    """One connection's symbols resubscribed and awaiting a fresh snapshot."""

    __slots__ = ("_awaiting", "_made", "deadline", "per_hour", "timeout")

    def __init__(self, *, timeout: float, per_hour: int = RESUBSCRIPTIONS_PER_HOUR) -> None:
        self.timeout = timeout
        self.per_hour = per_hour
        #: The earliest time by which an awaited snapshot must have come (``inf``: none
        #: awaited): past it, :meth:`check` raises.
        self.deadline = math.inf
        self._awaiting: dict[str, float] = {}
        self._made: collections.deque[float] = collections.deque()

    @classmethod
    def of(cls, state: dict[str, Any], *, timeout: float, now: float,
           per_hour: int = RESUBSCRIPTIONS_PER_HOUR) -> Resubscriptions:
        """The connection's resubscriptions, kept in its parser ``state`` (made on first
        use with ``timeout`` and ``per_hour``, the venue's bound when its subscribe
        requests are fewer than OKX's), once it is checked that no awaited snapshot is
        overdue at ``now``, the time of the message being parsed (:class:`Resync` if one
        is)."""
        pending: Resubscriptions | None = state.get(_STATE_KEY)
        if pending is None:
            pending = state[_STATE_KEY] = cls(timeout=timeout, per_hour=per_hour)
        if now >= pending.deadline:
            pending.check(now)
        return pending

    def awaiting(self, symbol: str) -> bool:
        """Whether ``symbol`` was resubscribed and its snapshot has not come yet."""
        return symbol in self._awaiting

    def resync(self, symbol: str, reason: str, messages: Sequence[str], now: float
               ) -> NoReturn:
        """Resubscribe ``symbol`` (its book already invalidated): raise
        :class:`ResyncSymbol` carrying ``messages``, or :class:`Resync` once this
        connection has spent its hour's budget."""
        made = self._made
        while made and made[0] <= now - _HOUR:
            made.popleft()
        if len(made) >= self.per_hour:
            raise Resync(f"{symbol}: {reason}; {len(made)} resubscriptions on this connection "
                         "within the hour, reconnecting instead")
        made.append(now)
        due = now + self.timeout
        self._awaiting[symbol] = due
        self.deadline = min(self.deadline, due)
        raise ResyncSymbol(symbol, reason, messages)

    def arrived(self, symbol: str) -> None:
        """A fresh snapshot of ``symbol`` came."""
        if self._awaiting.pop(symbol, None) is not None:
            self.deadline = min(self._awaiting.values(), default=math.inf)

    def check(self, now: float) -> None:
        """Raise :class:`Resync` if an awaited snapshot is overdue at ``now``; call it
        when ``now >= deadline``."""
        late = sorted(s for s, due in self._awaiting.items() if due <= now)
        if late:
            raise Resync(f"no fresh snapshot of {', '.join(late)} within {self.timeout:g} s "
                         "of resubscribing")
