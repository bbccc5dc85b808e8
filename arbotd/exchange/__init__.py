"""Building blocks for exchange plugins: a reconnecting WebSocket feed, a request
budget, and symbol trading rules with rounding.

They know no exchange by name; each exchange plugin (``arbotd_binance``, ``arbotd_bybit``,
``arbotd_okx`` and third-party ones) keeps its own wire format, signing and quirks, and
uses these for what every exchange needs the same way.
"""

from arbotd.exchange.budget import RequestBudget, parse_retry_after
from arbotd.exchange.feed import (
    Backoff,
    Connection,
    ProblemLog,
    Resync,
    WebSocketFeed,
    error_cause,
)
from arbotd.exchange.rules import SymbolRules, ceil_to, common_quantity, decimal_text, floor_to

__all__ = [
    "Backoff",
    "Connection",
    "ProblemLog",
    "RequestBudget",
    "Resync",
    "SymbolRules",
    "WebSocketFeed",
    "ceil_to",
    "common_quantity",
    "decimal_text",
    "error_cause",
    "floor_to",
    "parse_retry_after",
]
