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

Readers hand a backtest its quotes as :class:`QuoteBatch` objects: the decoded fields of
the quotes, each ``Quote`` object built only when it is asked for. Of a run of quiet
quotes the engine builds only those the book keeps (each venue's last quote of a symbol
in the run), so building objects, the larger part of reading a quote, is paid mostly
for the quotes a strategy looks at.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any, Protocol, overload, runtime_checkable

import attrs
import numpy as np

from arbotd._interfaces import MarketView
from arbotd._model import Quote

__all__ = ["BatchStrategy", "BookColumns", "BookLevels", "QuietRows", "QuoteBatch",
           "book_columns", "build_quotes", "merge_batches", "recoded"]

_exchange_of = attrgetter("exchange")
_symbol_of = attrgetter("symbol")
_QUOTE_FIELDS = attrs.fields(Quote)
# What the book columns carry of each venue's quote, in the order of QuoteBatch.columns:
# read from the quotes, or taken from a batch's fields.
_BOOK_FIELDS = ("bid", "ask", "received_ts")
_FIELDS = tuple(map(attrgetter, _BOOK_FIELDS))
_FIELD_INDEXES = tuple([field.name for field in _QUOTE_FIELDS].index(name)
                       for name in _BOOK_FIELDS)
_RECEIVED = _FIELD_INDEXES[_BOOK_FIELDS.index("received_ts")]
_SETTERS = tuple(getattr(Quote, field.name).__set__ for field in _QUOTE_FIELDS)
_NEW = object.__new__
# Quote's __init__ only stores its arguments (no validator, converter or post-init):
# then the same objects can be made a column at a time.
_PLAIN_QUOTE = not hasattr(Quote, "__attrs_post_init__") and all(
    field.validator is None and field.converter is None for field in _QUOTE_FIELDS)


def build_quotes(*fields: Sequence[Any]) -> list[Quote]:
    """``Quote(*row)`` for each row of ``fields`` (a sequence per field, in ``Quote``'s
    field order; fields left out get their default), made a field at a time: objects
    allocated in one pass, then each field stored for all of them in one C-level loop,
    instead of a Python call of ``Quote.__init__`` per row (its frozen setattr costs ten
    calls). Equal to ``list(map(Quote, *fields))``, in about two thirds of the time."""
    if not _PLAIN_QUOTE:
        return list(map(Quote, *fields))
    count = len(fields[0])
    quotes = list(map(_NEW, itertools.repeat(Quote, count)))
    consume = collections.deque(maxlen=0).extend
    for index, setter in enumerate(_SETTERS):
        values = (fields[index] if index < len(fields)
                  else itertools.repeat(_QUOTE_FIELDS[index].default, count))
        consume(map(setter, quotes, values))
    return quotes


