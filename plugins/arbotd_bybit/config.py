"""The ``[exchanges.bybit]`` table.

Fees are fractions (``0.001`` = 0.1 %, Bybit's base-tier spot taker fee,
exchange-protocols.md section 6); ``premium_baseline`` is a percent.
"""

from __future__ import annotations

import attrs

from arbotd import setting
from arbotd.exchange.settings import check_rest_url, check_ws_url

__all__ = [
    "MAINNET_ORDER_STREAM_URL",
    "MAINNET_REST_URL",
    "MAINNET_WS_URL",
    "MAX_DEPTH",
    "MAX_TOPICS_PER_CONNECTION",
    "TESTNET_ORDER_STREAM_URL",
    "TESTNET_REST_URL",
    "TESTNET_WS_URL",
    "BybitConfig",
]

# Hosts of the public WebSocket and of REST (exchange-protocols.md 2.1 and 2.2); the
# spot stream's path (/v5/public/spot) is added by the feed.
MAINNET_WS_URL = "wss://stream.bybit.com"
TESTNET_WS_URL = "wss://stream-testnet.bybit.com"
MAINNET_REST_URL = "https://api.bybit.com"
TESTNET_REST_URL = "https://api-testnet.bybit.com"
# The private stream (the account's orders and executions; wss-authentication.mdx).
MAINNET_ORDER_STREAM_URL = "wss://stream.bybit.com/v5/private"
TESTNET_ORDER_STREAM_URL = "wss://stream-testnet.bybit.com/v5/private"
# Bybit caps the subscription args of one connection at 21,000 characters
# (exchange-protocols.md 2.1); 500 topics of the longest symbols stay well inside it.
MAX_TOPICS_PER_CONNECTION = 500
# Depths above 1 come from the orderbook.50 topic (exchange-protocols.md 2.1).
MAX_DEPTH = 50


@attrs.frozen
class BybitConfig:
    """``[exchanges.bybit]``: Bybit v5 spot."""

    # Trading and watching it may be switched through the API; everything that says
    # where the daemon connects and which secrets it reads is read at start only.
    enabled: bool = setting(False, api=True)
    # Use Bybit's testnet (stream-testnet.bybit.com, api-testnet.bybit.com).
    testnet: bool = setting(False, reload="restart")
    # WebSocket host; "" means wss://stream.bybit.com, or the testnet's when testnet = true.
    ws_url: str = setting("", check=check_ws_url, reload="restart")
    # REST base URL; "" means https://api.bybit.com, or the testnet's.
    rest_url: str = setting("", check=check_rest_url, reload="restart")
    taker_fee: float = setting(0.001, ge=0, lt=0.1)
    premium_baseline: float = setting(0.0, ge=-100, le=100)
    # Names of the environment variables holding the API key and secret (trading only).
    api_key_env: str = setting("BYBIT_API_KEY", reload="restart")
    api_secret_env: str = setting("BYBIT_API_SECRET", reload="restart")
    # How long a signed request stays valid after its timestamp (X-BAPI-RECV-WINDOW, ms).
    recv_window_ms: int = setting(5000, ge=100, le=60000)
    # A connection that brings no message for this long is marked unusable and reopened.
    stale_after_seconds: float = setting(10.0, gt=0, le=3600)
    # Order book levels per side delivered to the engine: 1 is the best bid and ask alone
    # (orderbook.1), 2 to 50 come from orderbook.50 (a snapshot, then deltas checked by
    # their update id). A changed depth restarts the feed.
    depth: int = setting(20, ge=1, le=MAX_DEPTH)
    # Topics (symbols) per WebSocket connection; more symbols open more connections.
    max_topics_per_connection: int = setting(100, ge=1, le=MAX_TOPICS_PER_CONNECTION)
    # Share of each request limit the daemon allows itself, so it slows down before Bybit
    # answers "too many visits".
    request_budget_fraction: float = setting(0.8, gt=0, le=1)
    # Learn of fills from the private stream's order and execution topics (live mode),
    # REST answering only when the stream is down or silent.
    order_stream: bool = setting(True, reload="restart")
    # The private stream's URL; "" means wss://stream.bybit.com/v5/private (the testnet's
    # with testnet = true) while rest_url is the default, and no stream when rest_url
    # points elsewhere.
    order_stream_url: str = setting("", check=check_ws_url, reload="restart")

    def resolved_ws_url(self) -> str:
        """``ws_url`` without a trailing slash, or the default for ``testnet``."""
        if self.ws_url:
            return self.ws_url.rstrip("/")
        return TESTNET_WS_URL if self.testnet else MAINNET_WS_URL

    def resolved_rest_url(self) -> str:
        """``rest_url`` without a trailing slash, or the default for ``testnet``."""
        if self.rest_url:
            return self.rest_url.rstrip("/")
        return TESTNET_REST_URL if self.testnet else MAINNET_REST_URL

    def resolved_order_stream_url(self) -> str | None:
        """Where the private stream is, ``None`` for none: ``order_stream`` is off, or
        ``rest_url`` names another server (a proxy, a fake) and ``order_stream_url``
        does not say where that server's stream is."""
        if not self.order_stream:
            return None
        if self.order_stream_url:
            return self.order_stream_url
        if self.rest_url:
            return None
        return TESTNET_ORDER_STREAM_URL if self.testnet else MAINNET_ORDER_STREAM_URL
