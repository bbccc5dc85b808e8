"""Builtin plugin: risk limits (``[risk_management]``)."""

from arbotd_risk.config import RiskConfig
from arbotd_risk.manager import RiskManager

__all__ = ["RiskConfig", "RiskManager"]
