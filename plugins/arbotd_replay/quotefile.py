"""Recorded quote files: writing them, and reading them back with every bad row reported.

The format is described in the package docstring (:mod:`arbotd_replay`): the best level
of each quote, and, in a file whose header adds the ``bids`` and ``asks`` columns, the
top levels of its book. Reading is the backtest's hot path next to the engine: rows are
split on commas and parsed with ``float`` in one tight loop, and only a row that fails a
cheap check goes to the slow path that says what is wrong with it (quoted fields, a bad
number, a crossed book ...).
"""

from __future__ import annotations

import collections
import contextlib
import csv
import gzip
import heapq
import io
import itertools
import logging
import math
import operator
import re
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from arbotd import ArbotError, Quote
from arbotd.batch import BookLevels, QuoteBatch

__all__ = [
    "BATCH_SIZE",
    "COLUMNS",
    "DEPTH_COLUMNS",
    "NUMBER_COLUMNS",
    "PROBLEM_KINDS",
    "BadDataError",
    "DataProblems",
    "QuoteFileReader",
    "QuoteFileWriter",
    "TimeOrderedWriter",
    "format_levels",
    "format_row",
    "judge_row",
    "levels_fault",
    "levels_good",
    "parse_levels",
    "rows_good",
    "text_values",
]

log = logging.getLogger("arbotd_replay")

COLUMNS = ("local_ts", "exchange_ts", "exchange", "symbol", "bid", "ask", "bid_size",
           "ask_size")
"""The columns of a file of best levels (and the first columns of every file)."""
DEPTH_COLUMNS = (*COLUMNS, "bids", "asks")
"""The columns of a file whose quotes carry the top levels of their book."""
HEADER = ",".join(COLUMNS)
DEPTH_HEADER = ",".join(DEPTH_COLUMNS)
BATCH_SIZE = 4096
"""Quotes handed on at a time: large enough that the per-batch work (progress, a trio
checkpoint) costs nothing per quote, small enough to keep memory flat."""

PROBLEM_KINDS = {
    "unsorted": "local_ts earlier than the row before",
    "crossed": "crossed book (bid above ask)",
    "non_positive_price": "price zero, negative or not finite",
    "negative_size": "size negative or not finite",
    "unparseable": "not a valid row",
    "truncated": "file ends in the middle of its compressed data",
    "duplicate": "the same row twice in a row",
    "bad_levels": "book levels out of order, not numbers or not starting at the best",
}
"""Kinds of bad data, as counted in a backtest's summary and report."""

REPORTED_PER_KIND = 20
"""Bad rows reported one by one per file and kind; the rest are counted, and one line
says how many more there were (so a broken file cannot flood the log)."""

_INF = math.inf
_GZIP_MAGIC = b"\x1f\x8b"
_LEVELS = re.compile(r"[^:;]+:[^:;]+(?:;[^:;]+:[^:;]+)*")


class BadDataError(ArbotError):
    """Data that cannot be used: a file with a wrong header, or any bad row when bad rows
    are not to be skipped (``--strict``)."""


