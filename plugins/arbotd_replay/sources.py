"""Where replayed quotes come from: recorded files (CSV or Parquet), or the quotes a storage backend
recorded (``[storage] record_quotes = true``), merged into one stream in ``local_ts``
order.

Each source is an iterator of quote batches plus a function telling how far it has got
(a fraction, for progress bars). Several files are merged by ``local_ts`` (ties keep the
order the files were given in); one file is passed through as it is, without the cost
of merging.

A storage backend offers its recorded quotes through a synchronous generator method,
found by duck typing::

    storage.recorded_quotes(start: float, end: float, *, symbols=None, exchanges=None)
        -> Iterator[list[arbotd.Quote]]

yielding batches in ``received_ts`` order, from ``start`` (included) to ``end``
(excluded). It is called in a worker thread and may block. ``arbotd_sql`` provides it.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from arbotd import Quote
from arbotd.batch import QuoteBatch, merge_batches
from arbotd_replay.parquetfile import ParquetQuoteReader, is_parquet
from arbotd_replay.quotefile import BATCH_SIZE, DataProblems, QuoteFileReader

__all__ = ["Source", "file_source", "merged_batches", "open_reader", "rebatch",
           "storage_source"]

Source = tuple[Iterator[list[Quote]], Callable[[], float]]
_INF = math.inf


def rebatch(quotes: Iterable[Quote], size: int = BATCH_SIZE) -> Iterator[list[Quote]]:
    iterator = iter(quotes)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def open_reader(path: Path, problems: DataProblems, *, start: float = -_INF,
                end: float = _INF) -> QuoteFileReader | ParquetQuoteReader:
    """The reader of one recording, opened: a Parquet file or directory (told by its
    content, not its name), else a CSV file. Raises
    :class:`~arbotd_replay.quotefile.BadDataError`."""
    reader: QuoteFileReader | ParquetQuoteReader
    if is_parquet(path):
        reader = ParquetQuoteReader(path, problems, start=start, end=end)
    else:
        reader = QuoteFileReader(path, problems, start=start, end=end)
    return reader.open()


def file_source(paths: Sequence[Path], problems: DataProblems, *, start: float = -_INF,
                end: float = _INF) -> Source:
    """The quotes of ``paths`` (CSV files, Parquet files or directories of them) merged
    in time order. Every recording is opened (and its header or schema checked) here, so
    one that cannot be used stops the backtest before it starts; raises
    :class:`~arbotd_replay.quotefile.BadDataError`."""
    readers: list[QuoteFileReader | ParquetQuoteReader] = []
    try:
        for path in paths:
            readers.append(open_reader(Path(path), problems, start=start, end=end))
    except BaseException:
        for reader in readers:
            reader.close()
        raise
    if len(readers) == 1:
        return readers[0].batches(), readers[0].progress

    def progress() -> float:
        return sum(reader.progress() for reader in readers) / len(readers)

    return merged_batches([reader.batches() for reader in readers]), progress


def merged_batches(streams: Sequence[Iterator[Sequence[Quote]]], size: int = BATCH_SIZE
                   ) -> Iterator[QuoteBatch]:
    """The batches of ``streams`` (each in ``received_ts`` order) merged into batches of
    up to ``size`` quotes in ``received_ts`` order, quotes of the same time in the order
    of ``streams``: the order :func:`heapq.merge` gives their quotes, with no quote built
    (a whole batch that no other stream's quotes fall within passes as it is). Batches
    stay at a reader's size: a replay decides a batch's quiet quotes from the state at
    its start, and a longer batch leaves more of them undecided.

    Each stream has a batch under way. Its last time bounds what the stream can still
    bring: no stream brings anything earlier than the least of those times, ``horizon``.
    So the quotes before ``horizon`` of every stream go now; so do those at ``horizon``
    of the first stream whose batch ends there and of the streams before it (a later
    quote of theirs at that time comes after them, and before the other streams'), which
    empties that stream's batch."""
    iterators = [iter(stream) for stream in streams]
    pending: list[QuoteBatch | None] = [None] * len(iterators)
    received: list[Sequence[float]] = [[] for _ in iterators]
    live = [True] * len(iterators)
    while True:
        for index, iterator in enumerate(iterators):
            while live[index] and pending[index] is None:
                batch = next(iterator, None)
                if batch is None:
                    live[index] = False
                elif len(batch):
                    pending[index] = batch = (batch if isinstance(batch, QuoteBatch)
                                              else QuoteBatch.of(batch))
                    received[index] = batch.received
        waiting = [index for index, batch in enumerate(pending) if batch is not None]
        if not waiting:
            return
        ends = [received[index][-1] for index in waiting if live[index]]
        horizon = min(ends, default=_INF)
        first = next((index for index in waiting
                      if live[index] and received[index][-1] == horizon), len(pending))
        pieces = []
        for index in waiting:
            batch, times = pending[index], received[index]
            assert batch is not None
            if horizon == _INF:
                cut = len(times)
            elif index <= first:
                cut = bisect.bisect_right(times, horizon)
            else:
                cut = bisect.bisect_left(times, horizon)
            if cut:
                pieces.append(batch.rows(0, cut))
                if cut < len(times):
                    pending[index] = batch.rows(cut, len(times))
                    received[index] = times[cut:]
                else:
                    pending[index] = None
        merged = pieces[0] if len(pieces) == 1 else merge_batches(pieces)
        for start in range(0, len(merged), size):
            yield merged.rows(start, start + size)


def storage_source(storage: Any, problems: DataProblems, *, start: float, end: float,
                   symbols: Sequence[str] | None = None,
                   exchanges: Sequence[str] | None = None) -> Source:
    """The quotes ``storage`` recorded between ``start`` and ``end``, each checked as a
    file's rows are (a crossed or non-positive book is skipped into ``problems``, named
    ``DATABASE raw_quotes:LOCAL_TS``). Progress is the share of the time
    range replayed."""
    where = f"{getattr(storage, 'display', 'storage')} raw_quotes"
    reached = [start]

    def checked() -> Iterator[list[Quote]]:
        pages = storage.recorded_quotes(start, end, symbols=symbols, exchanges=exchanges)
        try:
            for batch in pages:
                good = [q for q in batch
                        if 0.0 < q.bid <= q.ask < _INF and 0.0 <= q.bid_size < _INF
                        and 0.0 <= q.ask_size < _INF]
                if len(good) != len(batch):
                    for quote in batch:
                        _judge_stored(quote, where, problems)
                if batch:
                    reached[0] = batch[-1].received_ts
                if good:
                    yield good
        finally:
            # Closed when this is, in the same thread: the storage's reading holds a
            # connection of that thread.
            close = getattr(pages, "close", None)
            if callable(close):
                close()

    def progress() -> float:
        return min(1.0, max(0.0, (reached[0] - start) / (end - start))) if end > start else 1.0

    return checked(), progress


def _judge_stored(quote: Quote, where: str, problems: DataProblems) -> None:
    place = f"{where}:{quote.received_ts!r}"
    if not (0.0 < quote.bid < _INF and 0.0 < quote.ask < _INF):
        problems.add(place, "non_positive_price",
                     f"{quote.exchange} {quote.symbol} bid {quote.bid!r} / ask {quote.ask!r}: "
                     "prices must be > 0")
    elif quote.bid > quote.ask:
        problems.add(place, "crossed", f"{quote.exchange} {quote.symbol} crossed book: bid "
                                       f"{quote.bid!r} above ask {quote.ask!r}")
    elif not (0.0 <= quote.bid_size < _INF and 0.0 <= quote.ask_size < _INF):
        problems.add(place, "negative_size", f"{quote.exchange} {quote.symbol} sizes "
                                             f"{quote.bid_size!r} / {quote.ask_size!r}")
