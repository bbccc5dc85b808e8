"""The exchange kit: what every venue plugin needs the same way.

A reconnecting WebSocket feed (with per-symbol order book syncs, by REST snapshot or by
resubscription) and the WebSocket client under it, a local order book, a base for signed
REST clients, a request budget, symbol trading rules with rounding, a private order
stream with what it tells of the account's orders, the base of a venue's config table and
of its trading account, and helpers for its hook implementations.

They know no exchange by name; each exchange plugin (``arbotd_binance``,
``arbotd_bitget``, ``arbotd_bybit``, ``arbotd_okx``, ``arbotd_upbit`` and third-party
ones) keeps its own wire format, signing, error codes, defaults and documented facts, and
uses these for the rest.

To add a venue (a package ``arbotd_<venue>``, registered under ``[project.entry-points.arbotd]``):

1. ``config.py``: ``@attrs.frozen class <Venue>Config(VenueConfig)`` with ``endpoints =
   Endpoints(...)`` (production and testnet URLs), the venue's own keys (its key
   variables' names and defaults, ``depth`` and per-connection bounds, receive window)
   and :meth:`VenueConfig.credential_variables`.
2. ``rest.py``: a :class:`RestClient` subclass: its signing, its error codes mapped to
   :class:`arbotd.TemporaryExchangeError` / :class:`arbotd.PermanentExchangeError`, its
   request limits (:class:`RequestBudget`, :class:`PauseRule`).
3. ``stream.py``: a :class:`VenueFeed` (a :class:`WebSocketFeed`) subclass:
   :meth:`~WebSocketFeed.connections` and :meth:`~WebSocketFeed.parse` (its wire
   format), a heartbeat if the venue wants one, and for order books how a broken one is
   resynchronised: raise :class:`BookResync` and implement
   :meth:`~WebSocketFeed.sync_book` (a REST snapshot), or raise :class:`ResyncSymbol`
   through :class:`Resubscriptions` (resubscribe it).
4. ``private.py``: a :class:`SignedOrderStream` subclass: ``login`` (sign in and
   subscribe), ``parse`` (its order and fill events into :class:`OrderReport`),
   ``heartbeat``.
5. ``account.py``: a :class:`VenueAccount` subclass: ``make_rest``,
   ``make_order_stream``, ``load_rules``, ``told``, and ``place_order``,
   ``query_order``, ``cancel_order``, ``balances`` with the venue's requests and codes.
6. ``plugin.py``: the hookimpls ``register_config_sections``, ``register_exchanges`` and
   ``register_accounts``, over :func:`enabled_settings`, :func:`runtime_clock` and
   :func:`kept_account` (:mod:`arbotd.exchange.plugin`).
7. Tests against a fake server on loopback speaking the venue's wire format
   (``tests/exchanges``: ``fakehttp``, ``fakews``, ``fakeprivate`` and the shared test
   tools there).
"""

from arbotd.exchange.account import RecentIds, VenueAccount
from arbotd.exchange.book import OrderBook
from arbotd.exchange.budget import RequestBudget, parse_retry_after
from arbotd.exchange.feed import (
    Backoff,
    BookResync,
    Connection,
    ProblemLog,
    Resync,
    ResyncSymbol,
    VenueFeed,
    WebSocketFeed,
    error_cause,
)
from arbotd.exchange.orderstream import (
    OrderReport,
    OrderStream,
    OrderTracker,
    ReportedFill,
    SignedOrderStream,
    StreamRefused,
    TrackedOrder,
    merge_fills,
)
from arbotd.exchange.plugin import (
    enabled_settings,
    kept_account,
    runtime_clock,
    traded_symbols,
)
from arbotd.exchange.rest import PauseRule, RestClient, query_string
from arbotd.exchange.resubscribe import ResubscribedBooks, Resubscriptions
from arbotd.exchange.rules import SymbolRules, ceil_to, common_quantity, decimal_text, floor_to
from arbotd.exchange.settings import Endpoints, VenueConfig
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
    "Endpoints",
    "HandshakeFailed",
    "OrderBook",
    "OrderReport",
    "OrderStream",
    "OrderTracker",
    "PauseRule",
    "ProblemLog",
    "RecentIds",
    "ReportedFill",
    "RequestBudget",
    "RestClient",
    "ResubscribedBooks",
    "Resubscriptions",
    "Resync",
    "ResyncSymbol",
    "SignedOrderStream",
    "StreamRefused",
    "SymbolRules",
    "TrackedOrder",
    "VenueAccount",
    "VenueConfig",
    "VenueFeed",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketFeed",
    "ceil_to",
    "common_quantity",
    "decimal_text",
    "enabled_settings",
    "error_cause",
    "floor_to",
    "kept_account",
    "merge_fills",
    "open_connection",
    "parse_retry_after",
    "query_string",
    "runtime_clock",
    "traded_symbols",
]
