"""Recorded quotes as Parquet: the same rows as the CSV files, typed and columnar.

Schema (one row per quote, in ``local_ts`` order; the same fields as the CSV format of
:mod:`arbotd_replay`)::

    local_ts     float64                   when received, epoch seconds (UTC)
    exchange_ts  float64                   the exchange's time, epoch seconds
    exchange     dictionary<int32, string> configuration name (binance, sim_alpha)
    symbol       dictionary<int32, string> exchange-neutral symbol (BTCUSDT)
    bid, ask     float64                   best prices, 0 < bid <= ask
    bid_size     float64                   quantities at those prices, >= 0
    ask_size     float64
    bids, asks   list<struct<price: float64, size: float64>>   (only in files with
                                           book levels) best first, null for a quote
                                           of the best level only

Times are float64 epoch seconds, not Parquet timestamps, on purpose: they are exactly
the floats the feeds gave (a timestamp in microseconds would round them), so a replay
of a Parquet file and of the CSV file of the same quotes sees the same numbers and
gives the same trades. ``exchange`` and ``symbol`` are dictionary-encoded (a handful of
values over millions of rows; pandas reads them as categoricals). Files are
zstd-compressed (level 6), in row groups of :data:`ROW_GROUP_ROWS` quotes.

A recording is one file (``quotes.parquet``) or a directory of them read in name order
(``part-000000.parquet``, ..., or ``date=YYYY-MM-DD/part-00000.parquet`` from ``arbotd
export``); names starting with ``.`` or ``_`` are not read. In pandas and polars::

    import pandas as pd
    quotes = pd.read_parquet("quotes.parquet")      # or a directory
    quotes["time"] = pd.to_datetime(quotes.local_ts, unit="s", utc=True)

    import polars as pl
    quotes = pl.read_parquet("quotes/**/*.parquet")

Writing (:class:`ParquetQuoteWriter`) is crash-safe in two ways, by the kind of path:

- a file (name ending ``.parquet``) is written under a temporary name beside it
  (``.NAME.partial``) and renamed to its name when closed, which the recorder does
  however it is stopped (SIGINT, SIGTERM, ``--duration``): a file under the real name
  is always complete. A recorder killed outright (SIGKILL, power loss) leaves only the
  ``.partial`` file, which is not readable;
- a directory gets one complete file per ``sync_seconds`` (or per row group), each
  written under a temporary name and renamed: killed outright, it loses at most the last
  ``sync_seconds`` of quotes, as a CSV recording does.

Reading (:class:`ParquetQuoteReader`) goes through ``ParquetFile.iter_batches`` and
decodes each record batch column by column: every check of the CSV reader runs on whole
columns in Arrow's C code, and only a batch where one fails is gone through row by row
(reporting ``FILE:row N: what was wrong``, ``N`` counted from 1 in each file). Row
groups whose ``local_ts`` statistics end before ``start`` are skipped unread, so their
rows are not checked (a CSV file's are, on the way to ``start``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from arbotd import Quote
from arbotd.batch import BookLevels, QuoteBatch, build_quotes
from arbotd_replay.quotefile import (
    BATCH_SIZE,
    COLUMNS,
    DEPTH_COLUMNS,
    NUMBER_COLUMNS,
    BadDataError,
    DataProblems,
    TimeOrderedWriter,
    judge_row,
    levels_fault,
    levels_good,
    rows_good,
    text_values,
)

__all__ = [
    "LEVELS_TYPE",
    "ROW_GROUP_ROWS",
    "ParquetQuoteReader",
    "ParquetQuoteWriter",
    "build_quotes",
    "is_parquet",
    "parquet_files",
    "quote_schema",
    "quotes_table",
]

_INF = float("inf")
_MAGIC = b"PAR1"
_NAMES = ("exchange", "symbol")

ROW_GROUP_ROWS = 131_072
"""Quotes per row group (and at most per part file of a directory)."""

LEVELS_TYPE = pa.list_(pa.struct([("price", pa.float64()), ("size", pa.float64())]))
"""The type of the ``bids`` and ``asks`` columns."""

_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def quote_schema(levels: bool = False) -> pa.Schema:
    """The schema of a recording, with the ``bids`` and ``asks`` columns or without."""
    types = {"exchange": _DICTIONARY, "symbol": _DICTIONARY}
    fields = [pa.field(name, types.get(name, pa.float64()), nullable=False)
              for name in COLUMNS]
    if levels:
        fields += [pa.field("bids", LEVELS_TYPE), pa.field("asks", LEVELS_TYPE)]
    return pa.schema(fields)


def _levels_array(books: Sequence[tuple[tuple[float, float], ...] | None]) -> pa.Array:
    offsets = [0]
    prices: list[float] = []
    sizes: list[float] = []
    for book in books:
        if book:
            for price, size in book:
                prices.append(price)
                sizes.append(size)
        offsets.append(len(prices))
    values = pa.StructArray.from_arrays(
        [pa.array(prices, pa.float64()), pa.array(sizes, pa.float64())],
        names=["price", "size"])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=LEVELS_TYPE,
                                    mask=pa.array([not book for book in books]))


def quotes_table(quotes: Sequence[Quote], levels: bool = False) -> pa.Table:
    """``quotes`` (in order) as a table of :func:`quote_schema`."""
    columns: list[pa.Array] = [
        pa.array([q.received_ts for q in quotes], pa.float64()),
        pa.array([q.exchange_ts for q in quotes], pa.float64()),
        pa.array([q.exchange for q in quotes], pa.string()).dictionary_encode(),
        pa.array([q.symbol for q in quotes], pa.string()).dictionary_encode(),
        pa.array([q.bid for q in quotes], pa.float64()),
        pa.array([q.ask for q in quotes], pa.float64()),
        pa.array([q.bid_size for q in quotes], pa.float64()),
        pa.array([q.ask_size for q in quotes], pa.float64()),
    ]
    if levels:
        columns += [_levels_array([q.bids for q in quotes]),
                    _levels_array([q.asks for q in quotes])]
    return pa.Table.from_arrays(columns, schema=quote_schema(levels))


def _writer_options() -> dict[str, Any]:
    # Dictionary pages for every column (prices and sizes repeat a lot: a third smaller
    # than plain), falling back to plain where a column's values do not repeat; zstd
    # level 6 makes the file smaller than the gzip CSV of the same quotes.
    return {"compression": "zstd", "compression_level": 6}


def write_table_atomically(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` through a temporary name in the same directory, so
    ``path`` only ever holds a complete file."""
    temporary = path.with_name(f".{path.name}.partial")
    pq.write_table(table, temporary, row_group_size=ROW_GROUP_ROWS, **_writer_options())
    os.replace(temporary, path)


