"""Recorded quote files: written rows read back exactly, and every kind of bad data
reported as FILE:LINE, counted and skipped (or, with --strict, fatal); a wrong header
rejects the whole file."""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any

import pytest
from support import plain_quotes

from arbotd import Quote
from arbotd_replay import (
    COLUMNS,
    DEPTH_COLUMNS,
    BadDataError,
    DataProblems,
    QuoteFileReader,
    QuoteFileWriter,
)

HEADER = ",".join(COLUMNS)
EPOCH = 1_750_000_000.0


def quote(t: float, exchange: str = "ex_a", symbol: str = "BTCUSDT", bid: float = 99.9,
          ask: float = 100.1, size: float = 1.5) -> Quote:
    return Quote(exchange, symbol, bid, ask, size, size, t - 0.003, t)


def read(path: Path, **kwargs: object) -> tuple[list[Quote], DataProblems]:
    problems = DataProblems(strict=bool(kwargs.pop("strict", False)))
    reader = QuoteFileReader(path, problems, **kwargs)  # type: ignore[arg-type]
    return plain_quotes(q for batch in reader.batches() for q in batch), problems


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


@pytest.mark.parametrize("stamp", ["-inf", "inf", "nan"])
def test_a_first_row_at_no_time_is_reported_not_replayed(tmp_path: Path, stamp: str) -> None:
    """Before any row is used there is no earlier time to be out of order with: a
    local_ts of -inf is still no time at all."""
    path = write_rows(tmp_path / "first.csv", [GOOD.replace(f"{EPOCH!r}", stamp, 1), GOOD])
    for batch_size in (1, 4096):
        quotes, problems = read(path, batch_size=batch_size)
        assert [q.received_ts for q in quotes] == [EPOCH]
        assert problems.messages == [f"{path}:2: local_ts is {float(stamp)!r}"]


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


# --- book levels ------------------------------------------------------------------------------

DEPTH_HEADER = ",".join(DEPTH_COLUMNS)


def deep_quote(t: float, exchange: str = "ex_a", levels: int = 5) -> Quote:
    bids = tuple((100.0 - k / 3, k + 1 / 7) for k in range(levels))
    asks = tuple((100.1 + k * 0.1, 2.0 * k + 1e-8) for k in range(levels))
    return Quote(exchange, "BTCUSDT", bids[0][0], asks[0][0], bids[0][1], asks[0][1],
                 t - 0.003, t, bids, asks)


def test_quotes_with_book_levels_read_back_exactly(tmp_path: Path) -> None:
    # levels of every quote, and quotes of the best level only among them
    quotes = [deep_quote(EPOCH + i / 3, f"ex_{i % 3}", levels=1 + i % 20) if i % 4
              else quote(EPOCH + i / 3) for i in range(3000)]
    writer = QuoteFileWriter(tmp_path / "q.csv.gz", reorder_seconds=0, levels=True)
    writer.write_all(quotes)
    writer.close()
    reader = QuoteFileReader(tmp_path / "q.csv.gz", DataProblems(strict=True)).open()
    assert reader.levels
    back = [q for batch in reader.batches() for q in batch]
    assert back == quotes
    assert back[0].bids is None and len(back[1].bids) == 2 and len(back[19].asks) == 20
    with gzip.open(tmp_path / "q.csv.gz", "rt") as stream:
        assert stream.readline().strip() == DEPTH_HEADER
        assert stream.readline().rstrip("\n").endswith(",1.5,1.5,,")  # no book: empty
        assert stream.readline().rstrip("\n").endswith(
            ",100.0:0.14285714285714285;99.66666666666667:1.1428571428571428,"
            "100.1:1e-08;100.19999999999999:2.00000001")


def test_a_file_of_best_levels_keeps_only_the_best(tmp_path: Path) -> None:
    writer = QuoteFileWriter(tmp_path / "q.csv", reorder_seconds=0)
    writer.write(deep_quote(EPOCH))
    writer.close()
    assert (tmp_path / "q.csv").read_text().splitlines()[0] == HEADER
    reader = QuoteFileReader(tmp_path / "q.csv", DataProblems(strict=True)).open()
    [[back]] = list(reader.batches())
    assert not reader.levels and back.bids is None and back.asks is None
    assert (back.bid, back.ask, back.bid_size) == (100.0, 100.1, 1 / 7)


BEST = f"{EPOCH!r},{EPOCH!r},ex_a,BTCUSDT,99.9,100.1,1.0,2.0"


