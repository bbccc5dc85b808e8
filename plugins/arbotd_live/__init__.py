"""arbotd_live: the executor of ``live`` mode, sending real orders through the trading
accounts the exchange plugins provide (the ``register_accounts`` hook)."""

from arbotd_live.config import LiveConfig
from arbotd_live.executor import LiveExecutor

__all__ = ["LiveConfig", "LiveExecutor"]