class DataProblems:
    """Bad rows found while reading, counted by kind. Each is logged as ``FILE:LINE: what
    was wrong`` (the first :data:`REPORTED_PER_KIND` per file and kind); with ``strict``
    the first one raises :class:`BadDataError` instead."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.counts: collections.Counter[str] = collections.Counter()
        self.messages: list[str] = []
        self._per_source: collections.Counter[tuple[str, str]] = collections.Counter()

    def add(self, where: str, kind: str, detail: str) -> None:
        """``where`` is ``FILE:LINE`` (or another place a reader can find)."""
        message = f"{where}: {detail}"
        if self.strict:
            raise BadDataError(message)
        self.counts[kind] += 1
        source = where.rsplit(":", 1)[0]
        self._per_source[(source, kind)] += 1
        if self._per_source[(source, kind)] <= REPORTED_PER_KIND:
            self.messages.append(message)
            log.warning("bad data skipped: %s", message)

    def finish(self) -> None:
        """Say how many more rows of each kind were skipped than were reported."""
        for (source, kind), count in sorted(self._per_source.items()):
            if count > REPORTED_PER_KIND:
                message = (f"{source}: {count - REPORTED_PER_KIND} more rows skipped: "
                           f"{PROBLEM_KINDS[kind]}")
                self.messages.append(message)
                log.warning("bad data skipped: %s", message)
        self._per_source.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# --- writing ---------------------------------------------------------------------------------


def format_row(quote: Quote, *, levels: bool = False) -> str:
    """One line of the format; ``repr`` of a float is the shortest text that reads back
    as the same float, so a replay sees exactly the prices and times that were recorded.
    With ``levels``, the ``bids`` and ``asks`` fields follow (empty for a quote of the
    best level only)."""
    best = (f"{quote.received_ts!r},{quote.exchange_ts!r},{quote.exchange},{quote.symbol},"
            f"{quote.bid!r},{quote.ask!r},{quote.bid_size!r},{quote.ask_size!r}")
    if not levels:
        return best + "\n"
    return f"{best},{format_levels(quote.bids)},{format_levels(quote.asks)}\n"


def format_levels(levels: tuple[tuple[float, float], ...] | None) -> str:
    """``price:size;price:size;...`` best first; ``""`` for ``None`` (no book)."""
    if not levels:
        return ""
    return ";".join(f"{price!r}:{size!r}" for price, size in levels)


def parse_levels(text: str) -> tuple[tuple[float, float], ...] | None:
    """The levels of a ``bids`` or ``asks`` field, ``None`` for an empty one. Raises
    ``ValueError`` for text that is not ``price:size`` pairs of numbers (their order and
    values are checked by the reader)."""
    prices, sizes = _split_levels(text)
    return tuple(zip(prices, sizes, strict=True)) if prices else None


_NO_LEVELS: tuple[list[float], list[float]] = ([], [])


def _split_levels(text: str) -> tuple[list[float], list[float]]:
    """The prices and the sizes of a ``bids`` or ``asks`` field (empty lists for an empty
    field); raises ``ValueError`` as :func:`parse_levels` does."""
    if not text:
        return _NO_LEVELS
    try:
        if _LEVELS.fullmatch(text) is None:
            raise ValueError
        numbers = list(map(float, text.replace(":", ";").split(";")))
    except ValueError:
        raise ValueError(f"not price:size pairs of numbers separated by ';': "
                         f"{text[:40]!r}") from None
    return numbers[::2], numbers[1::2]


def levels_fault(prices: list[float], sizes: list[float], best_price: float,
                  best_size: float, descending: bool) -> str | None:
    """What is wrong with one side's levels, or ``None``: they must start at the best
    level, go strictly away from it, and have positive finite prices and finite sizes
    of at least 0. Runs for every row of a file with levels: each test is one call into
    C over the whole side."""
    if prices[0] != best_price or sizes[0] != best_size:
        return f"the first level {prices[0]!r}:{sizes[0]!r} is not the best"
    # A sum is NaN or infinite when any term is.
    if not (math.isfinite(sum(prices)) and math.isfinite(sum(sizes))):
        return "a price or size is not a finite number"
    if not all(map(operator.gt if descending else operator.lt, prices, prices[1:])):
        return ("prices must fall strictly from the best" if descending
                else "prices must rise strictly from the best")
    if prices[-1 if descending else 0] <= 0.0:
        return "a price is zero or negative"
    if min(sizes) < 0.0:
        return "a size is negative"
    return None


def judge_row(problems: DataProblems, where: str, end: float, last: float, local: float,
              exchange: str, symbol: str, bid: float, ask: float, bid_size: float,
              ask_size: float, stamp: float = 0.0,
              bids: tuple[list[float], list[float]] = _NO_LEVELS,
              asks: tuple[list[float], list[float]] = _NO_LEVELS) -> bool:
    """Record in ``problems`` what is wrong with a row that failed a reader's quick test
    (``where`` names it: ``FILE:LINE``); ``True`` when the row is fine but at or after
    ``end`` (reading stops). ``last`` is the ``local_ts`` of the last row used; ``bids``
    and ``asks`` are the levels' prices and sizes."""
    add = problems.add
    bids_fault = bids[0] and levels_fault(*bids, bid, bid_size, True)
    asks_fault = asks[0] and levels_fault(*asks, ask, ask_size, False)
    if not math.isfinite(local):
        add(where, "unparseable", f"local_ts is {local!r}")
    elif not math.isfinite(stamp):
        add(where, "unparseable", f"exchange_ts is {stamp!r}")
    elif not exchange or not symbol:
        add(where, "unparseable", "exchange or symbol is empty")
    elif not (0.0 < bid < _INF and 0.0 < ask < _INF):
        add(where, "non_positive_price", f"bid {bid!r} / ask {ask!r}: prices must be > 0")
    elif bid > ask:
        add(where, "crossed", f"crossed book: bid {bid!r} above ask {ask!r}")
    elif not (0.0 <= bid_size < _INF and 0.0 <= ask_size < _INF):
        add(where, "negative_size",
            f"bid_size {bid_size!r} / ask_size {ask_size!r}: sizes must be >= 0")
    elif bids_fault:
        add(where, "bad_levels", f"bids: {bids_fault}")
    elif asks_fault:
        add(where, "bad_levels", f"asks: {asks_fault}")
    elif local < last:
        add(where, "unsorted", f"local_ts {local!r} is earlier than the row before "
                               f"({last!r}); rows must be in local_ts order")
    else:
        return local >= end
    return False


