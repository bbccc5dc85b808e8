"""Parquet recordings: a backtest of the Parquet file of some quotes gives exactly the
report of the CSV file of the same quotes; ``arbotd convert`` goes both ways and keeps
book levels; ``arbotd export`` writes the storage's recorded quotes a folder a day; bad
rows, damaged and cut-short files are reported naming the file; a recorder writing
Parquet and stopped by a signal leaves a readable recording."""

from __future__ import annotations

import datetime as dt
import gzip
import math
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trio
from support import plain_quotes, simulated_quotes

from arbotd import Quote
from arbotd._cli import main
from arbotd_replay import DataProblems, QuoteFileReader, QuoteFileWriter, parquetfile
from arbotd_replay.parquetfile import (
    ParquetQuoteReader,
    ParquetQuoteWriter,
    quote_schema,
    quotes_table,
)
from arbotd_replay.quotefile import BadDataError
from arbotd_sql import SqlStorage
from arbotd_sql.config import StorageConfig

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "contrib" / "data" / "sample-quotes.csv.gz"
SHIPPED_CONFIG = ROOT / "etc" / "arbot.toml"
T0 = 1_750_000_000.0

pytestmark = pytest.mark.usefixtures("isolated_logging")


def run(capsys: pytest.CaptureFixture[str], *args: str, config: Path = SHIPPED_CONFIG
        ) -> tuple[int, str, str]:
    status = main(["-c", str(config), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def read_all(reader: QuoteFileReader | ParquetQuoteReader) -> list[Quote]:
    return plain_quotes(q for batch in reader.batches() for q in batch)


def simulated(count: int, depth: int) -> list[Quote]:
    """Quotes of three simulated venues in time order, books of ``depth`` levels."""
    return simulated_quotes(count, {"BTCUSDT": 65_000.0, "ETHUSDT": 3_500.0}, depth=depth,
                            start=T0)


def test_a_backtest_of_parquet_reports_exactly_what_the_csv_of_the_same_quotes_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "sample.parquet"
    status, _, err = run(capsys, "convert", str(SAMPLE), str(data))
    assert status == 0, err
    assert pq.read_schema(data).equals(quote_schema(levels=False))
    reports = {}
    for name, recording in (("csv", SAMPLE), ("parquet", data)):
        reports[name] = tmp_path / name
        status, _, err = run(capsys, "backtest", "--data", str(recording), "--report",
                               str(reports[name]))
        assert status == 0, err
    for report in ("metrics.json", "trades.csv", "fills.csv", "signals.csv"):
        assert (reports["csv"] / report).read_bytes() == \
               (reports["parquet"] / report).read_bytes(), report
    assert b'"total_trades": 0' not in (reports["csv"] / "metrics.json").read_bytes()


def test_a_depth_recording_reports_the_same_read_at_once_or_row_by_row(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Books of 3 levels (which paper fills walk), from CSV and Parquet, each read with
    its blocks and batches checked at once and read row by row: the same reports."""
    recording = tmp_path / "depth.csv.gz"
    writer = QuoteFileWriter(recording, reorder_seconds=0, levels=True)
    writer.write_all(simulated(30_000, 3))
    writer.close()
    data = tmp_path / "depth.parquet"
    status, _, err = run(capsys, "convert", str(recording), str(data))
    assert status == 0, err
    reports = {}
    for name, source, by_row in (("csv", recording, False), ("parquet", data, False),
                                 ("csv rows", recording, True),
                                 ("parquet rows", data, True)):
        with monkeypatch.context() as patch:
            if by_row:
                patch.setattr(QuoteFileReader, "_quick_block", lambda *args: None)
                patch.setattr(parquetfile, "_book_levels", lambda *args: None)
            reports[name] = tmp_path / name
            status, _, err = run(capsys, "backtest", "--data", str(source), "--report",
                                   str(reports[name]))
            assert status == 0, err
    for report in ("metrics.json", "trades.csv", "fills.csv", "signals.csv"):
        expected = (reports["csv rows"] / report).read_bytes()
        for name in ("csv", "parquet", "parquet rows"):
            assert (reports[name] / report).read_bytes() == expected, (name, report)
    assert b'"total_trades": 0' not in (reports["csv"] / "metrics.json").read_bytes()


@pytest.mark.parametrize("depth", [1, 3])
def test_convert_round_trip_keeps_every_quote_and_level(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int) -> None:
    original = tmp_path / "quotes.csv.gz"
    writer = QuoteFileWriter(original, reorder_seconds=0, levels=depth > 1)
    quotes = simulated(3_000, depth)
    writer.write_all(quotes)
    writer.close()
    for parquet in (tmp_path / "quotes.parquet", tmp_path / "parts"):
        back = tmp_path / f"back-{parquet.name}.csv.gz"
        status, _, err = run(capsys, "convert", str(original), str(parquet),
                             *(["--format", "parquet"] if parquet.suffix == "" else []))
        assert status == 0, err
        assert f"converted {len(quotes):,} quotes" in err
        assert ("with book levels" in err) == (depth > 1)
        read = read_all(ParquetQuoteReader(parquet, DataProblems(strict=True)))
        assert read == quotes
        assert all((q.bids is None) == (depth == 1) for q in read)
        status, _, err = run(capsys, "convert", str(parquet), str(back))
        assert status == 0, err
        assert gzip.decompress(back.read_bytes()) == gzip.decompress(original.read_bytes())


def test_reading_a_time_range_across_part_files(tmp_path: Path) -> None:
    quotes = simulated(3_000, 2)
    writer = ParquetQuoteWriter(tmp_path / "parts", reorder_seconds=0, levels=True)
    for index, quote in enumerate(quotes):
        writer.write(quote)
        if index % 700 == 0:
            writer.sync()  # a part file each time
    writer.close()
    assert len(list((tmp_path / "parts").glob("part-*.parquet"))) > 3
    start, end = quotes[1000].received_ts, quotes[2500].received_ts
    expected = [q for q in quotes if start <= q.received_ts < end]
    reader = ParquetQuoteReader(tmp_path / "parts", DataProblems(strict=True), start=start,
                                end=end, batch_size=128)
    assert read_all(reader) == expected


def bad_rows_table(levels: bool) -> pa.Table:
    def q(t: float, bid: float = 99.9, ask: float = 100.1) -> Quote:
        return Quote("ex_a", "BTCUSDT", bid, ask, 1.0, 2.0, T0 + t, T0 + t,
                     ((bid, 1.0), (bid - 1, 3.0)) if levels else None,
                     ((ask, 2.0), (ask + 1, 4.0)) if levels else None)

    rows = [q(1), q(2), q(2), q(3, bid=101.0), q(1.5), q(4, bid=-1.0), q(5)]
    return quotes_table(rows, levels)


@pytest.mark.parametrize("levels", [False, True])
def test_bad_rows_are_reported_as_the_csv_reader_reports_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], levels: bool) -> None:
    table = bad_rows_table(levels)
    parquet, csv_file = tmp_path / "bad.parquet", tmp_path / "bad.csv"
    pq.write_table(table, parquet)
    writer = QuoteFileWriter(csv_file, reorder_seconds=0, levels=levels)
    writer.write_all(read_all(ParquetQuoteReader(parquet, DataProblems(strict=False))))
    writer.close()
    csv_problems, parquet_problems = DataProblems(), DataProblems()
    from_csv = read_all(QuoteFileReader(csv_file, csv_problems))
    from_parquet = read_all(ParquetQuoteReader(parquet, parquet_problems))
    assert from_parquet == from_csv
    assert [q.received_ts - T0 for q in from_parquet] == [1, 2, 5]
    assert parquet_problems.counts == {"duplicate": 1, "crossed": 1, "unsorted": 1,
                                       "non_positive_price": 1}
    assert f"{parquet}:row 4: crossed book: bid 101.0 above ask 100.1" in \
        parquet_problems.messages
    # --strict: the first bad row stops the backtest, named by file and row
    status, _, err = run(capsys, "backtest", "--data", str(parquet), "--strict")
    assert status == 1
    assert f"{parquet}:row 3: the same row as the row before" in err


@pytest.mark.parametrize("stamp", [-float("inf"), float("inf"), float("nan")])
def test_a_first_row_at_no_time_is_reported_not_replayed(tmp_path: Path, stamp: float) -> None:
    good = Quote("ex_a", "BTCUSDT", 99.9, 100.1, 1.0, 2.0, T0, T0)
    table = quotes_table([Quote("ex_a", "BTCUSDT", 99.9, 100.1, 1.0, 2.0, T0, stamp), good])
    path = tmp_path / "first.parquet"
    pq.write_table(table, path)
    problems = DataProblems()
    assert read_all(ParquetQuoteReader(path, problems)) == [good]
    assert problems.messages == [f"{path}:row 1: local_ts is {stamp!r}"]


def test_a_damaged_or_cut_short_parquet_file_is_named(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    whole = tmp_path / "whole.parquet"
    pq.write_table(quotes_table(simulated(2_000, 1)), whole, row_group_size=500)
    content = whole.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(content[: len(content) // 2])
    status, _, err = run(capsys, "backtest", "--data", str(cut))
    assert status == 1
    assert f"{cut}: not a readable Parquet file" in err
    assert "no footer" in err
    # A row group damaged inside an otherwise whole file: the rows before it are used.
    damaged = tmp_path / "damaged.parquet"
    metadata = pq.read_metadata(whole)
    offset = metadata.row_group(2).column(4).data_page_offset
    damaged.write_bytes(content[:offset] + bytes(64) + content[offset + 64:])
    problems = DataProblems()
    quotes = read_all(ParquetQuoteReader(damaged, problems))
    assert len(quotes) >= 1000
    assert problems.counts["truncated"] == 1
    assert problems.messages[0].startswith(f"{damaged}:row ")
    with pytest.raises(BadDataError, match=rf"{damaged}:row \d+: cannot read the file"):
        read_all(ParquetQuoteReader(damaged, DataProblems(strict=True)))


def test_a_parquet_file_of_other_columns_is_refused_naming_them(tmp_path: Path) -> None:
    table = quotes_table(simulated(10, 1))
    other = tmp_path / "other.parquet"
    pq.write_table(table.drop_columns(["ask_size"]).append_column(
        "__index_level_0__", pa.array(range(len(table)))), other)
    with pytest.raises(BadDataError) as error:
        ParquetQuoteReader(other, DataProblems()).open()
    message = str(error.value)
    assert message.startswith(f"{other}: unknown column '__index_level_0__'")
    assert "index=False" in message and "missing column ask_size" in message


EXPORT_CONFIG = """
[daemon]
state_dir = "{state_dir}"

[storage]
record_quotes = true

[api]
enabled = false
"""


def test_export_writes_the_stored_quotes_a_folder_a_day(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    midnight = dt.datetime(2025, 6, 16, tzinfo=dt.UTC).timestamp()
    quotes = [Quote(exchange, symbol, 100.0 + i, 100.5 + i, 1.0, 2.0, t - 0.01, t)
              for i, t in enumerate(midnight - 3600 + 600 * n for n in range(12))
              for exchange in ("ex_a", "ex_b") for symbol in ("BTCUSDT", "ETHUSDT")]
    state = tmp_path / "state"

    async def populate() -> None:
        storage = SqlStorage(StorageConfig(record_quotes=True, flush_interval_seconds=0.02),
                             state_dir=state)
        await storage.open()
        for quote in quotes:
            storage.observe_quote(quote)
        assert await storage.flush(10)
        await storage.close()

    trio.run(populate)
    config = tmp_path / "arbot.toml"
    config.write_text(textwrap.dedent(EXPORT_CONFIG).format(state_dir=state))
    out = tmp_path / "export"
    status, _, err = run(capsys, "export", "--start", "2025-06-15", "--end", "2025-06-17",
                         "--out", str(out), "--exchanges", "ex_a", config=config)
    assert status == 0, err
    kept = [q for q in quotes if q.exchange == "ex_a"]
    days = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert days == ["date=2025-06-15/part-00000.parquet", "date=2025-06-16/part-00000.parquet"]
    assert pq.read_table(out / "date=2025-06-15").num_rows == 6 * 2
    assert f"exported {len(kept)} quotes to {out}" in err
    assert read_all(ParquetQuoteReader(out, DataProblems(strict=True))) == kept
    # never into a directory that holds something
    status, _, err = run(capsys, "export", "--start", "2025-06-15", "--end", "2025-06-17",
                         "--out", str(out), config=config)
    assert status == 1 and "is not empty" in err


RECORD_CONFIG = """
[daemon]
state_dir = "{state_dir}"

[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT"]

[simulation]
updates_per_second = 50.0
depth_levels = 3

[api]
enabled = false
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quotes.parquet", "parts"])
def test_a_parquet_recorder_stopped_by_sigterm_leaves_a_readable_recording(
        tmp_path: Path, name: str) -> None:
    config = tmp_path / "arbot.toml"
    config.write_text(textwrap.dedent(RECORD_CONFIG).format(state_dir=tmp_path / "state"))
    out = tmp_path / name
    process = subprocess.Popen(
        [sys.executable, "-m", "arbotd", "-c", str(config), "record", "--out", str(out),
         "--format", "parquet"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / f".{name}.partial").exists() and not out.is_dir():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert not (tmp_path / f".{name}.partial").exists()
    quotes = read_all(ParquetQuoteReader(out, DataProblems(strict=True)))
    assert len(quotes) > 100
    assert all(len(q.bids) == len(q.asks) == 3 for q in quotes)
    assert f"recorded {len(quotes):,} quotes to {out}" in err


def test_the_format_of_a_recording_is_told_by_its_name(tmp_path: Path) -> None:
    from arbotd_replay.formats import recording_format

    assert recording_format("q.csv.gz") == recording_format("q.csv") == "csv"
    assert recording_format("q.parquet") == recording_format("parts/") == "parquet"
    assert recording_format(tmp_path) == "parquet"  # an existing directory
    assert recording_format("parts", "parquet") == "parquet"
    with pytest.raises(ValueError, match="names a csv recording, not parquet"):
        recording_format("q.csv.gz", "parquet")
    with pytest.raises(ValueError, match="cannot tell the format"):
        recording_format("quotes")


def test_one_row_of_bad_levels_costs_only_itself(tmp_path: Path) -> None:
    """A batch with a row whose levels are bad is read row by row from where reading
    stood: the rows around it are used, not reported out of order."""
    quotes = [Quote("ex_a", "BTCUSDT", 99.0, 100.0, 1.0, 2.0, T0 + t, T0 + t,
                    ((99.0, 1.0), (98.0, 1.0)), ((100.0, 2.0),)) for t in range(10)]
    quotes[5] = attrs.evolve(quotes[5], bids=((99.0, 1.0), (99.5, 1.0)))
    path = tmp_path / "levels.parquet"
    pq.write_table(quotes_table(quotes, levels=True), path)
    problems = DataProblems()
    assert read_all(ParquetQuoteReader(path, problems)) == quotes[:5] + quotes[6:]
    assert problems.messages == [f"{path}:row 6: bids: prices must fall strictly from the best"]


# --- book levels checked a column at a time, against the row-by-row reading ---------------


def _faulty_levels(rng: random.Random, best: float, size: float, descending: bool
                   ) -> tuple[tuple[Any, Any], ...] | None:
    """A side's levels from the best, with one of every kind of fault now and then."""
    step = -0.5 if descending else 0.5
    levels: list[list[Any]] = [[best, size]] + [[best + step * k, rng.choice([0.0, 1.5, 3.0])]
                                              for k in range(1, rng.choice([1, 2, 5]))]
    fault = rng.random()
    if fault < 0.1:
        return None                                   # a quote of the best level only
    if fault < 0.13:
        levels[0][0] = best + step                    # not starting at the best
    elif fault < 0.16:
        levels[0][1] = size * 2                       # the best's size differs
    elif fault < 0.19 and len(levels) > 1:
        levels[1][0] = best                           # not strictly away from the best
    elif fault < 0.22 and len(levels) > 1:
        levels[-1][0] = best - step                   # the wrong way
    elif fault < 0.25 and len(levels) > 1:
        levels[-1][1] = -1.0                          # a negative size
    elif fault < 0.28 and len(levels) > 1:
        levels[-1][rng.randrange(2)] = rng.choice([math.nan, math.inf, None])
    elif fault < 0.30 and len(levels) > 1:
        levels[-1][1] = 1e308                         # sizes adding up to infinity
        levels[-2][1] = 1e308
    elif fault < 0.32 and not descending and len(levels) > 1:
        levels[-1][0] = 1e308                         # prices adding up to infinity
    elif fault < 0.33 and descending and len(levels) > 1:
        levels[-1][0] = 0.0                           # a price of zero
    return tuple((price, quantity) for price, quantity in levels)


@pytest.mark.parametrize("seed", range(6))
def test_levels_checked_at_once_read_as_row_by_row(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   seed: int) -> None:
    rng = random.Random(seed)
    quotes = []
    for index in range(1500):
        bid = round(rng.uniform(90, 110), 2)
        stamp = T0 + index * 0.1
        quotes.append(Quote(rng.choice(["ex_a", "ex_b"]), "BTCUSDT", bid, bid + 0.5, 1.0,
                            2.0, stamp, stamp, _faulty_levels(rng, bid, 1.0, True),
                            _faulty_levels(rng, bid + 0.5, 2.0, False)))
        if rng.random() < 0.3:
            # Stretches of good rows, whose batches are checked at once.
            quotes[-1] = attrs.evolve(quotes[-1], bids=((bid, 1.0), (bid - 1, 1.0)),
                                      asks=((bid + 0.5, 2.0),))
    path = tmp_path / "levels.parquet"
    pq.write_table(quotes_table(quotes, levels=True), path)
    bounds: list[dict[str, float]] = [{}, {"start": T0 + 20}, {"end": T0 + 120},
                                      {"start": T0 + 30, "end": T0 + 60}]
    checked = 0
    original = parquetfile._book_levels

    def counting(*args: Any) -> Any:
        nonlocal checked
        answer = original(*args)
        checked += answer is not None
        return answer

    for batch_size in (1, 7, 64, 4096):
        for bound in bounds:
            with monkeypatch.context() as patch:
                patch.setattr(parquetfile, "_book_levels", counting)
                at_once = DataProblems()
                quick = read_all(ParquetQuoteReader(path, at_once, batch_size=batch_size,
                                                    **bound))
            with monkeypatch.context() as patch:
                patch.setattr(parquetfile, "_book_levels", lambda *args: None)
                by_row = DataProblems()
                slow = read_all(ParquetQuoteReader(path, by_row, batch_size=batch_size,
                                                   **bound))
            assert quick == slow, (batch_size, bound)
            assert at_once.counts == by_row.counts and at_once.messages == by_row.messages
    assert by_row.counts.get("bad_levels", 0) > 20
    assert checked > 100   # batches were checked at once
