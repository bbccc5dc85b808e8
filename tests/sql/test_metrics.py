"""Every performance metric against a ledger and equity series computed by hand."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from _fixtures_queries import DAY1, DAY2, LEDGER, LEDGER_DAYS, LEDGER_METRICS

from arbotd.figures import MIN_DAILY_RETURNS, sharpe_ratio, sortino_ratio
from arbotd_sql.metrics import (
    TradeResult,
    daily_breakdown,
    daily_closes,
    max_drawdown_percent,
    money,
    risk_metrics,
    trade_metrics,
    utc_date,
    win_rate,
)

D = Decimal


def result(net: str, fees: str = "0", closed_at: float = DAY1) -> TradeResult:
    return TradeResult(0, "BTCUSDT", closed_at, D(net), D(fees), 1.0)


def metrics(results: list[TradeResult]) -> dict:
    return trade_metrics(results)[0]


def profit_factor(results: list[TradeResult]) -> float | None:
    return trade_metrics(results)[0]["profit_factor"]


# --- trades --------------------------------------------------------------------------------


def test_trade_metrics_of_the_hand_computed_ledger() -> None:
    # The arithmetic is written out beside LEDGER in _fixtures_queries.py.
    assert trade_metrics(LEDGER) == (LEDGER_METRICS, {})


def test_each_trade_figure_on_its_own() -> None:
    assert win_rate(LEDGER) == 40.0  # 2 of 5
    assert profit_factor(LEDGER) == 3.3333  # (3 + 2) / (1 + 0.5)
    assert LEDGER[0].gross_profit == D("3.2")  # 3 net + 0.2 fees
    assert [r.won for r in LEDGER] == [True, False, True, False, False]


def test_no_trades() -> None:
    assert trade_metrics([]) == ({
        "total_trades": 0,
        "successful_trades": 0,
        "win_rate": 0.0,
        "total_profit": 0.0,
        "total_fees": 0.0,
        "net_profit": 0.0,
        "avg_profit_per_trade": 0.0,
        "max_profit": 0.0,
        "max_loss": 0.0,
        "avg_execution_time_seconds": 0.0,
        "profit_factor": None,
    }, {"profit_factor": "no closed trades"})
    assert daily_breakdown([]) == []


def test_no_losses_gives_no_profit_factor_and_no_max_loss() -> None:
    # +1, +2, 0: nothing lost, so the factor is infinite -> None; max_loss 0.
    results = [result("1"), result("2"), result("0")]
    assert profit_factor(results) is None
    assert trade_metrics(results)[1] == {"profit_factor": "no losing trades"}
    figures = metrics(results)
    assert figures["max_loss"] == 0.0
    assert figures["max_profit"] == 2.0
    assert figures["win_rate"] == 66.6667  # 2 / 3


def test_only_losses_gives_zero_profit_factor_and_no_max_profit() -> None:
    # -1, -3: gross profit 0 / gross loss 4 = 0; best trade is a loss -> max_profit 0.
    results = [result("-1", "0.5"), result("-3", "0.5")]
    assert profit_factor(results) == 0.0
    figures = metrics(results)
    assert figures["max_profit"] == 0.0
    assert figures["max_loss"] == -3.0
    assert figures["total_profit"] == -3.0  # -4 net + 1 fees
    assert figures["successful_trades"] == 0


def test_money_is_summed_exactly_and_rounded_to_eight_places() -> None:
    # 0.1 + 0.2 as floats is 0.30000000000000004; as decimals exactly 0.3.
    assert metrics([result("0.1"), result("0.2")])["net_profit"] == 0.3
    assert money(D("1.123456785")) == 1.12345678  # half-even
    assert money(D("1.123456795")) == 1.1234568
    # 1 / 3 of a unit per trade.
    assert metrics([result("1"), result("0"), result("0")])["avg_profit_per_trade"] == (
        0.33333333
    )


def test_daily_breakdown_of_the_ledger() -> None:
    assert daily_breakdown(LEDGER) == LEDGER_DAYS


def test_daily_breakdown_uses_utc_days_and_sorts_them() -> None:
    # 23:59:59 belongs to its day, 00:00:00 to the next; rows come oldest first.
    results = [result("1", closed_at=DAY2), result("2", closed_at=DAY2 - 1)]
    assert daily_breakdown(results) == [
        {"date": "2024-01-01", "trades": 1, "profit": 2.0, "win_rate": 100.0},
        {"date": "2024-01-02", "trades": 1, "profit": 1.0, "win_rate": 100.0},
    ]
    assert str(utc_date(DAY2 - 1)) == "2024-01-01"


# --- equity --------------------------------------------------------------------------------


# Eight daily closes, seven returns (the minimum): +2 %, -1 %, +3 %, 0, +2 %, -1 %, +3 %.
CLOSES = [100.0]
for step in (0.02, -0.01, 0.03, 0.0, 0.02, -0.01, 0.03):
    CLOSES.append(CLOSES[-1] * (1 + step))


def test_sharpe_ratio_of_a_hand_computed_series() -> None:
    # returns r: mean 0.08 / 7 = 0.0114286; squared deviations sum to sum(r^2) - 7 * mean^2
    # = 0.0028 - 0.000914286 = 0.00188571 -> sample variance 0.000314286, stdev 0.0177281;
    # 0.0114286 / 0.0177281 * sqrt(365) = 12.3162
    returns = [0.02, -0.01, 0.03, 0.0, 0.02, -0.01, 0.03]
    mean = sum(returns) / 7
    stdev = math.sqrt(sum((r - mean) ** 2 for r in returns) / 6)
    ratio = sharpe_ratio(CLOSES)
    assert ratio.value == round(mean / stdev * math.sqrt(365), 4)
    assert ratio.value == pytest.approx(12.3162, abs=1e-4) and ratio.reason is None


def test_sortino_ratio_counts_only_falls() -> None:
    # downside deviation: sqrt((0.01^2 + 0.01^2) / 7) = 0.00534522; mean 0.0114286
    # 0.0114286 / 0.00534522 * sqrt(365) = 40.8482
    ratio = sortino_ratio(CLOSES)
    assert ratio.value == pytest.approx(40.8482, abs=1e-3)
    assert sortino_ratio([100.0 * 1.01**k for k in range(9)]).reason == "no day lost equity"


def test_sharpe_ratio_of_a_losing_series_is_negative() -> None:
    closes = [100.0]
    for step in (-0.01, -0.03, -0.01, -0.03, -0.01, -0.03, -0.01):
        closes.append(closes[-1] * (1 + step))
    assert sharpe_ratio(closes).value < 0


@pytest.mark.parametrize(
    "closes",
    [
        [],  # no day
        [100.0],  # one day: no return
        [100.0, 101.0],  # one return
        [100.0 + k for k in range(MIN_DAILY_RETURNS)],  # one return short
    ],
)
def test_too_few_days_give_no_ratio_and_say_why(closes: list[float]) -> None:
    for ratio in (sharpe_ratio(closes), sortino_ratio(closes)):
        assert ratio.value is None
        assert ratio.reason.startswith(f"needs at least {MIN_DAILY_RETURNS} daily returns")


def test_flat_equity_gives_no_sharpe_ratio() -> None:
    ratio = sharpe_ratio([100.0] * 10)
    assert ratio.value is None and ratio.reason == "equity did not vary from day to day"


def test_risk_metrics_name_what_is_missing() -> None:
    values, notes = risk_metrics([100.0, 101.0], [100.0, 99.0, 101.0])
    assert values == {"sharpe_ratio": None, "sortino_ratio": None,
                      "max_drawdown_percent": 1.0}
    assert set(notes) == {"sharpe_ratio", "sortino_ratio"}


def test_max_drawdown_with_two_dips() -> None:
    # 100 -> 120 -> 90: (120 - 90) / 120 = 25 %; 90 -> 130 -> 117: 13 / 130 = 10 %.
    assert max_drawdown_percent([100.0, 120.0, 90.0, 130.0, 117.0, 140.0]) == 25.0
    # The deeper dip second: 10 % first, then (150 - 105) / 150 = 30 %.
    assert max_drawdown_percent([100.0, 90.0, 150.0, 105.0]) == 30.0


def test_max_drawdown_rounds_to_four_places() -> None:
    # (101 - 95) / 101 = 5.940594...
    assert max_drawdown_percent([101.0, 95.0, 102.0]) == 5.9406


@pytest.mark.parametrize("equity", [[], [100.0], [100.0, 100.0], [1.0, 2.0, 3.0]])
def test_no_drawdown(equity: list[float]) -> None:
    assert max_drawdown_percent(equity) == 0.0


def test_daily_closes_take_each_days_last_snapshot() -> None:
    snapshots = [
        (DAY1 + 60, 100.0),
        (DAY2 + 86_399, 104.0),  # last second of 2024-01-02
        (DAY1 + 86_399, 101.0),  # last second of 2024-01-01
        (DAY2, 102.0),
        (DAY2 + 3 * 86_400, 110.0),  # 2024-01-05: the days between had no snapshot
    ]
    assert daily_closes(snapshots) == [101.0, 104.0, 110.0]
    assert daily_closes([]) == []
