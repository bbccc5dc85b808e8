"""``[risk_management]``: limits that stop new trades. ``_percent`` keys are percent."""

from __future__ import annotations

import attrs

from arbotd import setting


@attrs.frozen
class RiskConfig:
    max_concurrent_trades: int = setting(3, ge=1, le=1000)
    max_position_size: float = setting(1000.0, gt=0)
    max_drawdown_percent: float = setting(5.0, gt=0, le=100)
    daily_loss_limit: float = setting(1000.0, gt=0)
    stop_loss_percent: float = setting(2.0, gt=0, le=100)
    balance_threshold_percent: float = setting(10.0, ge=0, le=100)
