"""Deciding a replayed batch of quotes at once: which quotes no strategy would act on.

A backtest hands the engine quotes in batches of thousands. Most of them change nothing
but the book: their symbol's books do not cross, or cross by less than any threshold.
For such a batch the engine builds :class:`BookColumns` (with numpy, for the whole batch
in a few array operations): for every quote, the best bid and ask of its symbol on every
exchange as the book holds them once that quote is in. A strategy with a ``quiet``
method (see :class:`BatchStrategy`) answers from them, for every quote, whether its
``evaluate`` would open no signal and change nothing but rejection counts, and which
counts. The engine then only stores the quotes that every strategy calls quiet (counted
as processed, their rejections counted too) and evaluates the others one by one: the
same signals, trades and counts as evaluating every quote, in far less time. A strategy
without ``quiet``, or one answering ``None``, has every quote evaluated.

The answer must be exact, not a guess: a quiet quote is one that ``evaluate`` would
certainly have turned down, computed with the same floating-point operations in the same
order (numpy's elementwise arithmetic rounds as Python's floats do), so a replay gives
the same results with or without the shortcut (:attr:`arbotd.Engine.batch_decisions`
turns it off, for a comparison).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np

from arbotd._interfaces import MarketView
from arbotd._model import Quote

__all__ = ["BatchStrategy", "BookColumns", "QuietRows", "QuoteBatch", "book_columns"]

_exchange_of = attrgetter("exchange")
_symbol_of = attrgetter("symbol")
# What the book columns carry of each venue's quote, in the order of QuoteBatch.columns.
_FIELDS = (attrgetter("bid"), attrgetter("ask"), attrgetter("received_ts"))


class QuoteBatch(list[Quote]):
    """A batch of quotes that a reader also has as columns (``columns``: the exchange
    names and each quote's index into them, the same for symbols, then the bids, the
    asks and the ``received_ts`` as float64 arrays), which spares :func:`book_columns`
    reading them back from the quotes. A plain list of quotes does as well, a little
    slower."""

    __slots__ = ("columns",)

    def __init__(self, quotes: Iterable[Quote] = (),
                 columns: tuple[Any, ...] | None = None) -> None:
        super().__init__(quotes)
        self.columns = columns


@attrs.frozen(eq=False)
class BookColumns:
    """A batch of quotes (rows, in delivery order) with the book each one meets.

    ``exchange[i]`` and ``symbol[i]`` index ``exchanges`` and ``symbols``; ``bid[i, e]``
    and ``ask[i, e]`` are the best bid and ask of row ``i``'s symbol on
    ``exchanges[e]`` once row ``i`` is in the book (so ``bid[i, exchange[i]]`` is row
    ``i``'s own bid), NaN where the book has no quote of it; ``received[i, e]`` when
    that quote was received (``received_ts``: in a replay, the time row ``i`` is decided
    at is its own). ``exchanges`` holds every exchange of the batch and of the book's
    entries for the batch's symbols.
    """

    exchanges: tuple[str, ...]
    symbols: tuple[str, ...]
    exchange: np.ndarray
    symbol: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    received: np.ndarray

    def __len__(self) -> int:
        return len(self.exchange)

    def own(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's own bid, ask and ``received_ts``."""
        rows = np.arange(len(self.exchange))
        own = self.exchange
        return self.bid[rows, own], self.ask[rows, own], self.received[rows, own]


@attrs.frozen(eq=False)
class QuietRows:
    """A strategy's answer for a batch: ``rows[i]`` is true when ``evaluate`` would open
    no signal for row ``i``; ``rejections`` maps a reason to how many opportunities
    ``evaluate`` would have turned down for that reason, per row (counted by the engine
    for the rows it does not evaluate). ``note``, when given, is called with each quote
    the engine does not evaluate and the market view (its ``now`` set as for
    ``evaluate``), for what the strategy keeps of every quote (a trend window)."""

    rows: np.ndarray
    rejections: Mapping[str, np.ndarray] = attrs.field(factory=dict)
    note: Callable[[Quote, MarketView], None] | None = None


@runtime_checkable
class BatchStrategy(Protocol):
    """A strategy that can say which quotes of a batch it would not act on."""

    def quiet(self, view: BookColumns, market: MarketView) -> QuietRows | None:
        """For every row of ``view``: whether ``evaluate`` would return no signal and
        count which rejections. ``None`` when it cannot tell for this batch (every row
        is then evaluated)."""


def book_columns(batch: Sequence[Quote], book: Mapping[str, Mapping[str, Quote]]
                 ) -> BookColumns:
    """The :class:`BookColumns` of ``batch`` (every quote of it going into the book in
    order) starting from ``book`` (symbol -> exchange -> quote, as the engine keeps it)."""
    count = len(batch)
    columns = getattr(batch, "columns", None)
    if columns is None:
        exchange_names = list(map(_exchange_of, batch))
        symbol_names = list(map(_symbol_of, batch))
        symbol_list = list(dict.fromkeys(symbol_names))
        exchange_list = list(dict.fromkeys(exchange_names))
    else:
        exchange_list, exchange_codes, symbol_list, symbol_codes, *values = columns
    symbols = {name: index for index, name in enumerate(dict.fromkeys(symbol_list))}
    known = dict.fromkeys(exchange_list)
    for name in symbols:
        known.update(dict.fromkeys(book.get(name, ())))
    exchanges = {name: index for index, name in enumerate(known)}
    if columns is None:
        exchange = np.fromiter(map(exchanges.__getitem__, exchange_names), np.intp, count)
        symbol = np.fromiter(map(symbols.__getitem__, symbol_names), np.intp, count)
        values = [np.fromiter(map(field, batch), np.float64, count) for field in _FIELDS]
    else:
        # The reader's names may repeat or be unused: its codes translated to ours.
        exchange = np.array([exchanges[name] for name in exchange_list],
                            dtype=np.intp)[exchange_codes]
        symbol = np.array([symbols[name] for name in symbol_list], dtype=np.intp)[symbol_codes]
    width = len(exchanges)
    fields = len(_FIELDS)
    starts = np.full((fields, len(symbols), width), np.nan)
    for name, s in symbols.items():
        for venue, quote in book.get(name, {}).items():
            starts[:, s, exchanges[venue]] = [field(quote) for field in _FIELDS]
    # Rows grouped by symbol, in delivery order within a group: the quote of a venue a
    # row meets is the last one of that venue at or before it in its group, else the
    # book's from before the batch.
    order = np.argsort(symbol, kind="stable")
    grouped = symbol[order]
    group_start = np.searchsorted(grouped, grouped, side="left")
    positions = np.arange(count)
    grouped_exchange = exchange[order]
    grouped_values = [np.asarray(column, dtype=np.float64)[order] for column in values]
    # Filled in grouped order, venue by venue, then put back in delivery order at once.
    filled = np.empty((fields, width, count))
    for e in range(width):
        last = np.where(grouped_exchange == e, positions, -1)
        np.maximum.accumulate(last, out=last)
        inside = last >= group_start
        for f, column in enumerate(grouped_values):
            np.copyto(filled[f, e], starts[f, :, e][grouped])
            np.copyto(filled[f, e], column[last], where=inside)
    delivered = np.empty(count, dtype=np.intp)
    delivered[order] = positions
    # (count, width) views of (width, count) arrays: a venue's column is contiguous.
    bid, ask, received = (venues.T for venues in filled[:, :, delivered])
    return BookColumns(tuple(exchanges), tuple(symbols), exchange, symbol, bid, ask,
                       received)


def quiet_rows(strategies: Sequence[Any], view: BookColumns, market: MarketView
               ) -> tuple[np.ndarray, list[QuietRows]] | None:
    """The rows every strategy calls quiet, and each strategy's answer; ``None`` when a
    strategy has no ``quiet`` or cannot tell."""
    rows: np.ndarray | None = None
    answers = []
    for strategy in strategies:
        quiet = getattr(strategy, "quiet", None)
        if not callable(quiet):
            return None
        answer = quiet(view, market)
        if answer is None:
            return None
        answers.append(answer)
        rows = answer.rows if rows is None else rows & answer.rows
    if rows is None:
        return None
    return rows, answers
