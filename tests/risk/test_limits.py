"""Each risk limit trips, and reports its use for /api/v1/risk/limits."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from arbotd import Bus, Control, Engine, Ledger, LimitUse, Quote, Signal, Trade
from arbotd._control import TradingStats
from arbotd_risk import RiskConfig, RiskManager

D = Decimal
NOW = 1_700_000_000.0


class FakeRuntime:
    """The parts of the runtime the risk manager reads."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        for venue in ("a", "b"):
            self.ledger.set_balance(venue, "USDT", D("10000"))
            self.ledger.set_balance(venue, "BTC", D("1"))
        bus = Bus()
        self.engine = Engine(strategies=[], bus=bus, ledger=self.ledger, clock=lambda: NOW)
        self.engine.set_venues({"a": 0.001, "b": 0.001}, {})
        for venue in ("a", "b"):
            self.engine.on_feed_state(venue, True)
            self.engine.on_quote(Quote(venue, "BTCUSDT", 9999.0, 10001.0, 1, 1, NOW, NOW))
        self.control = Control(engine=self.engine, ledger=self.ledger, bus=bus,
                               clock=lambda: NOW)


def signal(quantity: float = 0.01, price: float = 10000.0) -> Signal:
    return Signal(1, "BTCUSDT", "a", "b", price, price * 1.01, 1, 1, quantity, 1.0, 1.0, 1.0,
                  0.2, 1.0, NOW)


def trade(trade_id: int, quantity: str) -> Trade:
    return Trade(trade_id, trade_id, "simulation", "BTCUSDT", "a", "b", D(quantity),
                 D("10000"), D("10100"), D("1"), NOW)


def manager(**limits: float) -> tuple[RiskManager, FakeRuntime]:
    runtime = FakeRuntime()
    return RiskManager(attrs.evolve(RiskConfig(), **limits), runtime), runtime


def test_accepts_within_every_limit() -> None:
    risk, _ = manager()
    assert risk.check(signal()) is None
    assert {use.status for use in risk.limits()} == {"normal"}


def test_max_concurrent_trades() -> None:
    risk, runtime = manager(max_concurrent_trades=2)
    runtime.control.active = {i: trade(i, "0.05") for i in (1, 2)}
    assert risk.check(signal()) == "max_concurrent_trades"
    uses = {u.name: u for u in risk.limits()}
    assert (uses["max_concurrent_trades"].current, uses["max_concurrent_trades"].status) == (
        2, "critical")
    # The largest trade in flight against max_position_size: 0.05 x 10000 of 1000.
    assert (uses["max_position_size"].current, uses["max_position_size"].status) == (
        500.0, "normal")


def test_max_position_size() -> None:
    risk, _ = manager(max_position_size=500.0)
    assert risk.check(signal(quantity=0.04)) is None  # 400
    assert risk.check(signal(quantity=0.06)) == "max_position_size"  # 600


def test_daily_loss_limit() -> None:
    risk, runtime = manager(daily_loss_limit=100.0)
    runtime.control.stats = TradingStats()
    runtime.control.stats.roll(NOW)
    runtime.control.stats.realized_today = D("-85")
    assert risk.check(signal()) is None
    assert {u.name: u for u in risk.limits()}["daily_loss_limit"].status == "warning"
    runtime.control.stats.realized_today = D("-100")
    assert risk.check(signal()) == "daily_loss_limit"


def test_daily_loss_restarts_at_midnight_utc() -> None:
    stats = TradingStats()
    stats.roll(NOW)
    stats.realized_today = D("-500")
    stats.roll(NOW + 86400)
    assert stats.realized_today == 0


def test_max_drawdown_from_the_equity_peak() -> None:
    risk, runtime = manager(max_drawdown_percent=5.0)
    assert risk.check(signal()) is None  # peak: 2 x (10000 + 1 BTC at 10000) = 40000
    assert risk.equity_peak == pytest.approx(40000.0)
    runtime.ledger.set_balance("a", "USDT", D("7000"))  # -3000: 7.5 % below the peak
    assert risk.drawdown_percent() == pytest.approx(7.5)
    assert risk.check(signal()) == "max_drawdown"


def test_balance_threshold_per_exchange() -> None:
    risk, runtime = manager(balance_threshold_percent=10.0, max_drawdown_percent=100.0)
    runtime.ledger.set_balance("b", "USDT", D("0"))
    runtime.ledger.set_balance("b", "BTC", D("0.15"))  # 1500 of 20000: 7.5 %
    assert risk.balance_percent("b") == pytest.approx(7.5)
    assert risk.check(signal()) == "balance_threshold"


def test_stop_loss_is_offered_to_the_trade_runner() -> None:
    risk, _ = manager(stop_loss_percent=2.0)
    assert risk.stop_loss_fraction == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("current", "status"), [(0.0, "normal"), (3.99, "normal"), (4.0, "warning"), (5.0, "critical")]
)
def test_limit_status_thresholds(current: float, status: str) -> None:
    assert LimitUse("max_drawdown_percent", 5.0, current).status == status


def test_a_missing_price_is_not_a_drawdown() -> None:
    """While every venue quoting BTC is down, the BTC held has no price: the drawdown and
    the balance share keep their last figures instead of counting the BTC as lost."""
    risk, runtime = manager(max_drawdown_percent=1.0, balance_threshold_percent=90.0)
    assert risk.check(signal()) is None
    before = risk.drawdown_percent()
    for venue in ("a", "b"):
        runtime.engine.on_feed_state(venue, False, "test")
    assert runtime.engine.price_usd("BTC") is None
    assert risk.drawdown_percent() == before
    assert risk.balance_percent("a") == 100.0
    assert risk.check(signal()) is None