class ParquetQuoteWriter(TimeOrderedWriter):
    """Writes quotes to ``path`` as Parquet: one file when the name ends in ``.parquet``,
    else a directory of part files (created if missing); see the module docstring for
    how each survives a crash. Quotes leave in ``local_ts`` order as the CSV writer's
    do (:class:`~arbotd_replay.quotefile.TimeOrderedWriter`)."""

    def __init__(self, path: Path, *, reorder_seconds: float = 2.0,
                 sync_seconds: float = 60.0, levels: bool = False) -> None:
        super().__init__(reorder_seconds=reorder_seconds, sync_seconds=sync_seconds)
        self.path = path
        self.levels = levels
        self.single_file = path.name.endswith(".parquet")
        self._rows: list[Quote] = []
        self._parts = 0
        self._file: pq.ParquetWriter | None = None
        if self.single_file:
            self._temporary = path.with_name(f".{path.name}.partial")
            self._file = pq.ParquetWriter(self._temporary, quote_schema(levels),
                                          **_writer_options())
        else:
            path.mkdir(parents=True, exist_ok=True)
        self._emit = self._rows.append  # type: ignore[method-assign]

    def _write_until(self, limit: float) -> None:
        super()._write_until(limit)
        if len(self._rows) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        table = quotes_table(self._rows, self.levels)
        self._rows.clear()
        if self._file is not None:
            self._file.write_table(table, row_group_size=ROW_GROUP_ROWS)
        else:
            write_table_atomically(table, self.path / f"part-{self._parts:06d}.parquet")
            self._parts += 1

    def sync(self) -> None:
        # A single file is only readable once closed: its rows wait for a full row group.
        if not self.single_file:
            self._flush()
        super().sync()

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        self._flush()
        if self._file is not None:
            self._file.close()
            os.replace(self._temporary, self.path)


