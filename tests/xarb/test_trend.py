"""The trend filter and its four modes, on a controlled clock."""

from __future__ import annotations

import itertools
import random

import pytest

from arbotd import Ledger, Quote
from arbotd._engine import Market
from arbotd_xarb import ArbitrageConfig, CrossExchangeStrategy, TrendTracker

T0 = 1_700_000_000.0


def feed(tracker: TrendTracker, exchange: str, prices: list[float], start: float = T0) -> float:
    """One mid price per second; returns the time after the last one."""
    for i, price in enumerate(prices):
        tracker.update("BTCUSDT", exchange, price, start + i)
    return start + len(prices)


def test_window_not_full_is_neutral() -> None:
    tracker = TrendTracker(periods=10, threshold=0.001)
    feed(tracker, "a", [100.0 + i for i in range(9)])
    assert tracker.trend("BTCUSDT", "a") == "neutral"


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ([100.0] * 5 + [100.2] * 5, "up"),  # +0.2 % > 0.1 %
        ([100.0] * 5 + [99.8] * 5, "down"),
        ([100.0] * 5 + [100.05] * 5, "neutral"),  # +0.05 % is inside the threshold
    ],
)
def test_newer_half_against_older_half(prices: list[float], expected: str) -> None:
    tracker = TrendTracker(periods=10, threshold=0.001)
    feed(tracker, "a", prices)
    assert tracker.trend("BTCUSDT", "a") == expected


def test_samples_once_a_second() -> None:
    tracker = TrendTracker(periods=4, threshold=0.001)
    # 20 quotes within one second count once: the window is not full yet.
    for i in range(20):
        tracker.update("BTCUSDT", "a", 100.0 + i, T0 + i * 0.05)
    assert tracker.trend("BTCUSDT", "a") == "neutral"
    feed(tracker, "a", [200.0, 200.0, 200.0], start=T0 + 1)
    assert tracker.trend("BTCUSDT", "a") == "up"


MODE_CASES = [
    # mode, trend on the buying venue a, trend on the selling venue b, traded?
    ("uptrend_buy_low", "up", "neutral", True),
    ("uptrend_buy_low", "down", "up", False),
    ("uptrend_buy_low", "neutral", "neutral", False),
    ("downtrend_sell_high", "neutral", "down", True),
    ("downtrend_sell_high", "down", "up", False),
    ("both", "up", "neutral", True),
    ("both", "neutral", "down", True),
    ("both", "neutral", "neutral", False),
    ("disabled", "neutral", "neutral", True),
]

PATHS = {"up": [100.0] * 5 + [100.5] * 5, "down": [100.0] * 5 + [99.5] * 5,
         "neutral": [100.0] * 10}


@pytest.mark.parametrize(("mode", "buy_trend", "sell_trend", "traded"), MODE_CASES)
def test_trend_filter_modes(mode: str, buy_trend: str, sell_trend: str, traded: bool) -> None:
    strategy = CrossExchangeStrategy(
        ArbitrageConfig(symbols=["BTCUSDT"], use_trend_filter=True, trend_filter_mode=mode,
                        moving_average_periods=10, min_profit_threshold=0.002)
    )
    now = feed(strategy.trend, "a", PATHS[buy_trend])
    feed(strategy.trend, "b", PATHS[sell_trend])
    assert strategy.trend.trend("BTCUSDT", "a") == buy_trend
    assert strategy.trend.trend("BTCUSDT", "b") == sell_trend

    market = Market(Ledger())
    # Half a second before the next sample is due, so the windows above stay as they are.
    market.now = now - 0.5
    market.fees = {"a": 0.001, "b": 0.001}
    market.usable = {"a": True, "b": True}
    a = Quote("a", "BTCUSDT", 99.5, 100.0, 5, 5, market.now, market.now)
    b = Quote("b", "BTCUSDT", 101.0, 101.5, 5, 5, market.now, market.now)
    signals = strategy.evaluate(b, {"a": a, "b": b}, market)
    assert bool(signals) is traded
    assert market.rejections == ({} if traded else {"trend": 1})


def test_resize_keeps_recent_samples() -> None:
    tracker = TrendTracker(periods=10, threshold=0.001)
    feed(tracker, "a", [100.0] * 5 + [101.0] * 5)
    tracker.resize(4, 0.001)
    assert tracker.trend("BTCUSDT", "a") == "neutral"  # the last four samples are flat


@pytest.mark.parametrize("seed", range(10))
def test_a_run_of_mids_samples_as_one_by_one(seed: int) -> None:
    """update_many (a replay's run of quiet quotes) keeps the very samples and the next
    sample time that update keeps quote by quote: ticks faster and slower than a second,
    equal times, gaps, runs cut anywhere."""
    rng = random.Random(seed)
    times, now = [], T0 + rng.random()
    for _ in range(600):
        now += rng.choice([0.0, 0.001, 0.25, 0.3, 0.999, 1.0, 1.0001, 2.5, 40.0])
        times.append(now)
    mids = [rng.uniform(90, 110) for _ in times]
    one, many = TrendTracker(periods=5, threshold=0.001), TrendTracker(periods=5,
                                                                      threshold=0.001)
    for mid, at in zip(mids, times, strict=True):
        one.update("X", "a", mid, at)
    cuts = sorted(rng.sample(range(1, 600), 40))
    for low, high in itertools.pairwise([0, *cuts, 600]):
        if rng.random() < 0.2:   # a quote evaluated between runs
            many.update("X", "a", mids[low], times[low])
            low += 1
        many.update_many("X", "a", mids[low:high], times[low:high])
    window, expected = many._windows["X", "a"], one._windows["X", "a"]
    assert list(window.samples) == list(expected.samples)
    assert window.next_sample == expected.next_sample
    assert many.trend("X", "a") == one.trend("X", "a")
