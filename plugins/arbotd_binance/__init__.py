"""arbotd_binance: Binance spot, market data and trading.

Best bid/ask streams as ``<symbol>@bookTicker``, or order books from ``<symbol>@depth``
diff streams and REST snapshots, over combined WebSocket streams into Quotes
(:class:`BinanceFeed`); live orders, balances and trading rules go through the
signed REST API (:class:`BinanceAccount` over :class:`BinanceRest`).
"""

from arbotd_binance.account import BinanceAccount, parse_exchange_info
from arbotd_binance.config import BinanceConfig
from arbotd_binance.depth import SymbolBook, parse_depth_event, parse_depth_snapshot
from arbotd_binance.rest import BinanceRest
from arbotd_binance.stream import Backoff, BinanceFeed, parse_book_ticker

__all__ = [
    "Backoff",
    "BinanceAccount",
    "BinanceConfig",
    "BinanceFeed",
    "BinanceRest",
    "SymbolBook",
    "parse_book_ticker",
    "parse_depth_event",
    "parse_depth_snapshot",
    "parse_exchange_info",
]
