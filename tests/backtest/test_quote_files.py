"""Recorded quote files: written rows read back exactly, and every kind of bad data
reported as FILE:LINE, counted and skipped (or, with --strict, fatal); a wrong header
rejects the whole file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from arbotd import Quote
from arbotd_replay import COLUMNS, BadDataError, DataProblems, QuoteFileReader, QuoteFileWriter

HEADER = ",".join(COLUMNS)
EPOCH = 1_750_000_000.0


def quote(t: float, exchange: str = "ex_a", symbol: str = "BTCUSDT", bid: float = 99.9,
          ask: float = 100.1, size: float = 1.5) -> Quote:
    return Quote(exchange, symbol, bid, ask, size, size, t - 0.003, t)


def read(path: Path, **kwargs: object) -> tuple[list[Quote], DataProblems]:
    problems = DataProblems(strict=bool(kwargs.pop("strict", False)))
    reader = QuoteFileReader(path, problems, **kwargs)  # type: ignore[arg-type]
    return [q for batch in reader.batches() for q in batch], problems


def test_written_quotes_read_back_exactly(tmp_path: Path) -> None:
    quotes = [quote(EPOCH + i / 3, exchange=f"ex_{i % 3}", bid=0.1 + i * 1e-9,
                    ask=0.1 + i * 1e-9 + 1 / 3, size=i / 7) for i in range(10_000)]
    for name in ("q.csv.gz", "q.csv"):
        writer = QuoteFileWriter(tmp_path / name, reorder_seconds=0)
        writer.write_all(quotes)
        writer.close()
        back, problems = read(tmp_path / name)
        assert back == quotes and problems.total == 0
    with gzip.open(tmp_path / "q.csv.gz", "rt") as stream:
        assert stream.readline().strip() == HEADER


def test_writer_puts_late_quotes_in_order_and_leaves_out_what_is_too_late(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = QuoteFileWriter(tmp_path / "q.csv.gz", reorder_seconds=2.0)
    for t in (0.0, 1.0, 0.5, 3.0, 2.5, 6.0, 1.5, 7.0):  # 1.5 comes after 3.0 was written
        writer.write(quote(EPOCH + t))
    writer.close()
    back, _ = read(tmp_path / "q.csv.gz")
    assert [q.received_ts - EPOCH for q in back] == [0.0, 0.5, 1.0, 2.5, 3.0, 6.0, 7.0]
    assert writer.late == 1 and "out of time order" in caplog.text


def write_rows(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


GOOD = f"{EPOCH!r},{EPOCH!r},ex_a,BTCUSDT,99.9,100.1,1.0,2.0"

BAD_ROWS = [
    # (row, kind, words in the message)
    (f"{EPOCH - 5!r},{EPOCH!r},ex_a,BTCUSDT,99.9,100.1,1.0,2.0", "unsorted",
     "earlier than the row before"),
    (f"{EPOCH + 1!r},{EPOCH!r},ex_a,BTCUSDT,100.2,100.1,1.0,2.0", "crossed",
     "crossed book: bid 100.2 above ask 100.1"),
    (f"{EPOCH + 1!r},{EPOCH!r},ex_a,BTCUSDT,-1.0,100.1,1.0,2.0", "non_positive_price",
     "prices must be > 0"),
    (f"{EPOCH + 1!r},{EPOCH!r},ex_a,BTCUSDT,0,100.1,1.0,2.0", "non_positive_price",
     "prices must be > 0"),
    (f"{EPOCH + 1!r},{EPOCH!r},ex_a,BTCUSDT,99.9,100.1,-1.0,2.0", "negative_size",
     "sizes must be >= 0"),
    (f"{EPOCH + 1!r},{EPOCH!r},ex_a,BTCUSDT,99.9,abc,1.0,2.0", "unparseable",
     "ask: 'abc' is not a number"),
    (f"{EPOCH + 1!r},{EPOCH!r},ex_a,BTCUSDT,99.9,100.1,1.0", "unparseable",
     "expected 8 fields, got 7"),
    (f"nan,{EPOCH!r},ex_a,BTCUSDT,99.9,100.1,1.0,2.0", "unparseable", "local_ts is nan"),
    (f"{EPOCH + 1!r},inf,ex_a,BTCUSDT,99.9,100.1,1.0,2.0", "unparseable",
     "exchange_ts is inf"),
    (GOOD, "duplicate", "the same row as the line before"),
    (f"{EPOCH + 1!r},{EPOCH!r},,BTCUSDT,99.9,100.1,1.0,2.0", "unparseable",
     "exchange or symbol is empty"),
]


@pytest.mark.parametrize(("row", "kind", "words"), BAD_ROWS,
                         ids=[f"{kind}-{i}" for i, (_, kind, _) in enumerate(BAD_ROWS)])
def test_bad_rows_are_reported_with_file_and_line_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, row: str, kind: str, words: str
) -> None:
    later = GOOD.replace(f"{EPOCH!r},", f"{EPOCH + 2!r},", 1)
    path = write_rows(tmp_path / "bad.csv", [GOOD, row, later])
    quotes, problems = read(path)
    assert len(quotes) == 2  # the good rows around it are used
    assert problems.counts == {kind: 1}
    assert problems.messages == [f"{path}:3: {words}"] or (
        problems.messages[0].startswith(f"{path}:3: ") and words in problems.messages[0])
    assert f"{path}:3:" in caplog.text
    with pytest.raises(BadDataError, match=rf"{path}:3: "):
        read(path, strict=True)


def test_quoted_fields_and_blank_lines_are_read(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "q.csv", [GOOD, "", f'"{EPOCH + 1!r}",{EPOCH!r},"ex_b",'
                                                 '"BTCUSDT","99.9","100.1","1.0","2.0"'])
    quotes, problems = read(path)
    assert [q.exchange for q in quotes] == ["ex_a", "ex_b"] and problems.total == 0


@pytest.mark.parametrize(("header", "words"), [
    ("local_ts,exchange_ts,exchange,symbol,bid,ask,bid_size", "missing column ask_size"),
    (HEADER + ",venue_id", "unknown column 'venue_id'"),
    ("," + HEADER, "pandas index: write the file with index=False"),
    ("exchange_ts,local_ts,exchange,symbol,bid,ask,bid_size,ask_size", "another order"),
])
def test_a_wrong_header_rejects_the_whole_file(tmp_path: Path, header: str,
                                               words: str) -> None:
    path = write_rows(tmp_path / "q.csv", [GOOD], header=header)
    with pytest.raises(BadDataError) as caught:
        QuoteFileReader(path, DataProblems()).open()
    assert str(caught.value).startswith(f"{path}:1: ")
    assert words in str(caught.value) and f"expected the header {HEADER}" in str(caught.value)


def test_an_empty_or_missing_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(BadDataError, match="the file is empty"):
        QuoteFileReader(tmp_path / "empty.csv", DataProblems()).open()
    with pytest.raises(BadDataError, match="cannot open"):
        QuoteFileReader(tmp_path / "none.csv.gz", DataProblems()).open()


def test_a_truncated_recording_is_used_up_to_where_it_ends(tmp_path: Path) -> None:
    writer = QuoteFileWriter(tmp_path / "q.csv.gz", reorder_seconds=0)
    writer.write_all(quote(EPOCH + i) for i in range(5000))
    writer.close()
    data = (tmp_path / "q.csv.gz").read_bytes()
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    quotes, problems = read(tmp_path / "cut.csv.gz")
    assert 0 < len(quotes) < 5000
    assert problems.counts == {"truncated": 1}
    assert "was the recorder killed?" in problems.messages[0]


def test_start_and_end_select_rows_and_reading_stops_at_the_end(tmp_path: Path) -> None:
    rows = [GOOD.replace(f"{EPOCH!r},", f"{EPOCH + i!r},", 1) for i in range(10)]
    rows.append("garbage after the end is never read")
    path = write_rows(tmp_path / "q.csv", rows)
    quotes, problems = read(path, start=EPOCH + 3, end=EPOCH + 7)
    assert [q.received_ts - EPOCH for q in quotes] == [3.0, 4.0, 5.0, 6.0]
    assert problems.total == 0


def test_reports_stop_after_twenty_of_a_kind_and_say_how_many_more(tmp_path: Path) -> None:
    crossed = [f"{EPOCH + i / 100!r},{EPOCH!r},ex_a,BTCUSDT,101.0,100.1,1.0,2.0"
               for i in range(1, 51)]
    path = write_rows(tmp_path / "q.csv", [GOOD, *crossed])
    _, problems = read(path)
    problems.finish()
    assert problems.counts == {"crossed": 50}
    assert len(problems.messages) == 21
    assert problems.messages[-1] == f"{path}: 30 more rows skipped: crossed book (bid above ask)"


def test_spaces_around_names_do_not_make_another_exchange(tmp_path: Path) -> None:
    # "ex_a " would be a venue of its own, quoting against "ex_a": made-up spreads.
    path = write_rows(tmp_path / "q.csv", [
        GOOD,
        f"{EPOCH + 1!r},{EPOCH!r},ex_a , BTCUSDT,99.9,100.1,1.0,2.0",
        f"{EPOCH + 2!r}, {EPOCH!r}, ex_b, BTCUSDT, 99.9, 100.1, 1.0, 2.0",
        f"{EPOCH + 3!r},{EPOCH!r}, ,BTCUSDT,99.9,100.1,1.0,2.0",
    ])
    quotes, problems = read(path)
    assert [(q.exchange, q.symbol) for q in quotes] == [
        ("ex_a", "BTCUSDT"), ("ex_a", "BTCUSDT"), ("ex_b", "BTCUSDT")]
    assert problems.messages == [f"{path}:5: exchange or symbol is empty"]
