"""Builtin plugin: the cross-exchange arbitrage strategy (``[arbitrage]``)."""

from arbotd_xarb.config import ArbitrageConfig
from arbotd_xarb.strategy import CrossExchangeStrategy
from arbotd_xarb.trend import TrendTracker

__all__ = ["ArbitrageConfig", "CrossExchangeStrategy", "TrendTracker"]
