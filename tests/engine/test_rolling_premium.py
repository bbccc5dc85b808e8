"""The rolling premium baseline: a venue's usual premium is the median of its observed
premium over a window, and opportunities are measured against it."""

from __future__ import annotations

import pytest

from arbotd import Bus, Engine, Ledger, Quote
from arbotd.fx import RollingPremium
from arbotd_xarb import ArbitrageConfig, CrossExchangeStrategy

T0 = 1_700_000_000.0


def test_the_baseline_is_the_median_of_the_window() -> None:
    rolling = RollingPremium()
    rolling.configure({"won": 10.0})
    for t, premium in [(0, 2.0), (1, 5.0), (2, 1.0), (3, 3.0)]:
        rolling.add("won", T0 + t, premium)
    assert rolling.baseline("won") == pytest.approx(2.5)  # (2 + 3) / 2
    rolling.add("won", T0 + 4, 4.0)
    assert rolling.baseline("won") == 3.0  # 1 2 3 4 5
    # 12 s on, the samples of T0 and T0 + 1 have left the 10 s window: 1 3 4 9.
    rolling.add("won", T0 + 12, 9.0)
    assert rolling.baseline("won") == pytest.approx(3.5)
    assert rolling.status()["won"] == {
        "baseline_percent": pytest.approx(3.5), "samples": 4, "window_seconds": 10.0}


def test_samples_are_taken_once_a_second_against_the_other_usable_venues() -> None:
    rolling = RollingPremium(sample_seconds=1.0)
    rolling.configure({"won": 60.0})

    def q(venue: str, mid: float, t: float) -> Quote:
        return Quote(venue, "BTCUSDT", mid - 1, mid + 1, 1, 1, T0 + t, T0 + t)

    book = {"a": q("a", 100.0, 0), "b": q("b", 104.0, 0), "c": q("c", 500.0, 0)}
    usable = {"a": True, "b": True, "c": False}
    # The mean mid of the usable others is 102: 107.1 / 102 - 1 = 5 %.
    assert rolling.observe(q("won", 107.1, 0), book, usable) == pytest.approx(5.0)
    assert rolling.observe(q("won", 200.0, 0.5), book, usable) is None  # not due yet
    assert rolling.observe(q("won", 102.0, 1.0), book, usable) == pytest.approx(2.5)


class Market:
    """Two venues: ``usd`` at the true price, ``kimchi`` at a premium."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.now = T0

    def tick(self, price: float, premium_percent: float) -> None:
        self.now += 1.0
        for venue, mid in (("usd", price), ("kimchi", price * (1 + premium_percent / 100))):
            half = mid * 0.0001
            self.engine.on_quote(Quote(venue, "BTCUSDT", mid - half, mid + half, 5.0, 5.0,
                                       self.now, self.now))


def make_market(rolling: bool) -> Market:
    config = ArbitrageConfig(symbols=["BTCUSDT"], min_profit_threshold=0.002,
                             use_trend_filter=False, cooldown_seconds=0,
                             max_trades_per_hour=100_000)
    market: Market
    engine = Engine(strategies=[CrossExchangeStrategy(config)], bus=Bus(), ledger=Ledger(),
                    clock=lambda: market.now)
    engine.set_venues({"usd": 0.001, "kimchi": 0.001}, {"kimchi": 2.0},
                      rolling={"kimchi": 600.0} if rolling else None)
    for venue in ("usd", "kimchi"):
        engine.on_feed_state(venue, True)
    market = Market(engine)
    return market


def test_a_premium_that_drifts_gives_no_signal_and_a_sudden_deviation_does() -> None:
    market = make_market(rolling=True)
    engine = market.engine
    # Ten minutes at 2 %, then an hour drifting up to 4 %: the median follows.
    for _ in range(600):
        market.tick(65_000.0, 2.0)
    for second in range(3600):
        market.tick(65_000.0, 2.0 + 2.0 * second / 3600)
    assert engine.signals_detected == 0
    assert engine.market.premium["kimchi"] == pytest.approx(3.83, abs=0.01)
    assert engine.rolling_premium.status()["kimchi"]["samples"] == 601
    # The premium collapses to 1 %: buying there is 2.6 % under its usual level.
    market.tick(65_000.0, 1.0)
    (signal,) = engine.last_signals
    assert (signal.buy_exchange, signal.sell_exchange) == ("kimchi", "usd")


def test_with_a_fixed_baseline_the_same_drift_gives_signals() -> None:
    market = make_market(rolling=False)
    for second in range(1200):
        market.tick(65_000.0, 2.0 + 2.0 * second / 3600)
    assert market.engine.signals_detected > 0
    assert market.engine.market.premium["kimchi"] == 2.0


def test_a_restored_window_starts_the_baseline() -> None:
    market = make_market(rolling=True)
    for _ in range(30):
        market.tick(65_000.0, 3.0)
    saved = market.engine.rolling_premium.dump()
    fresh = make_market(rolling=True)
    assert fresh.engine.market.premium["kimchi"] == 2.0  # the configured start
    fresh.engine.restore_premium(saved)
    assert fresh.engine.market.premium["kimchi"] == pytest.approx(3.0, abs=1e-9)
    assert fresh.engine.rolling_premium.status()["kimchi"]["samples"] == 30