# --- reading ---------------------------------------------------------------------------------

def is_parquet(path: Path) -> bool:
    """Whether ``path`` is a Parquet recording: a directory, or a file that starts with
    Parquet's magic bytes (whatever its name)."""
    if path.is_dir():
        return True
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == _MAGIC
    except OSError:
        return path.name.endswith(".parquet")


def parquet_files(path: Path) -> list[Path]:
    """The files of a recording: ``path`` itself, or the ``*.parquet`` files under the
    directory ``path`` in the order of their paths (names starting with ``.`` or ``_``
    left out: temporary files and Spark's markers). Raises :class:`BadDataError`."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.rglob("*.parquet")
                   if not any(part.startswith((".", "_"))
                              for part in p.relative_to(path).parts))
    if not files:
        raise BadDataError(f"{path}: no .parquet files in this directory")
    return files


def _check_schema(name: str, schema: pa.Schema) -> bool:
    """Whether the file has book levels; raises :class:`BadDataError` for columns other
    than the recording's (names in any order, numbers of any numeric type)."""
    names = list(schema.names)
    expected = (f"expected the columns {', '.join(COLUMNS)} (and bids, asks with book "
                "levels)")
    unknown = [n for n in names if n not in DEPTH_COLUMNS]
    wanted = DEPTH_COLUMNS if {"bids", "asks"} & set(names) else COLUMNS
    missing = [c for c in wanted if c not in names]
    parts = []
    if unknown:
        parts.append(f"unknown column{'s' * (len(unknown) > 1)} "
                     + ", ".join(repr(n) for n in unknown))
        if any(n.startswith("__index_level") for n in unknown):
            parts.append("(a pandas index: write the file with index=False)")
    if missing:
        parts.append(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}")
    for field in schema:
        kind = field.type
        if field.name in NUMBER_COLUMNS and not (pa.types.is_floating(kind)
                                           or pa.types.is_integer(kind)):
            parts.append(f"column {field.name} is {kind}, not a number")
        elif field.name in _NAMES and not (
                pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or (pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type))):
            parts.append(f"column {field.name} is {kind}, not text")
        elif field.name in ("bids", "asks") and not kind.equals(LEVELS_TYPE):
            parts.append(f"column {field.name} is {kind}, not {LEVELS_TYPE}")
    if parts:
        raise BadDataError(f"{name}: {'; '.join(parts)}; {expected}")
    return "bids" in names


def _columns(exchange: pa.Array, symbol: pa.Array) -> tuple[Any, ...] | None:
    """A batch's names as the first :class:`arbotd.batch.QuoteBatch` columns (the
    dictionaries' values and indices as they are), or ``None`` when they are not
    dictionary-encoded."""
    if not (pa.types.is_dictionary(exchange.type) and pa.types.is_dictionary(symbol.type)):
        return None
    return (exchange.dictionary.to_pylist(), exchange.indices.to_numpy(zero_copy_only=False),
            symbol.dictionary.to_pylist(), symbol.indices.to_numpy(zero_copy_only=False))


def _books(column: pa.Array) -> tuple[list[Any], list[Any], list[tuple[int, int]]]:
    """A ``bids`` or ``asks`` column as flat prices, flat sizes and each row's span of
    them (row ``i`` has the levels ``low:high`` of ``spans[i]``; a null row none)."""
    values = column.values
    spans = list(itertools.pairwise(column.offsets.to_pylist()))
    if column.null_count:
        # A null row's offsets may still span values: it has no levels.
        valid = column.is_valid().to_pylist()
        spans = [span if ok else (span[0], span[0])
                 for span, ok in zip(spans, valid, strict=True)]
    return values.field("price").to_pylist(), values.field("size").to_pylist(), spans