class TimeOrderedWriter:
    """What every recorded-quote writer shares: quotes leave in ``local_ts`` order.

    Quotes of different feeds can reach a writer slightly out of that order (a busy event
    loop, or a clock that stepped back). So they wait ``reorder_seconds`` of quote time in
    a heap and are written in order; a quote older than rows already written is dropped
    and counted in ``late``, with a warning. Every ``sync_seconds`` (wall time)
    :meth:`sync` makes what was written readable. A subclass keeps in the heap what
    :meth:`_prepare` makes of a quote and writes it in :meth:`_emit`.
    """

    def __init__(self, *, reorder_seconds: float, sync_seconds: float) -> None:
        self.reorder_seconds = reorder_seconds
        self.sync_seconds = sync_seconds
        self.written = 0
        self.late = 0
        self._pending: list[tuple[float, int, Any]] = []
        self._sequence = 0
        self._written_until = -_INF
        self._next_sync = time.monotonic() + sync_seconds
        self._closed = False

    def _prepare(self, quote: Quote) -> Any:
        return quote

    def _emit(self, item: Any) -> None:
        raise NotImplementedError

    def write(self, quote: Quote) -> None:
        stamp = quote.received_ts
        if stamp < self._written_until:
            self.late += 1
            if self.late == 1 or self.late % 1000 == 0:
                log.warning("recorder: %d quotes arrived more than %.1f s out of time order "
                            "(the system clock stepped back?) and were left out",
                            self.late, self.reorder_seconds)
            return
        self._sequence += 1
        heapq.heappush(self._pending, (stamp, self._sequence, self._prepare(quote)))
        self._write_until(stamp - self.reorder_seconds)
        if time.monotonic() >= self._next_sync:
            self.sync()

    def write_all(self, quotes: Any) -> None:
        for quote in quotes:
            self.write(quote)

    def _write_until(self, limit: float) -> None:
        pending, emit = self._pending, self._emit
        while pending and pending[0][0] <= limit:
            stamp, _, item = heapq.heappop(pending)
            emit(item)
            self._written_until = stamp
            self.written += 1

    def sync(self) -> None:
        """Make everything written so far readable from the file."""
        self._next_sync = time.monotonic() + self.sync_seconds

    def close(self) -> None:
        """Write every quote still waiting, and finish the file."""
        if self._closed:
            return
        self._closed = True
        self._write_until(_INF)