@pytest.mark.parametrize(("levels", "words"), [
    ("99.9:1.0;99.8:3.0,100.1:2.0;100.3:1.0", None),
    (",", None),  # no book: the best level only
    ('"99.9:1.0;99.8:3.0","100.1:2.0"', None),  # quoted by a spreadsheet
    ("99.9:1.0;99.95:3.0,100.1:2.0", "bids: prices must fall strictly from the best"),
    ("99.9:1.0;99.9:3.0,100.1:2.0", "bids: prices must fall strictly from the best"),
    ("99.9:1.0,100.1:2.0;100.0:1.0", "asks: prices must rise strictly from the best"),
    ("99.8:1.0,100.1:2.0", "bids: the first level 99.8:1.0 is not the best"),
    ("99.9:1.0,100.1:2.5", "asks: the first level 100.1:2.5 is not the best"),
    ("99.9:1.0;99.8:-3.0,", "bids: a size is negative"),
    ("99.9:1.0;-1.0:3.0,", "bids: a price is zero or negative"),
    ("99.9:1.0;99.8:nan,", "bids: a price or size is not a finite number"),
    (",100.1:2.0;inf:1.0", "asks: a price or size is not a finite number"),
    ("99.9:1.0:3.0,", "bids: not price:size pairs"),
    ("99.9:1.0;,", "bids: not price:size pairs"),
    ("99.9:1.0;99.8:x,", "bids: not price:size pairs"),
])
def test_bad_levels_are_reported_and_skipped(tmp_path: Path, levels: str,
                                             words: str | None) -> None:
    path = write_rows(tmp_path / "q.csv", [f"{BEST},{levels}"], header=DEPTH_HEADER)
    quotes, problems = read(path)
    if words is None:
        assert len(quotes) == 1 and problems.total == 0
        assert quotes[0].bids in (None, ((99.9, 1.0), (99.8, 3.0)))
        return
    assert quotes == [] and problems.counts == {"bad_levels": 1}
    assert problems.messages[0].startswith(f"{path}:2: {words}"), problems.messages
    with pytest.raises(BadDataError, match=words.split(": ")[1]):
        read(path, strict=True)


def test_a_depth_header_needs_both_level_columns(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "q.csv", [BEST], header=HEADER + ",bids")
    with pytest.raises(BadDataError, match="missing column asks"):
        QuoteFileReader(path, DataProblems()).open()
    # a row of the best level only is the wrong width in a file of levels
    path = write_rows(tmp_path / "d.csv", [BEST], header=DEPTH_HEADER)
    quotes, problems = read(path)
    assert quotes == [] and problems.messages == [f"{path}:2: expected 10 fields, got 8"]


# --- blocks decoded at once, against the row-by-row reading ------------------------------


def _number(rng: random.Random) -> str:
    """A positive number in one of the spellings a file may hold."""
    value = rng.uniform(0.01, 50_000)
    return rng.choice([repr(value), f"{value:.17g}", f"{value:.3f}", f"{value:e}",
                       f"+{value!r}", f"{value:.40f}", f"{int(value)}", f"{int(value)}."])


def _rows(rng: random.Random, count: int, levels: bool, faults: bool, clock: list[float]
          ) -> list[str]:
    """Rows in time order (``clock`` holds the last time), with every kind of fault here
    and there when ``faults``."""
    rows: list[str] = []
    for _ in range(count):
        clock[0] += rng.choice([0.0, 0.001, 0.25])
        t = clock[0]
        bid = float(_number(rng).lstrip("+"))
        fields = [repr(t), repr(t - 0.002), rng.choice(["ex_a", "ex_b", "ex_c"]),
                  rng.choice(["BTCUSDT", "ETHUSDT"]), repr(bid), repr(bid * 1.001),
                  _number(rng), _number(rng)]
        fault = rng.random() if faults else 1.0
        if fault < 0.02:
            fields[4], fields[5] = fields[5], fields[4]            # crossed
        elif fault < 0.03:
            fields[0] = repr(t - 5)                                # unsorted
        elif fault < 0.04:
            fields[6] = rng.choice(["nan", "inf", "-1", "x", "1_0", ""])
        elif fault < 0.05:
            fields[2] = rng.choice(["", " ex_a", '"ex_b"'])
        elif fault < 0.06:
            rows.append(rng.choice(["\n", "  \n"]))              # blank lines
        elif fault < 0.07 and rows:
            rows.append(rows[-1])                                  # the same row twice
            continue
        elif fault < 0.075:
            fields = fields[:6]                                    # too few fields
        line = ",".join(fields)
        if levels:
            sizes = fields[6:8] if len(fields) == 8 else ["1.0", "1.0"]
            line += "," + _levels_text(rng, fields[4], sizes[0], bid, True, faults)
            line += "," + _levels_text(rng, fields[5], sizes[1], bid * 1.001, False, faults)
        rows.append(line + rng.choice(["\n"] * 9 + ["\r\n"]))
    return rows