class ParquetQuoteReader:
    """Reads a Parquet recording (a file or a directory, see :func:`parquet_files`) in
    batches of :class:`arbotd.Quote`, from ``start`` (included) to ``end`` (excluded),
    skipping bad rows into ``problems`` exactly as
    :class:`~arbotd_replay.quotefile.QuoteFileReader` does for a CSV file (the same kinds,
    the same checks, the same quotes kept), so both formats of the same quotes replay the
    same. The interface is the CSV reader's: :meth:`open`, :meth:`batches`,
    :meth:`progress`, :meth:`close`, ``levels``."""

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
        self._files: list[tuple[Path, int]] = []
        self._total = 1
        self._done = 0
        self._open_file: pq.ParquetFile | None = None

    def open(self) -> ParquetQuoteReader:
        """Find the files and check each one's schema (its footer only). Raises
        :class:`BadDataError` naming a file that is not a readable Parquet recording."""
        if not self.path.exists():
            raise BadDataError(f"{self.name}: cannot open: No such file or directory")
        files = []
        levels = set()
        for path in parquet_files(self.path):
            try:
                metadata = pq.read_metadata(path)
                schema = metadata.schema.to_arrow_schema()
            except (OSError, pa.ArrowException) as err:
                detail = " ".join(str(err).split())
                raise BadDataError(f"{path}: not a readable Parquet file ({detail}); a file "
                                   "cut short (a recorder killed before closing it) has "
                                   "no footer and cannot be read") from None
            levels.add(_check_schema(str(path), schema))
            files.append((path, metadata.num_rows))
        self.levels = True in levels
        self._files = files
        self._total = max(1, sum(rows for _, rows in files))
        return self

    def close(self) -> None:
        if self._open_file is not None:
            with contextlib.suppress(OSError):
                self._open_file.close()
            self._open_file = None

    def progress(self) -> float:
        """The share of the rows read so far."""
        return min(1.0, self._done / self._total)

    def batches(self) -> Iterator[Sequence[Quote]]:
        """The quotes, in batches of up to ``batch_size``, files in name order (a
        :class:`arbotd.batch.QuoteBatch` for a batch without bad rows)."""
        if not self._files:
            self.open()
        state = _ReadState()
        try:
            for path, _rows in self._files:
                if state.stopped:
                    break
                yield from self._read_file(path, state)
        finally:
            self.close()
            self._done = self._total

    def _read_file(self, path: Path, state: _ReadState) -> Iterator[list[Quote]]:
        name = str(path)
        row = 0
        try:
            self._open_file = file = pq.ParquetFile(path)
            metadata = file.metadata
            column = metadata.schema.names.index("local_ts")
            # A row group at a time: a damaged one costs only itself and what follows.
            for group in range(file.num_row_groups):
                statistics = metadata.row_group(group).column(column).statistics
                if (statistics is not None and statistics.has_min_max
                        and statistics.max < self.start):
                    # Wholly before the start: not read at all (a walk-forward's
                    # out-of-sample part of a long recording costs only its own rows).
                    skipped = metadata.row_group(group).num_rows
                    row += skipped
                    self._done += skipped
                    continue
                for record_batch in file.iter_batches(batch_size=self.batch_size,
                                                      row_groups=[group]):
                    quotes = self._decode(record_batch, name, row, state)
                    row += record_batch.num_rows
                    self._done += record_batch.num_rows
                    if quotes:
                        self.rows += len(quotes)
                        yield quotes
                    if state.stopped:
                        return
        except (OSError, pa.ArrowException) as err:
            detail = " ".join(str(err).split())
            self.problems.add(f"{name}:row {row + 1}", "truncated",
                              f"cannot read the file from here ({detail}); the rows before "
                              "are used")
        finally:
            self.close()

    def _decode(self, batch: pa.RecordBatch, name: str, first_row: int, state: _ReadState
                ) -> Sequence[Quote]:
        numbers = {}
        for column in NUMBER_COLUMNS:
            array = batch.column(column)
            if not pa.types.is_float64(array.type):
                array = array.cast(pa.float64())
            numbers[column] = array
        locals_array = numbers["local_ts"]
        levels = "bids" in batch.schema.names
        if _all_good(batch, numbers, state):
            if levels:
                # Before anything of the batch is taken: a row whose levels may be bad
                # sends the whole batch, from where reading stood, row by row.
                bids = _book_levels(batch.column("bids"), numbers["bid"], numbers["bid_size"],
                                    True)
                asks = _book_levels(batch.column("asks"), numbers["ask"], numbers["ask_size"],
                                    False)
                if bids is None or asks is None:
                    return self._decode_slowly(batch, numbers, name, first_row, state)
            local = locals_array.to_numpy(zero_copy_only=False)
            low = int(np.searchsorted(local, self.start, side="left"))
            high = int(np.searchsorted(local, self.end, side="left"))
            if high < len(local):
                state.stopped = True
            state.last = float(local[high - 1]) if high else state.last
            if high <= low:
                return []
            more: list[Any] = []
            if levels:
                more = [bids.rows(slice(low, high)), asks.rows(slice(low, high))]
            state.previous_row = batch.slice(batch.num_rows - 1).to_pylist()[0]
            exchange = batch.column("exchange").slice(low, high - low)
            symbol = batch.column("symbol").slice(low, high - low)
            bid, ask, bid_size, ask_size, stamp, local = (
                numbers[column].slice(low, high - low).to_numpy(zero_copy_only=False)
                for column in ("bid", "ask", "bid_size", "ask_size", "exchange_ts",
                               "local_ts"))
            columns = _columns(exchange, symbol)
            if columns is None:
                # Names not dictionary-encoded: decoded now.
                return QuoteBatch([text_values(exchange), text_values(symbol),
                                   *(array.tolist() for array in (
                                       bid, ask, bid_size, ask_size, stamp, local)), *more])
            return QuoteBatch.coded((*columns, bid, ask, local), bid_size, ask_size, stamp,
                                    *more)
        return self._decode_slowly(batch, numbers, name, first_row, state)

    def _decode_slowly(self, batch: pa.RecordBatch, numbers: dict[str, pa.Array], name: str,
                       first_row: int, state: _ReadState) -> list[Quote]:
        """Row by row, as the CSV reader goes through its rows: each bad row reported
        and skipped, reading stopped at the first good row at or after ``end``."""
        columns = {key: array.to_pylist() for key, array in numbers.items()}
        exchange = text_values(batch.column("exchange"))
        symbol = text_values(batch.column("symbol"))
        levels = "bids" in batch.schema.names
        if levels:
            bid_books = _books(batch.column("bids"))
            ask_books = _books(batch.column("asks"))
        rows = batch.to_pylist()
        start, end = self.start, self.end
        quotes: list[Quote] = []
        last = state.last
        previous = state.previous_row
        for index, row in enumerate(rows):
            where = f"{name}:row {first_row + index + 1}"
            if row == previous:
                self.problems.add(where, "duplicate", "the same row as the row before")
                continue
            previous = row
            values = [columns[key][index] for key in NUMBER_COLUMNS]
            if None in values or exchange[index] is None or symbol[index] is None:
                empty = [key for key, value in zip(NUMBER_COLUMNS, values, strict=True)
                         if value is None]
                empty += [key for key, value in (("exchange", exchange[index]),
                                                 ("symbol", symbol[index])) if value is None]
                self.problems.add(where, "unparseable", f"{', '.join(empty)} empty (null)")
                continue
            local, stamp, bid, ask, bid_size, ask_size = values
            bids = asks = ([], [])
            if levels:
                bids = _row_levels(bid_books, index)
                asks = _row_levels(ask_books, index)
                if None in bids[0] or None in bids[1] or None in asks[0] or None in asks[1]:
                    self.problems.add(where, "bad_levels", "a level's price or size is null")
                    continue
            if (-_INF < local < end and last <= local and 0.0 < bid <= ask < _INF
                    and 0.0 <= bid_size < _INF and 0.0 <= ask_size < _INF
                    and -_INF < stamp < _INF and exchange[index] and symbol[index]
                    and (not bids[0] or levels_fault(*bids, bid, bid_size, True) is None)
                    and (not asks[0] or levels_fault(*asks, ask, ask_size, False) is None)):
                last = local
                if local >= start:
                    quotes.append(Quote(
                        exchange[index], symbol[index], bid, ask, bid_size, ask_size, stamp,
                        local, tuple(zip(*bids, strict=True)) if bids[0] else None,
                        tuple(zip(*asks, strict=True)) if asks[0] else None))
                continue
            if judge_row(self.problems, where, end, last, local, exchange[index],
                         symbol[index], bid, ask, bid_size, ask_size, stamp, bids, asks):
                state.stopped = True
                break
        state.last = last
        state.previous_row = previous
        return quotes


