"""Building blocks for exchange plugins: a reconnecting WebSocket feed (with per-symbol
order book syncs) and the WebSocket client under it, a local order book, a base for
signed REST clients, a request budget, and symbol trading rules with rounding.

They know no exchange by name; each exchange plugin (``arbotd_binance``, ``arbotd_bybit``,
``arbotd_okx`` and third-party ones) keeps its own wire format, signing and quirks, and
uses these for what every exchange needs the same way.
"""

from arbotd.exchange.book import OrderBook
from arbotd.exchange.budget import RequestBudget, parse_retry_after
from arbotd.exchange.feed import (
    Backoff,
    BookResync,
    Connection,
    ProblemLog,
    Resync,
    WebSocketFeed,
    error_cause,
)
from arbotd.exchange.rest import PauseRule, RestClient, query_string
from arbotd.exchange.rules import SymbolRules, ceil_to, common_quantity, decimal_text, floor_to
from arbotd.exchange.wsclient import (
    ConnectionClosed,
    HandshakeFailed,
    WebSocketConnection,
    WebSocketError,
    open_connection,
)

__all__ = [
    "Backoff",
    "BookResync",
    "Connection",
    "ConnectionClosed",
    "HandshakeFailed",
    "OrderBook",
    "PauseRule",
    "ProblemLog",
    "RequestBudget",
    "RestClient",
    "Resync",
    "SymbolRules",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketFeed",
    "ceil_to",
    "common_quantity",
    "decimal_text",
    "error_cause",
    "floor_to",
    "open_connection",
    "parse_retry_after",
    "query_string",
]