class QuoteFileWriter(TimeOrderedWriter):
    """Writes quotes to ``path`` (gzip-compressed when the name ends in ``.gz``), in
    ``local_ts`` order (see :class:`TimeOrderedWriter`). Every ``sync_seconds`` the
    compressed stream is flushed to disk, so a recorder killed outright leaves a file
    readable up to that point; :meth:`close` writes the gzip trailer.

    With ``levels`` the file has the ``bids`` and ``asks`` columns and keeps every level
    the quotes carry; without, it keeps their best levels only.
    """

    def __init__(self, path: Path, *, reorder_seconds: float = 2.0,
                 sync_seconds: float = 5.0, levels: bool = False) -> None:
        super().__init__(reorder_seconds=reorder_seconds, sync_seconds=sync_seconds)
        self.path = path
        self.levels = levels
        self._raw: IO[bytes] = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._gzip: gzip.GzipFile | None = None
        binary: IO[bytes] = self._raw
        if path.name.endswith(".gz"):
            # mtime=0: the same quotes always give the same bytes.
            self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6, mtime=0)
            binary = self._gzip
        self._text = io.TextIOWrapper(binary, encoding="utf-8", newline="\n")
        self._text.write((DEPTH_HEADER if levels else HEADER) + "\n")
        self._emit = self._text.write  # type: ignore[method-assign]

    def _prepare(self, quote: Quote) -> str:
        return format_row(quote, levels=self.levels)

    def sync(self) -> None:
        self._text.flush()
        if self._gzip is not None:
            self._gzip.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()
        super().sync()

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        self._text.close()  # closes the gzip stream (its trailer) and the file
        if not self._raw.closed:
            self._raw.close()


# --- reading ---------------------------------------------------------------------------------


# A recording's columns that hold numbers, in the order of its columns.
NUMBER_COLUMNS = ("local_ts", "exchange_ts", "bid", "ask", "bid_size", "ask_size")
# pyarrow's types of a quick block's columns (see QuoteFileReader._quick_block).
_QUICK_TYPES = {**dict.fromkeys(NUMBER_COLUMNS, pa.float64()),
                **dict.fromkeys(("exchange", "symbol"), pa.dictionary(pa.int32(), pa.string())),
                **dict.fromkeys(("bids", "asks"), pa.string())}


def text_values(column: pa.Array) -> list[Any]:
    """A text column as Python strings; a dictionary's values are decoded once per batch
    and shared between rows."""
    if pa.types.is_dictionary(column.type):
        values = column.dictionary.to_pylist()
        indices = column.indices.to_pylist()
        if column.null_count:
            return [None if i is None else values[i] for i in indices]
        return list(map(values.__getitem__, indices))
    return column.to_pylist()


def rows_good(local: np.ndarray, stamp: np.ndarray, bid: np.ndarray, ask: np.ndarray,
              bid_size: np.ndarray, ask_size: np.ndarray) -> bool:
    """Whether every row of these columns passes the row-by-row reading's test on its
    best level (finite times, ``0 < bid <= ask < inf``, finite sizes not below zero) and
    the rows are in time order: a few array operations for a whole batch."""
    with np.errstate(invalid="ignore"):
        return bool(np.all(local[1:] >= local[:-1])) and bool(np.all(
            (bid > 0.0) & (bid <= ask) & (ask < _INF) & (bid_size >= 0.0)
            & (bid_size < _INF) & (ask_size >= 0.0) & (ask_size < _INF)
            & np.isfinite(stamp) & np.isfinite(local)))


# Above this, a row's levels could add up to infinity, which levels_fault refuses.
_LEVEL_LIMIT = 1e300