class _ReadState:
    """What reading one batch leaves for the next: the ``local_ts`` of the last row
    used, the last row (for duplicates), whether reading has reached ``end``."""

    __slots__ = ("last", "previous_row", "stopped")

    def __init__(self) -> None:
        self.last = -_INF
        self.previous_row: dict[str, Any] | None = None
        self.stopped = False


def _row_levels(books: tuple[list[Any], list[Any], list[tuple[int, int]]], index: int
                ) -> tuple[list[Any], list[Any]]:
    prices, sizes, spans = books
    low, high = spans[index]
    return prices[low:high], sizes[low:high]


def _book_levels(column: pa.Array, best: pa.Array, best_size: pa.Array, descending: bool
                 ) -> BookLevels | None:
    """A ``bids`` or ``asks`` column as :class:`arbotd.batch.BookLevels` (a null row has
    no levels) when every row's levels pass the CSV reader's check
    (:func:`~arbotd_replay.quotefile.levels_good`); ``None`` when a row's may not (or a
    level is null): the batch is then read row by row, which names the row and what is
    wrong."""
    values = column.values
    price_array, size_array = values.field("price"), values.field("size")
    if values.null_count or price_array.null_count or size_array.null_count:
        return None
    offsets = column.offsets.to_numpy(zero_copy_only=False).astype(np.intp)
    starts, ends = offsets[:-1], offsets[1:]
    if column.null_count:
        ends = np.where(column.is_valid().to_numpy(zero_copy_only=False), ends, starts)
    levels = BookLevels(price_array.to_numpy(zero_copy_only=False),
                        size_array.to_numpy(zero_copy_only=False), starts, ends)
    if levels_good(levels, best.to_numpy(zero_copy_only=False),
                   best_size.to_numpy(zero_copy_only=False), descending):
        return levels
    return None