class QuoteBatch(Sequence[Quote]):
    """A batch of quotes as a reader decoded it, each :class:`~arbotd.Quote` built only
    when asked for (by index, by slice, or all at once by iterating). A replay asks for
    few: of a run of quotes that only go into the book, the book keeps each venue's last
    quote of a symbol (:meth:`latest`, :meth:`tallies`).

    ``fields`` are a list per field of ``Quote`` in its field order (at least up to
    ``received_ts``; the rest take their defaults). A reader that decoded a batch into
    arrays hands them as they are (:meth:`coded`): a field becomes a list, and a quote an
    object, only when asked for.

    :attr:`columns` are the exchange names and each quote's index into them, the same for
    symbols, then the bids, the asks and the ``received_ts`` as float64 arrays (for
    :func:`book_columns`): given by a reader that has them (a Parquet file's
    dictionaries), else made from ``fields`` when first asked for. A plain list of
    quotes does as well as a batch, a little slower."""

    __slots__ = ("_arrays", "_columns", "_counted", "_counts", "_fields", "_next", "_quotes",
                 "_received")

    def __init__(self, fields: Sequence[Sequence[Any]],
                 columns: tuple[Any, ...] | None = None) -> None:
        self._fields: Sequence[Sequence[Any]] | None = fields
        self._arrays: list[Any] | None = None
        self._columns = columns
        self._quotes: list[Quote] | None = None
        self._received: Sequence[float] | None = None
        self._next: np.ndarray | None = None
        self._counts: list[list[int]] | None = None
        self._counted: list[str] = []

    @classmethod
    def coded(cls, columns: tuple[Any, ...], bid_size: np.ndarray, ask_size: np.ndarray,
              exchange_ts: np.ndarray, *more: Sequence[Any]) -> QuoteBatch:
        """The batch of a reader's ``columns`` (see the class: names and codes, bids, asks,
        ``received_ts``), the sizes and ``exchange_ts`` as arrays too, and ``more``
        fields after ``received_ts`` (book levels) as lists or :class:`BookLevels`.
        Nothing is converted to Python objects until a quote or a field is asked for,
        and then only that."""
        exchanges, exchange, symbols, symbol, bid, ask, received = columns
        batch = cls((), columns)
        batch._fields = None
        batch._arrays = [_Names(exchanges, exchange), _Names(symbols, symbol), bid, ask,
                         bid_size, ask_size, exchange_ts, received, *more]
        return batch

    @classmethod
    def of(cls, quotes: Sequence[Quote], columns: tuple[Any, ...] | None = None
           ) -> QuoteBatch:
        """The batch of ``quotes`` (built already)."""
        fields = [list(map(attrgetter(field.name), quotes)) for field in _QUOTE_FIELDS]
        batch = cls(fields, columns)
        batch._quotes = list(quotes)
        return batch

    @property
    def fields(self) -> Sequence[Sequence[Any]]:
        """A list per field, in ``Quote``'s field order (made once, when first asked for,
        in a batch of arrays)."""
        if self._fields is None:
            assert self._arrays is not None
            self._fields = [_whole(array) for array in self._arrays]
        return self._fields

    def __len__(self) -> int:
        if self._fields is None:
            assert self._arrays is not None
            return len(self._arrays[_RECEIVED])
        return len(self._fields[0])

    @overload
    def __getitem__(self, index: int) -> Quote: ...

    @overload
    def __getitem__(self, index: slice) -> list[Quote]: ...

    def __getitem__(self, index: int | slice) -> Quote | list[Quote]:
        if self._quotes is not None:
            return self._quotes[index]
        if isinstance(index, slice):
            return build_quotes(*self._take(index))
        if self._fields is None:
            assert self._arrays is not None
            return Quote(*[_one(array, index) for array in self._arrays])
        return Quote(*[field[index] for field in self._fields])

    def __iter__(self) -> Iterator[Quote]:
        return iter(self.quotes())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, QuoteBatch):
            return self.quotes() == other.quotes()
        if isinstance(other, list):
            return self.quotes() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"QuoteBatch({self.quotes()!r})"

    def quotes(self) -> list[Quote]:
        """Every quote of the batch (built once)."""
        if self._quotes is None:
            self._quotes = build_quotes(*self.fields)
        return self._quotes

    @property
    def columns(self) -> tuple[Any, ...]:
        """Exchange names, exchange codes, symbol names, symbol codes, bids, asks and
        ``received_ts`` (see the class)."""
        if self._columns is None:
            fields = self.fields
            self._columns = (*_coded(fields[0]), *_coded(fields[1]),
                             *(np.asarray(fields[index], dtype=np.float64)
                               for index in _FIELD_INDEXES))
        return self._columns

    @property
    def received(self) -> Sequence[float]:
        """Each quote's ``received_ts``, in order (a list)."""
        if self._received is None:
            self._received = (self._fields[_RECEIVED] if self._fields is not None
                              else _whole(self._arrays[_RECEIVED]))  # type: ignore[index]
        return self._received

    def _take(self, rows: slice | np.ndarray) -> list[list[Any]]:
        """Each field's values at ``rows`` (a slice, or an array of indexes), as lists."""
        if self._fields is None:
            assert self._arrays is not None
            return [_taken(array, rows) for array in self._arrays]
        if isinstance(rows, slice):
            return [list(field[rows]) for field in self._fields]
        picked = rows.tolist()
        return [list(map(field.__getitem__, picked)) for field in self._fields]

    def rows(self, start: int, end: int) -> QuoteBatch:
        """The batch of the quotes ``start`` to ``end`` (excluded), nothing built (the
        batch itself when that is all of it)."""
        if start <= 0 and end >= len(self):
            return self
        part = QuoteBatch((), None)
        part._fields = (None if self._fields is None
                        else [field[start:end] for field in self._fields])
        part._arrays = (None if self._arrays is None
                        else [_sliced(array, start, end) for array in self._arrays])
        part._quotes = None if self._quotes is None else self._quotes[start:end]
        part._received = None if self._received is None else self._received[start:end]
        if self._columns is not None:
            exchanges, exchange, symbols, symbol, *numbers = self._columns
            part._columns = (exchanges, exchange[start:end], symbols, symbol[start:end],
                             *(column[start:end] for column in numbers))
        return part

    def latest(self, start: int, end: int) -> list[Quote]:
        """Of the quotes ``start`` to ``end`` (excluded), the last of each exchange and
        symbol, in order: what they leave in a book. (A name may come twice, under two
        of the reader's codes: then both, the later last.)"""
        if self._next is None:
            self._tally()
        assert self._next is not None
        rows = np.flatnonzero(self._next[start:end] >= end)
        rows += start
        if self._quotes is not None:
            return list(map(self._quotes.__getitem__, rows.tolist()))
        return build_quotes(*self._take(rows))

    def tallies(self, start: int, end: int) -> dict[str, int]:
        """How many of the quotes ``start`` to ``end`` (excluded) each exchange has."""
        if self._counts is None:
            self._tally()
        counts: dict[str, int] = {}
        for name, running in zip(self._counted, self._counts, strict=True):
            count = running[end] - running[start]
            if count:
                counts[name] = counts.get(name, 0) + count
        return counts

    def _tally(self) -> None:
        # For each quote, the next of the same exchange and symbol (or the batch's size),
        # and each exchange code's running count of quotes.
        size = len(self)
        exchanges, exchange, _, symbol = self.columns[:4]
        exchange = np.asarray(exchange, dtype=np.intp)
        symbol = np.asarray(symbol, dtype=np.intp)
        width = max(len(exchanges), 1)
        keys = symbol * width + exchange
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        same = ordered[1:] == ordered[:-1]
        following = np.full(size, size, dtype=np.intp)
        following[order[:-1][same]] = order[1:][same]
        counts = np.zeros((len(exchanges), size + 1), dtype=np.intp)
        for code in range(len(exchanges)):
            np.cumsum(exchange == code, out=counts[code, 1:])
        self._next, self._counts, self._counted = following, counts.tolist(), list(exchanges)


