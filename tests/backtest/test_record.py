"""``arbotd record``: the configured feeds' quotes written to a file a backtest reads,
complete however the recorder stops (--duration, SIGINT, SIGTERM)."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from arbotd import Quote
from arbotd_replay import DEPTH_COLUMNS, DataProblems, QuoteFileReader
from arbotd_replay.stores import RecordingStore

CONFIG = """
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

T0 = 1_750_000_000.0


def config(tmp_path: Path) -> Path:
    path = tmp_path / "arbot.toml"
    path.write_text(textwrap.dedent(CONFIG).format(state_dir=tmp_path / "state"))
    return path


def read_back(path: Path) -> list:
    problems = DataProblems(strict=True)  # a complete, sorted, valid file
    return [q for batch in QuoteFileReader(path, problems).batches() for q in batch]


@pytest.mark.slow
def test_record_for_a_duration(tmp_path: Path) -> None:
    out = tmp_path / "quotes.csv.gz"
    result = subprocess.run(
        [sys.executable, "-m", "arbotd", "-c", str(config(tmp_path)), "record", "--out",
         str(out), "--duration", "2"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    quotes = read_back(out)
    # 3 venues x 2 symbols x 50 a second for 2 s
    assert 400 <= len(quotes) <= 700
    assert {q.exchange for q in quotes} == {"sim_alpha", "sim_beta", "sim_gamma"}
    # the venues' books, three levels a side, as the feeds gave them
    assert all(len(q.bids) == len(q.asks) == 3 and q.bids[0] == (q.bid, q.bid_size)
               for q in quotes)
    assert f"recorded {len(quotes):,} quotes to {out}" in result.stderr
    with gzip.open(out, "rt") as stream:
        assert stream.readline().rstrip("\n") == ",".join(DEPTH_COLUMNS)
    assert not (tmp_path / "state").exists()  # no storage: nothing written there


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_recorder_leaves_a_complete_file(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "quotes.csv.gz"
    process = subprocess.Popen(
        [sys.executable, "-m", "arbotd", "-c", str(config(tmp_path)), "record", "--out",
         str(out)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (out.exists() and out.stat().st_size > 0):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        time.sleep(1.5)
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert len(read_back(out)) > 100


def test_record_needs_an_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     isolated_logging: None) -> None:
    from arbotd._cli import main

    with pytest.raises(SystemExit):
        main(["-c", str(config(tmp_path)), "record"])
    assert "--out" in capsys.readouterr().err
    status = main(["-c", str(config(tmp_path)), "record", "--out",
                   str(tmp_path / "no-such-dir" / "q.csv.gz")])
    assert status == 1
    assert "No such file or directory" in capsys.readouterr().err


def test_record_never_overwrites_a_recording(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             isolated_logging: None) -> None:
    from arbotd._cli import main

    earlier = tmp_path / "monday.csv.gz"
    earlier.write_bytes(b"hours of market")
    status = main(["-c", str(config(tmp_path)), "record", "--out", str(earlier)])
    assert status == 1
    assert f"{earlier} already exists" in capsys.readouterr().err
    assert earlier.read_bytes() == b"hours of market"


async def test_the_recorder_says_how_many_late_quotes_it_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="arbotd_replay")
    store = RecordingStore(tmp_path / "q.csv.gz")
    await store.open()
    for t in (T0 + 100, T0 + 103):  # the second puts the first into the file
        store.observe_quote(Quote("ex_a", "BTCUSDT", 99.9, 100.1, 1.0, 1.0, t, t))
    for i in range(5):  # each earlier than a quote already in the file
        store.observe_quote(Quote("ex_a", "BTCUSDT", 99.9, 100.1, 1.0, 1.0, T0 + i, T0 + i))
    await store.close()
    assert store.written == 2 and store.late == 5
    # quotes of the best level only, in a file that could have held their books
    assert [q.bids for q in read_back(tmp_path / "q.csv.gz")] == [None, None]
    assert any("5 quotes came more than 2.0 s out of time order and were left out" in m
               for m in caplog.messages), caplog.messages
