"""Several recordings replayed together: their batches are merged into batches in
``received_ts`` order (quotes of the same time in the order the files were given), the
order a quote-by-quote merge gives, without building a quote; a file whose period no
other file's quotes fall within passes its batches through as they are; and a backtest
of a recording split into files (CSV and Parquet) reports what the whole file does."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from support import plain_quotes, simulated_quotes

from arbotd import Quote, make_plugin_manager
from arbotd._runtime import load_with_plugins
from arbotd.batch import BookLevels, QuoteBatch, merge_batches
from arbotd_replay import BacktestOptions, DataProblems, QuoteFileWriter, run_backtest
from arbotd_replay.parquetfile import ParquetQuoteWriter
from arbotd_replay.sources import file_source, merged_batches

T0 = 1_750_000_000.0

pytestmark = pytest.mark.usefixtures("isolated_logging")


def stream_quotes(rng: random.Random, count: int, offset: float, levels: bool
                  ) -> list[Quote]:
    """Quotes in time order, many at the same time (within the stream and across
    streams)."""
    times = sorted(T0 + offset + rng.randrange(60) * 0.5 for _ in range(count))
    quotes = []
    for stamp in times:
        bid = round(rng.uniform(90, 110), 2)
        book = rng.random() < 0.3 and levels
        quotes.append(Quote(rng.choice(["a", "b", "c"]), rng.choice(["X", "Y"]), bid,
                            bid + 0.5, 1.0, 2.0, stamp - 0.001, stamp,
                            ((bid, 1.0), (bid - 1, 2.0)) if book else None,
                            ((bid + 0.5, 2.0), (bid + 1.5, 1.0)) if book else None))
    return quotes


def as_reader_batch(rng: random.Random, quotes: list[Quote], levels: bool) -> Sequence[Quote]:
    """``quotes`` as one of the kinds of batch a reader hands over: a list of quotes, a
    batch of them, a batch of field lists, or a batch of arrays (its dictionaries with a
    name twice and one unused)."""
    kind = rng.choice(["list", "of", "fields", "arrays"])
    if kind == "list":
        return list(quotes)
    if kind == "of":
        return QuoteBatch.of(quotes)
    width = 10 if levels else 8
    fields = [[getattr(q, field.name) for q in quotes]
              for field in attrs.fields(Quote)[:width]]
    if kind == "fields":
        return QuoteBatch(fields)
    exchanges, symbols = ["b", "a", "c", "a", "unused"], ["Y", "X", "Y"]

    def codes(names: list[str], values: list[str]) -> np.ndarray:
        return np.array([rng.choice([i for i, n in enumerate(names) if n == v])
                         for v in values], dtype=np.int32)

    columns = (exchanges, codes(exchanges, fields[0]), symbols, codes(symbols, fields[1]),
               np.array(fields[2]), np.array(fields[3]), np.array(fields[7]))
    more: list[Any] = fields[8:]
    if levels and rng.random() < 0.5:
        more = [book_levels(rng, books) for books in more]
    return QuoteBatch.coded(columns, *map(np.array, fields[4:7]), *more)


def book_levels(rng: random.Random, books: list[Any]) -> BookLevels:
    """``books`` (each a tuple of levels or None) as a reader's BookLevels: flat arrays
    with a level that belongs to no row here and there, rows in any order of storage."""
    prices: list[float] = []
    sizes: list[float] = []
    starts, ends = [], []
    for book in books:
        if rng.random() < 0.2:
            prices.append(-1.0)
            sizes.append(-1.0)
        starts.append(len(prices))
        for price, size in book or ():
            prices.append(price)
            sizes.append(size)
        ends.append(len(prices))
    return BookLevels(np.array(prices), np.array(sizes), np.array(starts, dtype=np.intp),
                      np.array(ends, dtype=np.intp))


def batched(rng: random.Random, quotes: list[Quote], levels: bool) -> Iterator[Sequence[Quote]]:
    index = 0
    while index < len(quotes):
        size = rng.choice([0, 1, 3, 17, 64, 200])
        yield as_reader_batch(rng, quotes[index:index + size], levels)
        index += size


@pytest.mark.parametrize("seed", range(24))
def test_merged_batches_order_quotes_as_a_quote_by_quote_merge(seed: int) -> None:
    rng = random.Random(seed)
    levels = seed % 2 == 0
    streams = [stream_quotes(rng, rng.choice([0, 1, 50, 400]),
                             rng.choice([0.0, 0.0, 7.0, 40.0]), levels)
               for _ in range(rng.choice([2, 3, 4]))]
    expected = list(heapq.merge(*streams, key=attrgetter("received_ts")))
    size = rng.choice([5, 100, 4096])
    merged = list(merged_batches([batched(rng, quotes, levels) for quotes in streams], size))
    assert all(0 < len(batch) <= size for batch in merged)
    assert plain_quotes(q for batch in merged for q in batch) == expected
    # Each merged batch answers for its book as its quotes do.
    for batch in merged:
        if isinstance(batch, QuoteBatch) and len(batch) > 1:
            book = {(q.symbol, q.exchange): q for q in batch}
            assert {(q.symbol, q.exchange): q for q in batch.latest(0, len(batch))} == book
            counts: dict[str, int] = {}
            for quote in batch:
                counts[quote.exchange] = counts.get(quote.exchange, 0) + 1
            assert batch.tallies(0, len(batch)) == counts


def test_a_file_of_its_own_period_passes_its_batches_as_they_are() -> None:
    rng = random.Random(1)
    before = stream_quotes(rng, 300, 0.0, False)
    after = stream_quotes(rng, 300, 100.0, False)
    first = [QuoteBatch.of(before[i:i + 64]) for i in range(0, 300, 64)]
    second = [QuoteBatch.of(after[i:i + 64]) for i in range(0, 300, 64)]
    merged = list(merged_batches([iter(first), iter(second)]))
    assert len(merged) == len(first) + len(second)
    assert all(got is given for got, given in zip(merged, first + second, strict=True))


def test_merge_batches_keeps_the_order_of_the_batches_for_a_time() -> None:
    a = [Quote("a", "X", 1.0, 2.0, 1.0, 1.0, T0, T0 + t) for t in (0, 1, 1, 2)]
    b = [Quote("b", "X", 1.0, 2.0, 1.0, 1.0, T0, T0 + t) for t in (1, 1, 3)]
    merged = merge_batches([QuoteBatch.of(a), b])
    assert list(merged) == [a[0], a[1], a[2], b[0], b[1], a[3], b[2]]
    assert merged.columns[0] == ["a", "b"] and merged.received == [
        T0 + t for t in (0, 1, 1, 1, 1, 2, 3)]


def backtest(config_path: Path, batches: Any) -> Any:
    pm = make_plugin_manager()
    config = load_with_plugins(config_path, pm)
    return run_backtest(pm, config, batches, options=BacktestOptions(),
                        problems=DataProblems())


def test_a_recording_split_into_files_replays_as_the_whole(tmp_path: Path) -> None:
    prices = {"BTCUSDT": 65_000.0, "ETHUSDT": 3_500.0}
    quotes = simulated_quotes(12_000, prices, start=T0)
    config = tmp_path / "arbot.toml"
    config.write_text("[arbitrage]\nsymbols = [\"BTCUSDT\", \"ETHUSDT\"]\n"
                      "max_trades_per_hour = 100000\ncooldown_seconds = 5.0\n")
    whole = tmp_path / "whole.parquet"
    writer = ParquetQuoteWriter(whole, reorder_seconds=0.0)
    writer.write_all(quotes)
    writer.close()
    # One venue's quotes to CSV, the others' to Parquet (quotes at the same times in
    # both); and the same quotes cut in two periods, the second half first on the line.
    venue = quotes[0].exchange
    csv_path, rest = tmp_path / "one-venue.csv.gz", tmp_path / "other-venues.parquet"
    early, late = tmp_path / "early.csv.gz", tmp_path / "late.parquet"
    middle = quotes[len(quotes) // 2].received_ts
    for path, chosen in ((csv_path, [q for q in quotes if q.exchange == venue]),
                         (rest, [q for q in quotes if q.exchange != venue]),
                         (early, [q for q in quotes if q.received_ts < middle]),
                         (late, [q for q in quotes if q.received_ts >= middle])):
        file_writer = (QuoteFileWriter if path.name.endswith(".csv.gz")
                       else ParquetQuoteWriter)(path, reorder_seconds=0.0)
        file_writer.write_all(chosen)
        file_writer.close()
    expected = backtest(config, file_source([whole], DataProblems())[0])
    assert expected.metrics["total_trades"] > 0
    for paths in ([csv_path, rest], [rest, csv_path], [late, early]):
        result = backtest(config, file_source(paths, DataProblems())[0])
        assert result.metrics == expected.metrics, paths
        assert result.trades == expected.trades
        assert result.signals == expected.signals


def test_a_batch_of_arrays_builds_book_levels_as_asked() -> None:
    rng = random.Random(4)
    quotes = stream_quotes(rng, 120, 0.0, True)
    fields = [[getattr(q, field.name) for q in quotes] for field in attrs.fields(Quote)[:10]]
    exchanges, symbols = ["a", "b", "c"], ["X", "Y"]
    columns = (exchanges, np.array([exchanges.index(v) for v in fields[0]]), symbols,
               np.array([symbols.index(v) for v in fields[1]]), np.array(fields[2]),
               np.array(fields[3]), np.array(fields[7]))
    batch = QuoteBatch.coded(columns, *map(np.array, fields[4:7]),
                             *(book_levels(rng, books) for books in fields[8:]))
    assert [batch[i] for i in range(-120, 120)] == quotes + quotes
    assert batch[30:77] == quotes[30:77] and batch.rows(10, 50)[::3] == quotes[10:50:3]
    assert batch.fields[8] == [q.bids for q in quotes]
    latest = plain_quotes(batch.latest(0, 120))
    assert {(q.symbol, q.exchange): q for q in latest} == {
        (q.symbol, q.exchange): q for q in quotes}
    assert list(batch) == quotes