def levels_good(levels: BookLevels, best: np.ndarray, best_size: np.ndarray,
                descending: bool) -> bool:
    """Whether every row's levels (one side's, see :class:`arbotd.batch.BookLevels`)
    pass :func:`levels_fault` against the row's ``best`` price and ``best_size``, tested
    a column at a time (a row without levels passes). ``False`` when a row's may not:
    the row-by-row reading then says which and why."""
    prices, sizes, starts = levels.prices, levels.sizes, levels.starts
    rows = levels.ends > starts
    if not rows.any():
        return True
    first = starts[rows]
    if not (np.array_equal(prices[first], best[rows])
            and np.array_equal(sizes[first], best_size[rows])):
        return False
    flat, bounds = levels.gathered()
    row_prices, row_sizes = prices[flat], sizes[flat]
    with np.errstate(invalid="ignore"):
        if not (bool(np.all((row_prices > 0.0) & (row_prices < _LEVEL_LIMIT)))
                and bool(np.all((row_sizes >= 0.0) & (row_sizes < _LEVEL_LIMIT)))):
            return False
        away = (row_prices[:-1] > row_prices[1:]) if descending else (
            row_prices[:-1] < row_prices[1:])
    # A row's last level and the next row's first need not be in order.
    inner = bounds[1:-1]
    away[inner[(inner > 0) & (inner < bounds[-1])] - 1] = True
    return bool(np.all(away))


