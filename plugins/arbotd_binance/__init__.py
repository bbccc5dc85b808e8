"""arbotd_binance: Binance spot market data (best bid/ask over the public WebSocket).

This first slice streams ``<symbol>@bookTicker`` over combined streams into Quotes; it
places no orders and makes no REST calls.
"""

from arbotd_binance.config import BinanceConfig
from arbotd_binance.stream import Backoff, BinanceFeed, parse_book_ticker

__all__ = ["Backoff", "BinanceConfig", "BinanceFeed", "parse_book_ticker"]