def _all_good(batch: pa.RecordBatch, numbers: dict[str, pa.Array], state: _ReadState
              ) -> bool:
    """Whether every row of ``batch`` passes the CSV reader's quick test on its best
    level (:func:`~arbotd_replay.quotefile.rows_good`), is in order (after the last row
    used) and is not a copy of the row before: then the batch is decoded whole, with no
    check per row. Each test is one pass over a column."""
    if batch.num_rows == 0:
        return True
    if any(array.null_count for array in numbers.values()):
        return False
    for column in _NAMES:
        names = batch.column(column)
        if names.null_count:
            return False
        values = names.dictionary if pa.types.is_dictionary(names.type) else names
        if len(values) and pc.min(pc.utf8_length(values)).as_py() == 0:
            return False
    local, stamp, bid, ask, bid_size, ask_size = (
        numbers[column].to_numpy(zero_copy_only=False) for column in NUMBER_COLUMNS)
    if not rows_good(local, stamp, bid, ask, bid_size, ask_size):
        return False
    first = float(local[0])
    if first < state.last or (state.previous_row is not None
                              and state.previous_row["local_ts"] == first
                              and state.previous_row == batch.slice(0, 1).to_pylist()[0]):
        return False
    # A row equal to the one before is a copy: only where the times are equal can it
    # be, so that is tested first and the rest only if there are such rows.
    same = local[1:] == local[:-1]
    if same.any():
        for column in batch.schema.names:
            if column in ("local_ts", "bids", "asks"):
                continue
            array = batch.column(column)
            if pa.types.is_dictionary(array.type):
                array = array.indices
            values = array.to_numpy(zero_copy_only=False)
            same &= values[1:] == values[:-1]
        if same.any():
            return False
    return True