class _Names:
    """A column of names as a reader decoded it: the distinct ``names`` and each row's
    index into them."""

    __slots__ = ("codes", "names")

    def __init__(self, names: Sequence[str], codes: np.ndarray) -> None:
        self.names = names
        self.codes = codes


class BookLevels:
    """A column of book levels as a reader decoded it: every row's levels in flat
    ``prices`` and ``sizes`` arrays, row ``i``'s from ``starts[i]`` to ``ends[i]``
    (excluded; equal for a row without levels, whose field is ``None``). A row's levels
    become a tuple of ``(price, size)`` pairs only when its quote is built."""

    __slots__ = ("ends", "prices", "sizes", "starts")

    def __init__(self, prices: np.ndarray, sizes: np.ndarray, starts: np.ndarray,
                 ends: np.ndarray) -> None:
        self.prices = prices
        self.sizes = sizes
        self.starts = starts
        self.ends = ends

    def __len__(self) -> int:
        return len(self.starts)

    def rows(self, rows: slice | np.ndarray) -> BookLevels:
        return BookLevels(self.prices, self.sizes, self.starts[rows], self.ends[rows])

    def gathered(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the rows' levels are in ``prices`` and ``sizes``, all of them in row
        order, and where each row's begin among them (and the last row's end)."""
        lengths = self.ends - self.starts
        bounds = np.zeros(len(lengths) + 1, dtype=np.intp)
        np.cumsum(lengths, out=bounds[1:])
        return np.arange(bounds[-1]) + np.repeat(self.starts - bounds[:-1], lengths), bounds

    def tuples(self) -> list[tuple[tuple[float, float], ...] | None]:
        """Each row's levels as ``((price, size), ...)``, ``None`` for a row without."""
        flat, bounds = self.gathered()
        pairs = list(zip(self.prices[flat].tolist(), self.sizes[flat].tolist(), strict=True))
        return [tuple(pairs[low:high]) if high > low else None
                for low, high in itertools.pairwise(bounds.tolist())]


def _whole(array: Any) -> list[Any]:
    """A field of a batch of arrays (see :meth:`QuoteBatch.coded`) as a list."""
    if isinstance(array, _Names):
        return list(map(array.names.__getitem__, array.codes.tolist()))
    if isinstance(array, BookLevels):
        return array.tuples()
    if isinstance(array, np.ndarray):
        return array.tolist()
    return list(array)


def _taken(array: Any, rows: slice | np.ndarray) -> list[Any]:
    """The values of a field of a batch of arrays at ``rows``, as a list."""
    if isinstance(array, _Names):
        return list(map(array.names.__getitem__, array.codes[rows].tolist()))
    if isinstance(array, BookLevels):
        return array.rows(rows).tuples()
    if isinstance(array, np.ndarray):
        return array[rows].tolist()  # type: ignore[no-any-return]
    if isinstance(rows, slice):
        return list(array[rows])
    return list(map(array.__getitem__, rows.tolist()))


