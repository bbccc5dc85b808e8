"""Choosing a recording's format by its path, and moving quotes between formats:
``arbotd record --format``, ``arbotd convert`` and ``arbotd export``.

A path names a Parquet recording when it ends in ``.parquet`` (one file) or is, or is
to be, a directory (part files); a CSV one when it ends in ``.csv`` or ``.csv.gz``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from arbotd import Quote
from arbotd_replay.parquetfile import ParquetQuoteWriter, quotes_table, write_table_atomically
from arbotd_replay.quotefile import DataProblems, QuoteFileWriter, TimeOrderedWriter
from arbotd_replay.sources import open_reader

__all__ = [
    "EXPORT_PART_ROWS",
    "FORMATS",
    "DayPartitionedWriter",
    "convert",
    "export_quotes",
    "is_taken",
    "open_writer",
    "recording_format",
]

FORMATS = ("csv", "parquet")
EXPORT_PART_ROWS = 1_000_000
"""Most quotes in one part file of an export (a day with more gets several)."""


def recording_format(where: Path | str, format: str | None = None) -> str:
    """``csv`` or ``parquet``: ``format`` when given (checked against the name), else
    told by the name (a name ending in ``/`` is a directory to be). Raises
    ``ValueError`` saying what was wrong."""
    path = Path(where)
    name = path.name
    by_name = ("parquet" if name.endswith(".parquet") or path.is_dir()
               or str(where).endswith("/")
               else "csv" if name.endswith((".csv", ".csv.gz")) else None)
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}: expected csv or parquet")
        if by_name is not None and by_name != format:
            raise ValueError(f"{path} names a {by_name} recording, not {format}")
        if format == "csv" and by_name is None:
            raise ValueError(f"{path}: a CSV recording's name ends in .csv.gz or .csv")
        return format
    if by_name is None:
        raise ValueError(f"{path}: cannot tell the format from the name: end it in .csv.gz, "
                         ".csv or .parquet, name a directory, or give --format")
    return by_name


def is_taken(path: Path) -> bool:
    """Whether writing to ``path`` would overwrite something: a non-empty file, or a
    directory with anything in it. A recording is market that cannot be had again."""
    if path.is_dir():
        return any(path.iterdir())
    return path.exists() and path.stat().st_size > 0


def open_writer(path: Path, format: str, *, levels: bool, reorder_seconds: float = 2.0
                ) -> TimeOrderedWriter:
    """A writer of recorded quotes in ``format`` (see :func:`recording_format`)."""
    if format == "parquet":
        return ParquetQuoteWriter(path, levels=levels, reorder_seconds=reorder_seconds)
    return QuoteFileWriter(path, levels=levels, reorder_seconds=reorder_seconds)


def convert(source: Path, destination: Path | str, problems: DataProblems,
            format: str | None = None) -> tuple[int, bool]:
    """Copy the quotes of the recording ``source`` (either format) to ``destination``
    (the format of its name, or ``format``), book levels kept when the source has them.
    Bad rows of the source are skipped into ``problems`` as a backtest skips them.
    Returns the quotes written and whether they carry levels. Raises
    :class:`~arbotd_replay.quotefile.BadDataError` or ``ValueError``."""
    kind = recording_format(destination, format)
    destination = Path(destination)
    if source.resolve() == destination.resolve():
        raise ValueError(f"{destination} is the file being converted")
    reader = open_reader(source, problems)
    writer = open_writer(destination, kind, levels=reader.levels, reorder_seconds=0.0)
    try:
        for batch in reader.batches():
            writer.write_all(batch)
    finally:
        writer.close()
    problems.finish()
    return writer.written, reader.levels


class DayPartitionedWriter:
    """Quotes (in time order) into ``DIR/date=YYYY-MM-DD/part-NNNNN.parquet``, a day by
    the UTC date of ``local_ts``, at most :data:`EXPORT_PART_ROWS` quotes a file, each
    file written under a temporary name and renamed when complete. The paths sort in
    time order, so the directory reads back as one recording; ``date=`` is Hive's
    partition naming, which pandas, polars, Spark and DuckDB recognise."""

    def __init__(self, directory: Path, *, levels: bool = False,
                 part_rows: int = EXPORT_PART_ROWS) -> None:
        self.directory = directory
        self.levels = levels
        self.part_rows = part_rows
        self.days: dict[str, int] = {}
        self._day: str | None = None
        self._rows: list[Quote] = []
        self._part = 0

    def write_all(self, quotes: Iterable[Quote]) -> None:
        for quote in quotes:
            day = dt.datetime.fromtimestamp(quote.received_ts, dt.UTC).strftime("%Y-%m-%d")
            if day != self._day:
                self._flush()
                self._day, self._part = day, 0
            self._rows.append(quote)
            if len(self._rows) >= self.part_rows:
                self._flush()

    def _flush(self) -> None:
        if not self._rows or self._day is None:
            return
        folder = self.directory / f"date={self._day}"
        folder.mkdir(parents=True, exist_ok=True)
        write_table_atomically(quotes_table(self._rows, self.levels),
                               folder / f"part-{self._part:05d}.parquet")
        self.days[self._day] = self.days.get(self._day, 0) + len(self._rows)
        self._part += 1
        self._rows = []

    def close(self) -> None:
        self._flush()


def export_quotes(batches: Iterator[list[Quote]], directory: Path, *,
                  levels: bool = False) -> dict[str, int]:
    """Write ``batches`` (in time order) partitioned by day under ``directory``; returns
    the quotes written per day. ``batches`` is closed (if it can be) before this
    returns."""
    writer = DayPartitionedWriter(directory, levels=levels)
    try:
        for batch in batches:
            writer.write_all(batch)
        writer.close()
    finally:
        close: Any = getattr(batches, "close", None)
        if callable(close):
            close()
    return writer.days

