"""Building blocks for exchange plugins: a reconnecting WebSocket feed (with per-symbol
order book syncs, by REST snapshot or by resubscription) and the WebSocket client under
it, a local order book, a base for signed REST clients, a request budget, symbol trading
rules with rounding, and a private order stream with what it tells of the account's
orders.

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
    ResyncSymbol,
    WebSocketFeed,
    error_cause,
)
from arbotd.exchange.orderstream import (
    OrderReport,
    OrderStream,
    OrderTracker,
    ReportedFill,
    StreamRefused,
    TrackedOrder,
    merge_fills,
)
from arbotd.exchange.rest import PauseRule, RestClient, query_string
from arbotd.exchange.resubscribe import Resubscriptions
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
    "OrderReport",
    "OrderStream",
    "OrderTracker",
    "PauseRule",
    "ProblemLog",
    "ReportedFill",
    "RequestBudget",
    "RestClient",
    "Resubscriptions",
    "Resync",
    "ResyncSymbol",
    "StreamRefused",
    "SymbolRules",
    "TrackedOrder",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketFeed",
    "ceil_to",
    "common_quantity",
    "decimal_text",
    "error_cause",
    "floor_to",
    "merge_fills",
    "open_connection",
    "parse_retry_after",
    "query_string",
]
