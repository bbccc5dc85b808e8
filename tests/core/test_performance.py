"""The performance figures storage and backtests share."""

from decimal import Decimal

from arbotd.performance import max_drawdown_percent, profit_factor, sharpe_ratio


def test_sharpe_ratio_is_annualised_by_the_sampling_period():
    equity = [100.0, 101.0, 100.5, 102.0]
    daily = sharpe_ratio(equity, 365)
    minutely = sharpe_ratio(equity, 525_600)
    assert daily > 0
    assert abs(minutely / daily - (525_600 / 365) ** 0.5) < 1e-3


def test_sharpe_ratio_is_zero_without_evidence():
    assert sharpe_ratio([100.0, 101.0], 365) == 0.0  # one return
    assert sharpe_ratio([100.0, 101.0, 102.01], 365) == 0.0  # returns that do not vary


def test_drawdown_is_measured_from_the_running_peak():
    assert max_drawdown_percent([100.0, 120.0, 90.0, 130.0, 117.0]) == 25.0
    assert max_drawdown_percent([1.0, 2.0, 3.0]) == 0.0


def test_profit_factor_without_a_loss_is_none_not_infinity():
    assert profit_factor([Decimal("3"), Decimal("-1.5")]) == 2.0
    assert profit_factor([Decimal("3")]) is None
    assert profit_factor([]) is None
