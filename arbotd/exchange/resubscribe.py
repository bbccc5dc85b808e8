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

import orjson

from arbotd._model import Quote
from arbotd.exchange.book import OrderBook
from arbotd.exchange.feed import Resync, ResyncSymbol

__all__ = ["RESUBSCRIPTIONS_PER_HOUR", "ResubscribedBooks", "Resubscriptions"]

# What a push that is not understood raises while it is applied.
_GARBLED = (ValueError, KeyError, TypeError, IndexError)

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


class ResubscribedBooks:
    """For a feed (a :class:`~arbotd.exchange.WebSocketFeed`) whose book channel sends a
    snapshot, then updates, in ``{"op": "subscribe", "args": [...]}`` requests (OKX,
    Bitget): the pushes applied to the symbol's :class:`~arbotd.exchange.OrderBook`, and
    a book that cannot be trusted resubscribed. The venue's feed supplies
    :meth:`resubscription_arg` and :meth:`_apply`."""

    name: str
    depth: int
    book_resyncs: int
    skipped_messages: int
    dropped_while_resyncing: int

    def resubscription_arg(self, inst_id: str) -> dict[str, Any]:
        """The ``args`` entry that subscribes the book channel of ``inst_id``."""
        raise NotImplementedError

    @staticmethod
    def _apply(book: OrderBook, action: str, push: dict[str, Any]) -> str | None:
        """Apply one push to ``book``; what is wrong with the book after it, if anything."""
        raise NotImplementedError

    def _books(self, inst_id: str, symbol: str, action: str, data: list[dict[str, Any]],
               state: dict[str, Any], pending: Resubscriptions, received: float
               ) -> Quote | None:
        """A books snapshot or update, applied to the symbol's book and checked: the
        quote of its top levels."""
        exchange_ts = int(data[-1]["ts"]) / 1000.0
        book: OrderBook | None = state.get(symbol)
        if action == "update" and (book is None or not book.valid):
            if pending.awaiting(symbol):
                self.dropped_while_resyncing += 1  # in flight before the resubscription
                return None
            self._resync(inst_id, symbol, book, pending, received, "an update before any snapshot")
        if action not in ("snapshot", "update"):
            raise ValueError(f"unknown action {action!r}")
        if book is None:
            book = state[symbol] = OrderBook(keep_text=True)
        for push in data:
            try:
                problem = self._apply(book, action, push)
            except _GARBLED as err:
                # Part of it may be applied: the book can no longer be trusted.
                self.skipped_messages += 1
                problem = f"a push that is not understood ({type(err).__name__}: {err})"
            if problem is not None:
                self._resync(inst_id, symbol, book, pending, received, problem)
        if action == "snapshot":
            pending.arrived(symbol)
        return book.quote(self.name, symbol, self.depth, exchange_ts, received)

    def _resync(self, inst_id: str, symbol: str, book: OrderBook | None,
                pending: Resubscriptions, received: float, reason: str) -> NoReturn:
        """Forget the symbol's book and resubscribe it (see the module's docstring)."""
        if book is not None:
            book.invalidate()
        self.book_resyncs += 1
        arg = self.resubscription_arg(inst_id)
        messages = (orjson.dumps({"op": "unsubscribe", "args": [arg]}).decode(),
                    orjson.dumps({"op": "subscribe", "args": [arg]}).decode())
        pending.resync(symbol, reason, messages, received)
