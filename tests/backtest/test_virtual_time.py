"""A backtest runs on the replayed quotes' time: quote age, cool-downs and trend windows
count replayed seconds (the data is from 2025; on the wall clock every quote would be
stale), and paper fills happen their fill delay after the signal in replayed time."""

from __future__ import annotations

import csv
import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from arbotd._cli import main
from arbotd_replay.quotefile import BATCH_SIZE

T0 = 1_750_000_000.0
HEADER = "local_ts,exchange_ts,exchange,symbol,bid,ask,bid_size,ask_size"

CONFIG = """
[arbitrage]
symbols = ["BTCUSDT"]
min_profit_threshold = 0.002
max_spread_age_seconds = 5.0
cooldown_seconds = 30.0
{arbitrage}

[simulation]
enabled = false

[simulation.paper]
fill_delay_seconds = 0.1
reject_rate = 0.0
partial_fill_rate = 0.0

[api]
enabled = false
"""

pytestmark = pytest.mark.usefixtures("isolated_logging")

CALM_A = (99.95, 100.0)     # bid, ask on ex_a
CALM_B = (99.96, 100.01)    # ex_b, no opportunity
DEAR_B = (101.0, 101.1)     # ex_b bids 1 % above ex_a's ask: an opportunity


def epoch(iso_time: str) -> float:
    """A report's ISO 8601 UTC time as epoch seconds."""
    return dt.datetime.fromisoformat(iso_time).timestamp()


def row(t: float, exchange: str, book: tuple[float, float]) -> str:
    return f"{T0 + t!r},{T0 + t!r},{exchange},BTCUSDT,{book[0]},{book[1]},10,10"


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[str],
        arbitrage: str = "") -> tuple[dict, list[dict], list[dict]]:
    tmp_path.mkdir(exist_ok=True)
    data = tmp_path / "q.csv"
    data.write_text("\n".join([HEADER, *rows]) + "\n")
    config = tmp_path / "arbot.toml"
    config.write_text(textwrap.dedent(CONFIG).format(arbitrage=arbitrage))
    report = tmp_path / "report"
    status = main(["-c", str(config), "backtest", "--data", str(data), "--report", str(report)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    with (report / "signals.csv").open() as stream:
        signals = list(csv.DictReader(stream))
    with (report / "trades.csv").open() as stream:
        trades = list(csv.DictReader(stream))
    return json.loads((report / "metrics.json").read_text()), signals, trades


def test_quote_age_and_cooldown_count_replayed_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [row(0.0, "ex_a", CALM_A),
            row(10.0, "ex_b", DEAR_B),      # ex_a's quote is 10 s old: stale
            row(10.5, "ex_a", CALM_A)]      # both fresh: signal 1
    for second in range(11, 46):            # both refreshed every second
        rows += [row(second, "ex_a", CALM_A), row(second + 0.25, "ex_b", DEAR_B)]
    metrics, signals, trades = run(tmp_path, capsys, rows)
    assert metrics["rejections"]["stale"] == 1
    # the route cools down for 30 replayed seconds: the next signal is at 41 (40.5 is
    # never a quote's time); every quote in between was turned down for it (2 a second
    # from 11 to 40), and so were those after the second signal (41.25 to 45.25)
    assert [epoch(s["time"]) - T0 for s in signals] == [10.5, 41.0]
    assert metrics["rejections"]["cooldown"] == 2 * 30 + 9
    assert [(s["buy_exchange"], s["sell_exchange"]) for s in signals] == [("ex_a", "ex_b")] * 2
    # each trade filled 0.1 replayed seconds after its signal, at the book of that time
    assert [t["state"] for t in trades] == ["completed", "completed"]
    assert [t["started_at"] for t in trades] == ["2025-06-15T15:06:50.500000Z",
                                                 "2025-06-15T15:07:21.000000Z"]
    assert [t["completed_at"] for t in trades] == ["2025-06-15T15:06:50.600000Z",
                                                   "2025-06-15T15:07:21.100000Z"]
    assert float(trades[0]["buy_price"]) == 100.0 and float(trades[0]["sell_price"]) == 101.0


def test_a_fill_sees_the_book_of_its_replayed_moment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ex_b's bid falls back 0.05 s after the signal, before the 0.1 s fill delay ends:
    # the sell leg's limit is no longer met, and the trade is unwound
    rows = [row(0.0, "ex_a", CALM_A), row(0.5, "ex_b", DEAR_B),
            row(0.55, "ex_b", CALM_B), row(1.0, "ex_a", CALM_A), row(2.0, "ex_b", CALM_B)]
    _, signals, trades = run(tmp_path, capsys, rows)
    assert len(signals) == 1 and len(trades) == 1
    assert trades[0]["state"] in ("unwound", "completed")
    assert float(trades[0]["sell_price"] or 0) != 101.0


TREND = """
use_trend_filter = true
trend_filter_mode = "uptrend_buy_low"
moving_average_periods = 4
trend_confirmation_threshold = 0.001
"""


def rising(step: float) -> list[str]:
    """ex_a's price rises 0.3 % a quote, quotes ``step`` seconds apart, then ex_b bids
    above it."""
    rows = []
    for i in range(6):
        price = 100.0 * 1.003**i
        rows.append(row(i * step, "ex_a", (round(price - 0.05, 4), round(price, 4))))
        rows.append(row(i * step + step / 2, "ex_b", (round(price - 0.04, 4),
                                                      round(price + 0.01, 4))))
    top = 100.0 * 1.003**5
    rows.append(row(6 * step, "ex_b", (round(top * 1.01, 4), round(top * 1.011, 4))))
    return rows


def test_the_trend_window_samples_once_a_replayed_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a quote a second: four one-second samples show the rise, the trade is allowed
    metrics, signals, _ = run(tmp_path / "slow", capsys, rising(1.0), TREND)
    assert len(signals) == 1 and "trend" not in metrics["rejections"]
    # the same quotes within 0.6 s: one sample, no trend yet, the trade is refused
    metrics, signals, _ = run(tmp_path / "fast", capsys, rising(0.1), TREND)
    assert signals == [] and metrics["rejections"]["trend"] >= 1


def test_a_trade_started_by_the_last_quote_of_a_batch_fills_after_its_delay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The reader hands quotes on in batches, and the replay yields to the scheduler
    # between batches. A trade started by a batch's last quote must still begin at once:
    # its fills come 0.1 replayed seconds later, not a batch of quotes later. The
    # scheduler runs tasks woken together in a random order, so a wrong order shows in
    # some of these ten trades on nearly every run.
    last = BATCH_SIZE - 1
    rows = []
    for i in range(10 * BATCH_SIZE + 100):
        # ex_b bids high for 0.3 s from the last quote of each batch
        dear = i + 1 >= BATCH_SIZE and (i + 1) % BATCH_SIZE <= 30
        rows.append(row(i * 0.01, "ex_a", CALM_A) if i % 2 == 0
                    else row(i * 0.01, "ex_b", DEAR_B if dear else CALM_B))
    _, signals, trades = run(tmp_path, capsys, rows)
    assert len(signals) == len(trades) == 10
    for signal, trade in zip(signals, trades, strict=True):
        assert round((epoch(signal["time"]) - T0) / 0.01) % BATCH_SIZE == last
        started = dt.datetime.fromisoformat(trade["started_at"].replace("Z", "+00:00"))
        completed = dt.datetime.fromisoformat(trade["completed_at"].replace("Z", "+00:00"))
        assert trade["state"] == "completed"
        assert abs((completed - started).total_seconds() - 0.1) <= 0.001, trade
