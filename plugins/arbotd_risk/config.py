"""``[risk_management]``: limits that stop new trades. ``_percent`` keys are percent."""

from __future__ import annotations

import attrs

from arbotd import setting

# Amounts (quote currency) are finite and at most a billion: a larger one is a typo.
MAX_AMOUNT = 1e9


@attrs.frozen
class RiskConfig:
    """Every limit may be changed through the API (``PUT /api/v1/trading/config``)."""

    max_concurrent_trades: int = setting(3, ge=1, le=1000, api=True)
    max_position_size: float = setting(1000.0, gt=0, le=MAX_AMOUNT, api=True)
    max_drawdown_percent: float = setting(5.0, gt=0, le=100, api=True)
    daily_loss_limit: float = setting(1000.0, gt=0, le=MAX_AMOUNT, api=True)
    stop_loss_percent: float = setting(2.0, gt=0, le=100, api=True)
    balance_threshold_percent: float = setting(10.0, ge=0, le=100, api=True)