def _one(array: Any, index: int) -> Any:
    """The value of a field of a batch of arrays at ``index``."""
    if isinstance(array, _Names):
        return array.names[array.codes[index]]
    if isinstance(array, BookLevels):
        row = range(len(array))[index]
        return array.rows(slice(row, row + 1)).tuples()[0]
    if isinstance(array, np.ndarray):
        return array[index].item()
    return array[index]


def _sliced(array: Any, start: int, end: int) -> Any:
    if isinstance(array, _Names):
        return _Names(array.names, array.codes[start:end])
    if isinstance(array, BookLevels):
        return array.rows(slice(start, end))
    return array[start:end]


# Quote's fields that are floats in every quote a reader makes (bid to received_ts).
_FLOATS = range(2, _RECEIVED + 1)


def _arrays_of(batch: Sequence[Quote]) -> list[Any]:
    """``batch`` as a batch of arrays holds it (see :meth:`QuoteBatch.coded`): names as
    :class:`_Names`, the prices, sizes and times as float64 arrays, the other fields as
    lists."""
    if not isinstance(batch, QuoteBatch):
        batch = QuoteBatch.of(batch)
    if batch._arrays is not None:
        return batch._arrays
    fields = batch.fields
    arrays: list[Any] = [_Names(*_coded(fields[0])), _Names(*_coded(fields[1]))]
    arrays += [np.asarray(fields[index], dtype=np.float64) for index in _FLOATS]
    arrays += [list(field) for field in fields[_RECEIVED + 1:]]
    return arrays


def merge_batches(batches: Sequence[Sequence[Quote]]) -> QuoteBatch:
    """The quotes of ``batches`` (each in ``received_ts`` order) as one batch in
    ``received_ts`` order, quotes of the same time in the order of ``batches`` (as
    :func:`heapq.merge` orders them), with no quote built: the batches' arrays are joined
    and put in order a column at a time."""
    forms = [_arrays_of(batch) for batch in batches]
    sizes = [len(form[_RECEIVED]) for form in forms]
    width = max(len(form) for form in forms)
    joined: list[Any] = []
    for index in range(width):
        if index < 2:
            names: dict[str, int] = {}
            codes = [recoded(form[index].names, form[index].codes, names) for form in forms]
            joined.append(_Names(list(names), np.concatenate(codes)))
        elif index in _FLOATS:
            joined.append(np.concatenate([form[index] for form in forms]))
        else:
            default = _QUOTE_FIELDS[index].default
            values: list[Any] = []
            for form, size in zip(forms, sizes, strict=True):
                values += _whole(form[index]) if index < len(form) else [default] * size
            joined.append(values)
    received = joined[_RECEIVED]
    if len(received) > 1 and not bool(np.all(received[1:] >= received[:-1])):
        order = np.argsort(received, kind="stable")
        picked = order.tolist()
        joined = [_Names(array.names, array.codes[order]) if isinstance(array, _Names)
                  else array[order] if isinstance(array, np.ndarray)
                  else list(map(array.__getitem__, picked)) for array in joined]
    exchange, symbol, bid, ask, bid_size, ask_size, stamp, received, *more = joined
    return QuoteBatch.coded((exchange.names, exchange.codes, symbol.names, symbol.codes,
                             bid, ask, received), bid_size, ask_size, stamp, *more)


def recoded(names: Sequence[str], codes: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """A reader's ``codes`` into its ``names`` (which may repeat a name or hold one no row
    has) as each row's index in ``index``; a name not in it is added as the next index."""
    return np.array([index.setdefault(name, len(index)) for name in names],
                    dtype=np.intp)[codes]


def _coded(names: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct ``names``, and each name's index into them."""
    index = {name: code for code, name in enumerate(dict.fromkeys(names))}
    return list(index), np.fromiter(map(index.__getitem__, names), np.intp, len(names))


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
    ``evaluate``), for what the strategy keeps of every quote (a trend window).

    ``note_rows``, when given with ``note``, does what ``note`` does for the quotes
    ``start`` to ``end`` of a batch at once (each at its own ``received_ts``, the time a
    replay's clock shows while the quote is delivered): a replay then hands runs of
    quiet quotes over whole (:meth:`arbotd.Engine.on_quiet_rows`) instead of one by
    one."""

    rows: np.ndarray
    rejections: Mapping[str, np.ndarray] = attrs.field(factory=dict)
    note: Callable[[Quote, MarketView], None] | None = None
    note_rows: Callable[[Sequence[Quote], int, int], None] | None = None


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
        exchange = recoded(exchange_list, exchange_codes, exchanges)
        symbol = recoded(symbol_list, symbol_codes, symbols)
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
