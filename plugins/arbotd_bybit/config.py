"""The ``[exchanges.bybit]`` table.

Fees are fractions (``0.001`` = 0.1 %, Bybit's base-tier spot taker fee,
exchange-protocols.md section 6); ``premium_baseline`` is a percent.
"""

from __future__ import annotations

import attrs

from arbotd import setting
from arbotd.exchange.settings import Endpoints, VenueConfig

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
class BybitConfig(VenueConfig):
    """``[exchanges.bybit]``: Bybit v5 spot. ``ws_url`` is the WebSocket host (default
    wss://stream.bybit.com, testnet wss://stream-testnet.bybit.com), ``rest_url``
    defaults to https://api.bybit.com (testnet https://api-testnet.bybit.com); the order
    stream is the private stream's order and execution topics."""

    endpoints = Endpoints(
        ws=MAINNET_WS_URL, rest=MAINNET_REST_URL, order_stream=MAINNET_ORDER_STREAM_URL,
        testnet_ws=TESTNET_WS_URL, testnet_rest=TESTNET_REST_URL,
        testnet_order_stream=TESTNET_ORDER_STREAM_URL,
    )

    # Names of the environment variables holding the API key and secret (trading only).
    api_key_env: str = setting("BYBIT_API_KEY", reload="restart")
    api_secret_env: str = setting("BYBIT_API_SECRET", reload="restart")
    # How long a signed request stays valid after its timestamp (X-BAPI-RECV-WINDOW, ms).
    recv_window_ms: int = setting(5000, ge=100, le=60000)
    # Order book levels per side delivered to the engine: 1 is the best bid and ask alone
    # (orderbook.1), 2 to 50 come from orderbook.50 (a snapshot, then deltas checked by
    # their update id). A changed depth restarts the feed.
    depth: int = setting(20, ge=1, le=MAX_DEPTH)
    # Topics (symbols) per WebSocket connection; more symbols open more connections.
    max_topics_per_connection: int = setting(100, ge=1, le=MAX_TOPICS_PER_CONNECTION)

    def credential_variables(self) -> tuple[str, ...]:
        return (self.api_key_env, self.api_secret_env)