def _parsed_levels(column: pa.Array) -> BookLevels | None:
    """A block's ``bids`` or ``asks`` text (``price:size`` pairs separated by ``;``, an
    empty field for none) as :class:`arbotd.batch.BookLevels`, split and parsed a column
    at a time; ``None`` when a field may not be such pairs of numbers (the row-by-row
    reading then says which). pyarrow parses a number to the float Python's ``float()``
    does, or refuses it (or reads a NaN, which no check lets through)."""
    present = pc.greater(pc.binary_length(column), 0).to_numpy(zero_copy_only=False)
    counts = np.zeros(len(column), dtype=np.intp)
    pieces = pc.split_pattern(column.filter(pa.array(present)), ";")
    counts[present] = pc.list_value_length(pieces).to_numpy(zero_copy_only=False)
    pairs = pc.split_pattern(pc.list_flatten(pieces), ":")
    if len(pairs) and not pc.all(pc.equal(pc.list_value_length(pairs), 2)).as_py():
        return None
    tokens = pc.list_flatten(pairs)
    if len(tokens) and pc.min(pc.binary_length(tokens)).as_py() == 0:
        return None
    try:
        numbers = pc.cast(tokens, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    ends = np.cumsum(counts)
    return BookLevels(numbers[0::2], numbers[1::2], ends - counts, ends)


def _fields_batch(rows: list[tuple[Any, ...]]) -> QuoteBatch:
    """The batch of ``rows`` (each Quote's fields, in its field order)."""
    return QuoteBatch(list(zip(*rows, strict=True)))


class QuoteFileReader:
    """Reads one recorded file in batches of :class:`arbotd.Quote`, from ``start``
    (included) to ``end`` (excluded), skipping bad rows into ``problems``.

    A header other than exactly :data:`COLUMNS` or :data:`DEPTH_COLUMNS` rejects the
    whole file with :class:`BadDataError` at :meth:`open` (a column the reader does not
    know could hold what the rows mean; a missing one leaves them meaningless). Rows must
    be in ``local_ts`` order: a row earlier than the last row used is skipped as
    ``unsorted``. Since the file is sorted, reading stops at the first row at or after
    ``end``. ``levels`` tells, once the file is open, whether its quotes carry book levels.
    """

    def __init__(self, path: Path, problems: DataProblems, *, start: float = -_INF,
                 end: float = _INF, batch_size: int = BATCH_SIZE) -> None:
        self.path = path
        self.name = str(path)
        self.problems = problems
        self.start = start
        self.end = end
        self.batch_size = batch_size
        self.rows = 0
        self.levels = False
        self._raw: IO[bytes] | None = None
        self._text: IO[str] | None = None
        self._size = 1

    def open(self) -> QuoteFileReader:
        """Open the file and check its header. Raises :class:`BadDataError`."""
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 (closed in close())
        except OSError as err:
            raise BadDataError(f"{self.name}: cannot open: {err.strerror or err}") from None
        self._raw = raw
        try:
            self._size = max(1, self.path.stat().st_size)
            binary: IO[bytes] = raw
            if raw.read(2) == _GZIP_MAGIC:
                raw.seek(0)
                binary = gzip.GzipFile(fileobj=raw, mode="rb")
            else:
                raw.seek(0)
            self._text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
            first = self._text.readline()
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
            self.close()
            raise BadDataError(f"{self.name}: cannot read: {_describe(err)}") from None
        self._check_header(first)
        return self

    def _check_header(self, line: str) -> None:
        names = [name.strip() for name in line.lstrip("\ufeff").rstrip("\r\n").split(",")]
        if tuple(names) in (COLUMNS, DEPTH_COLUMNS):
            self.levels = len(names) == len(DEPTH_COLUMNS)
            return
        self.close()
        expected = f"expected the header {HEADER} (or {HEADER},bids,asks with book levels)"
        if not line:
            raise BadDataError(f"{self.name}: the file is empty; {expected}")
        unknown = [n for n in names if n not in DEPTH_COLUMNS]
        wanted = DEPTH_COLUMNS if {"bids", "asks"} & set(names) else COLUMNS
        missing = [c for c in wanted if c not in names]
        parts = []
        if unknown:
            shown = ", ".join(repr(n) for n in unknown)
            parts.append(f"unknown column{'s' * (len(unknown) > 1)} {shown}")
            if "" in unknown:
                parts.append("(an unnamed first column is a pandas index: write the file "
                             "with index=False)")
        if missing:
            parts.append(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}")
        if not parts:
            parts.append("the columns are in another order")
        raise BadDataError(f"{self.name}:1: {'; '.join(parts)}; {expected}")

    def close(self) -> None:
        for stream in (self._text, self._raw):
            if stream is not None:
                with contextlib.suppress(OSError, EOFError, zlib.error):
                    stream.close()
        self._text = self._raw = None

    def progress(self) -> float:
        """The share of the file read so far (of its compressed bytes)."""
        raw = self._raw
        if raw is None or raw.closed:
            return 1.0
        return min(1.0, raw.tell() / self._size)

    def batches(self) -> Iterator[Sequence[Quote]]:
        """The quotes, in batches of up to ``batch_size``, in file order (each a
        :class:`arbotd.batch.QuoteBatch`, whose quotes are built when asked for)."""
        if self._text is None:
            self.open()
        try:
            yield from self._read()
        finally:
            self.close()

    def _read(self) -> Iterator[Sequence[Quote]]:
        assert self._text is not None
        start, end, size = self.start, self.end, self.batch_size
        depth = self.levels
        last = -_INF  # local_ts of the last row used
        batch: list[tuple[Any, ...]] = []
        append = batch.append
        bid_prices, bid_sizes = ask_prices, ask_sizes = _NO_LEVELS
        fault = levels_fault
        previous = ""
        for first, lines in self._blocks():
            quick = self._quick_block(lines, previous, last)
            if quick is not None:
                # Every row of the block good: decoded a column at a time.
                if batch:
                    self.rows += len(batch)
                    yield _fields_batch(batch)
                    batch = []
                    append = batch.append
                decoded, last = quick
                previous = lines[-1]
                if decoded:
                    self.rows += len(decoded)
                    yield decoded
                continue
            stop = False
            for line_number, line in enumerate(lines, first):
                if line == previous:
                    # A recorder writes one row per message, each with its own receive
                    # time: the same row again is a copy (files concatenated twice).
                    self.problems.add(f"{self.name}:{line_number}", "duplicate",
                                      "the same row as the line before")
                    continue
                previous = line
                try:
                    if " " in line:
                        # Names are taken as they stand below, and "ex_a " would be
                        # an exchange of its own: the slow path strips them.
                        raise ValueError
                    best = line
                    if depth:
                        best, bids_s, asks_s = line.rsplit(",", 2)
                        bid_prices, bid_sizes = _split_levels(bids_s)
                        ask_prices, ask_sizes = _split_levels(asks_s.rstrip("\r\n"))
                    lt_s, et_s, exchange, symbol, b_s, a_s, bs_s, as_s = best.split(",")
                    local = float(lt_s)
                    stamp = float(et_s)
                    bid = float(b_s)
                    ask = float(a_s)
                    bid_size = float(bs_s)
                    ask_size = float(as_s)
                except ValueError:
                    row = self._parse_slowly(line, line_number)
                    if row is None:
                        continue
                    (local, stamp, exchange, symbol, bid, ask, bid_size, ask_size,
                     (bid_prices, bid_sizes), (ask_prices, ask_sizes)) = row
                # One chained test for the common case; judge_row says what is wrong.
                if (-_INF < local < end and last <= local and 0.0 < bid <= ask < _INF
                        and 0.0 <= bid_size < _INF and 0.0 <= ask_size < _INF
                        and -_INF < stamp < _INF and exchange and symbol
                        and (not bid_prices
                             or fault(bid_prices, bid_sizes, bid, bid_size, True) is None)
                        and (not ask_prices
                             or fault(ask_prices, ask_sizes, ask, ask_size, False) is None)):
                    last = local
                    if local >= start:
                        # A row of Quote's fields; the batch builds the quotes when
                        # they are asked for.
                        if depth:
                            append((exchange, symbol, bid, ask, bid_size, ask_size, stamp,
                                    local,
                                    tuple(zip(bid_prices, bid_sizes, strict=True))
                                    if bid_prices else None,
                                    tuple(zip(ask_prices, ask_sizes, strict=True))
                                    if ask_prices else None))
                        else:
                            append((exchange, symbol, bid, ask, bid_size, ask_size, stamp,
                                    local))
                        if len(batch) >= size:
                            self.rows += len(batch)
                            yield _fields_batch(batch)
                            batch = []
                            append = batch.append
                    continue
                if judge_row(self.problems, f"{self.name}:{line_number}", self.end, last,
                             local, exchange, symbol, bid, ask, bid_size, ask_size, stamp,
                             (bid_prices, bid_sizes), (ask_prices, ask_sizes)):
                    stop = True  # at or past the end
                    break
            if stop:
                break
        if batch:
            self.rows += len(batch)
            yield _fields_batch(batch)

    def _blocks(self) -> Iterator[tuple[int, list[str]]]:
        """The file's lines after the header, a block of ``batch_size`` at a time, each
        with its first line's number. A file that cannot be read on (cut short, not
        UTF-8) ends with the lines read before, then the problem is recorded (unless
        the reader stopped at ``end`` before)."""
        assert self._text is not None
        text, size = self._text, self.batch_size
        first = 2
        lines: list[str] = []
        append = lines.append
        try:
            for line in text:
                append(line)
                if len(lines) >= size:
                    yield first, lines
                    first += len(lines)
                    lines = []
                    append = lines.append
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            problem = ("truncated", f"{_describe(err)}: the file ends here (was the "
                       "recorder killed?); the rows before are used")
        except UnicodeDecodeError as err:
            problem = ("unparseable", f"not UTF-8 text ({err.reason}); the rest of the "
                       "file is skipped")
        else:
            if lines:
                yield first, lines
            return
        if lines:
            yield first, lines
        self.problems.add(f"{self.name}:{first + len(lines)}", *problem)

    def _quick_block(self, lines: list[str], previous: str, last: float
                     ) -> tuple[QuoteBatch | None, float] | None:
        """A block of lines every one of which is good (no copy of the line before, no
        quotes or spaces, every value a number where one is due, in time order from
        ``last``, before ``end``, books not crossed, book levels that start at the best
        and go strictly away from it), decoded by pyarrow's CSV parser (and its string
        functions, for the levels) and checked as arrays: its batch of the rows from ``start``
        (``None`` if none) and the new ``last``. ``None`` for a block with anything
        else, which the row-by-row reading then goes through, naming each bad row."""
        if lines[0] == previous or any(map(operator.eq, lines,
                                           itertools.islice(lines, 1, None))):
            return None
        joined = "".join(lines)
        if '"' in joined or " " in joined:
            return None
        columns = DEPTH_COLUMNS if self.levels else COLUMNS
        try:
            table = pa_csv.read_csv(
                io.BytesIO(joined.encode()),
                read_options=pa_csv.ReadOptions(column_names=list(columns),
                                                block_size=len(joined) + 1, use_threads=False),
                parse_options=pa_csv.ParseOptions(quote_char=False, double_quote=False),
                convert_options=pa_csv.ConvertOptions(
                    column_types=_QUICK_TYPES, null_values=[], strings_can_be_null=False,
                    quoted_strings_can_be_null=False))
        except (pa.ArrowException, ValueError):
            return None
        if table.num_rows != len(lines) or table.column("exchange").num_chunks != 1:
            return None  # a blank line, or a line cut in two
        local, stamp, bid, ask, bid_size, ask_size = (
            table.column(name).to_numpy() for name in NUMBER_COLUMNS)
        if not (local[0] >= last and local[-1] < self.end
                and rows_good(local, stamp, bid, ask, bid_size, ask_size)):
            return None
        books: list[BookLevels] = []
        if self.levels:
            for column, best, best_size, descending in (("bids", bid, bid_size, True),
                                                        ("asks", ask, ask_size, False)):
                levels = _parsed_levels(table.column(column).combine_chunks())
                if levels is None or not levels_good(levels, best, best_size, descending):
                    return None
                books.append(levels)
        exchange = table.column("exchange").combine_chunks()
        symbol = table.column("symbol").combine_chunks()
        exchanges = exchange.dictionary.to_pylist()
        symbols = symbol.dictionary.to_pylist()
        if "" in exchanges or "" in symbols:
            return None
        low = int(np.searchsorted(local, self.start, side="left"))
        last = float(local[-1])
        if low >= len(lines):
            return None, last
        exchange_codes, symbol_codes = exchange.indices.to_numpy(), symbol.indices.to_numpy()
        if low:
            exchange_codes, symbol_codes = exchange_codes[low:], symbol_codes[low:]
            local, stamp, bid, ask = local[low:], stamp[low:], bid[low:], ask[low:]
            bid_size, ask_size = bid_size[low:], ask_size[low:]
        # Handed over as arrays: a field becomes a list, a quote an object, only when
        # the backtest asks for it.
        return QuoteBatch.coded((exchanges, exchange_codes, symbols, symbol_codes, bid, ask,
                                 local), bid_size, ask_size, stamp,
                                *(levels.rows(slice(low, None)) for levels in books)), last

    def _parse_slowly(self, line: str, line_number: int) -> tuple[Any, ...] | None:
        """A row the quick split could not take: quoted fields (as a spreadsheet may write
        them), spaces around fields (names are stripped), a blank line (skipped
        quietly), or a bad one (recorded, ``None``). Always ten values, ``bids`` and
        ``asks`` as their prices and sizes (empty in a file without them)."""
        if not line.strip():
            return None
        where = f"{self.name}:{line_number}"
        columns = DEPTH_COLUMNS if self.levels else COLUMNS
        fields = next(csv.reader([line]), [])
        if len(fields) != len(columns):
            self.problems.add(where, "unparseable",
                              f"expected {len(columns)} fields, got {len(fields)}")
            return None
        values: list[Any] = []
        for name, field in zip(columns, fields, strict=True):
            if name in ("exchange", "symbol"):
                values.append(field.strip())
                continue
            if name in ("bids", "asks"):
                try:
                    values.append(_split_levels(field.strip()))
                except ValueError as err:
                    self.problems.add(where, "bad_levels", f"{name}: {err}")
                    return None
                continue
            try:
                values.append(float(field))
            except ValueError:
                self.problems.add(where, "unparseable", f"{name}: {field.strip()!r} is not a "
                                                        "number")
                return None
        if not self.levels:
            values += [_NO_LEVELS, _NO_LEVELS]
        return tuple(values)


def _describe(err: BaseException) -> str:
    if isinstance(err, EOFError):
        return "the compressed data ends early"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__
