"""Performance figures every report of trading results uses the same way: the API's
``/performance`` (from storage) and a backtest's summary compute them here, so that the
same trades give the same Sharpe ratio, drawdown and profit factor wherever they are
shown.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from decimal import Decimal

__all__ = ["max_drawdown_percent", "profit_factor", "sharpe_ratio"]


def sharpe_ratio(equity: Sequence[float], periods_per_year: float) -> float:
    """Annualised Sharpe ratio of an equity series sampled at a regular period, rounded
    to 4 places.

    Return ``r_i = e_i / e_(i-1) - 1``; ratio ``mean(r) / stdev(r) *
    sqrt(periods_per_year)`` with the sample standard deviation (n - 1) and a risk-free
    rate of 0 (cash in an exchange account earns nothing). ``0.0`` with fewer than two
    returns or when the returns do not vary: the ratio is undefined there, and 0 says "no
    evidence either way" rather than infinity. A value of zero or less cannot be a base
    for a return and is skipped as a base.
    """
    returns = [
        current / previous - 1.0
        for previous, current in itertools.pairwise(equity)
        if previous > 0
    ]
    if len(returns) < 2:
        return 0.0
    spread = statistics.stdev(returns)
    if spread == 0 or not math.isfinite(spread):
        return 0.0
    return round(statistics.fmean(returns) / spread * math.sqrt(periods_per_year), 4)


def max_drawdown_percent(equity: Iterable[float]) -> float:
    """The largest fall from a running peak to a later value, in percent of the peak,
    rounded to 4 places: ``max((peak - e) / peak * 100)``. ``0.0`` for a series that
    never falls. Peaks of zero or less are ignored."""
    peak = -math.inf
    worst = 0.0
    for value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak * 100.0)
    return round(worst, 4)


def profit_factor(net_results: Iterable[Decimal]) -> float | None:
    """Sum of the winning results over the sum of the losing ones (as a positive
    number), rounded to 4 places.

    ``None`` when nothing lost: the ratio is infinite (or undefined without any trade),
    and JSON has no infinity. A sentinel such as 999 would read as a real figure on a
    dashboard.
    """
    gains = Decimal(0)
    losses = Decimal(0)
    for result in net_results:
        if result > 0:
            gains += result
        else:
            losses -= result
    if losses == 0:
        return None
    return round(float(gains / losses), 4)
