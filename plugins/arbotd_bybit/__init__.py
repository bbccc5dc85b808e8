"""arbotd_bybit: Bybit v5 spot, market data (order books over the public WebSocket:
``orderbook.1`` for the best level, ``orderbook.50`` for more) and a trading account for
``live`` mode (signed REST)."""

from arbotd_bybit.account import BybitAccount
from arbotd_bybit.config import BybitConfig
from arbotd_bybit.rest import BybitRest, BybitRetCodeError, sign
from arbotd_bybit.stream import BybitFeed

__all__ = ["BybitAccount", "BybitConfig", "BybitFeed", "BybitRest", "BybitRetCodeError", "sign"]