def _levels_text(rng: random.Random, best: str, size: str, price: float, descending: bool,
                 faults: bool) -> str:
    """A ``bids`` or ``asks`` field: none, or levels from the best (its price and size
    spelled as in the row), numbers in several spellings; with ``faults``, now and then
    one of every kind of bad levels."""
    if rng.random() < 0.2:
        return ""
    step = -0.01 if descending else 0.01
    levels = [f"{best}:{size}"] + [
        f"{price * (1 + step * k)!r}:{_number(rng)}" for k in range(1, rng.choice([1, 2, 5]))]
    fault = rng.random() if faults else 1.0
    if fault < 0.02:
        levels[0] = f"{price * (1 + step)!r}:{size}"              # not the best
    elif fault < 0.03:
        levels[0] = f"{best}:{size}1"                            # the best's size differs
    elif fault < 0.04:
        levels.append(levels[-1])                                # not strictly away
    elif fault < 0.05:
        levels.append(rng.choice(["1:2:3", ":2", "2:", "a:1", "1_0:1", "1:nan", "1e400:1",
                                  "1:-1", "nan(1):1", "1:0x10"]))
    elif fault < 0.06:
        return ";".join(levels) + rng.choice([";", ";;", ":"])  # a separator too many
    return ";".join(levels)


@pytest.mark.parametrize("levels", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_blocks_read_at_once_read_as_row_by_row(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 levels: bool, seed: int) -> None:
    rng = random.Random(seed)
    header = ",".join(DEPTH_COLUMNS if levels else COLUMNS)
    clock = [EPOCH]
    # Long stretches of good rows (read a block at once) between stretches of faults.
    rows: list[str] = []
    for _ in range(8):
        rows += _rows(rng, rng.choice([40, 300]), levels, rng.random() < 0.5, clock)
    data = gzip.compress((header + "\n" + "".join(rows)).encode())
    if seed % 2:
        data = data[:-30]   # cut short, as by a killed recorder
    path = tmp_path / "q.csv.gz"
    path.write_bytes(data)
    times = sorted(float(r.split(",")[0]) for r in rows if r.strip()
                   and r.split(",")[0].strip('" ').replace(".", "").isdigit())
    quarter = len(times) // 4
    bounds: list[dict[str, float]] = [
        {}, {"start": times[quarter]}, {"end": times[3 * quarter]},
        {"start": times[quarter], "end": times[2 * quarter]}]
    decoded = reported = 0
    original = QuoteFileReader._quick_block

    def counting(self: QuoteFileReader, *args: Any) -> Any:
        nonlocal decoded
        answer = original(self, *args)
        decoded += answer is not None
        return answer

    for batch_size in (5, 64, 4096):
        for bound in bounds:
            with monkeypatch.context() as patch:
                patch.setattr(QuoteFileReader, "_quick_block", counting)
                quick, quick_problems = read(path, batch_size=batch_size, **bound)
            with monkeypatch.context() as patch:
                patch.setattr(QuoteFileReader, "_quick_block", lambda *args: None)
                slow, slow_problems = read(path, batch_size=batch_size, **bound)
            assert quick == slow, (batch_size, bound)
            assert quick_problems.counts == slow_problems.counts, (batch_size, bound)
            assert quick_problems.messages == slow_problems.messages, (batch_size, bound)
            reported += slow_problems.total
    assert quick and reported
    assert decoded > 20   # blocks were read at once


def test_a_file_that_stops_being_utf8_keeps_the_rows_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [f"{EPOCH + i!r},{EPOCH + i - 0.002!r},ex_a,BTCUSDT,99.9,100.1,1.5,1.5\n"
            for i in range(20_000)]
    data = (",".join(COLUMNS) + "\n" + "".join(rows[:15_000])).encode() + b"\xff\xfe," \
        + "".join(rows[15_000:]).encode()
    path = tmp_path / "q.csv.gz"
    path.write_bytes(gzip.compress(data))
    quick, quick_problems = read(path, batch_size=1000)
    with monkeypatch.context() as patch:
        patch.setattr(QuoteFileReader, "_quick_block", lambda *args: None)
        slow, slow_problems = read(path, batch_size=1000)
    assert quick == slow
    assert quick_problems.messages == slow_problems.messages
    assert quick_problems.counts == {"unparseable": 1}
    # Decoding fails for the whole chunk the bad bytes are in: the rows before it are used.
    assert 10_000 < len(quick) <= 15_000
    assert f"q.csv.gz:{len(quick) + 2}: not UTF-8 text" in quick_problems.messages[0]
