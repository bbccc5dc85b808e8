"""The ``[exchanges.binance]`` table.

Fees are fractions (``0.001`` = 0.1 %, Binance's base-tier spot taker fee,
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
    "MAX_RECV_WINDOW_MS",
    "MAX_STREAMS_PER_CONNECTION",
    "TESTNET_ORDER_STREAM_URL",
    "TESTNET_REST_URL",
    "TESTNET_WS_URL",
    "BinanceConfig",
]

MAINNET_WS_URL = "wss://stream.binance.com:9443"
TESTNET_WS_URL = "wss://stream.testnet.binance.vision"
MAINNET_REST_URL = "https://api.binance.com"
TESTNET_REST_URL = "https://testnet.binance.vision"
# The WebSocket API, where the account's user data stream is subscribed since the
# listenKey streams were retired on 2026-02-20 (binance-spot-api-docs CHANGELOG
# 2026-01-21; web-socket-api.md "User Data Stream requests").
MAINNET_ORDER_STREAM_URL = "wss://ws-api.binance.com:443/ws-api/v3"
TESTNET_ORDER_STREAM_URL = "wss://ws-api.testnet.binance.vision/ws-api/v3"
# Binance accepts at most 1024 streams on one connection (web-socket-streams.md, "Limits").
MAX_STREAMS_PER_CONNECTION = 1024
# recvWindow may be at most 60000 ms (exchange-protocols.md 1.2, "Signing").
MAX_RECV_WINDOW_MS = 60000
# The most book levels per side a quote carries.
MAX_DEPTH = 100


@attrs.frozen
class BinanceConfig(VenueConfig):
    """``[exchanges.binance]``: Binance spot. ``ws_url`` and ``rest_url`` default to
    wss://stream.binance.com:9443 and https://api.binance.com (testnet:
    wss://stream.testnet.binance.vision and https://testnet.binance.vision);
    ``request_budget_fraction`` is the share of Binance's request weight limit (6000 per
    minute per IP); the order stream is the account's user data stream on the WebSocket
    API."""

    endpoints = Endpoints(
        ws=MAINNET_WS_URL, rest=MAINNET_REST_URL, order_stream=MAINNET_ORDER_STREAM_URL,
        testnet_ws=TESTNET_WS_URL, testnet_rest=TESTNET_REST_URL,
        testnet_order_stream=TESTNET_ORDER_STREAM_URL,
    )

    # Names of the environment variables holding the API key and secret (trading only).
    api_key_env: str = setting("BINANCE_API_KEY", reload="restart")
    api_secret_env: str = setting("BINANCE_API_SECRET", reload="restart")
    # Streams (symbols) per WebSocket connection; more symbols open more connections.
    max_streams_per_connection: int = setting(200, ge=1, le=MAX_STREAMS_PER_CONNECTION)
    # Order book levels per side the strategies see. 1: the best bid and ask alone
    # (``<symbol>@bookTicker``); more: a local book per symbol kept from the diff-depth
    # stream (``<symbol>@depth@100ms``) and REST snapshots (``GET /api/v3/depth``).
    depth: int = setting(20, ge=1, le=MAX_DEPTH)
    # How long (ms) a signed request stays valid after its timestamp; Binance refuses it
    # later than that (default 5000, at most 60000).
    recv_window_ms: int = setting(5000, ge=1, le=MAX_RECV_WINDOW_MS)
    # A REST request that has not answered after this many seconds is given up (for an
    # order: its outcome is unknown, and the order is looked up by its client order id).
    request_timeout_seconds: float = setting(10.0, gt=0, le=120)

    def credential_variables(self) -> tuple[str, ...]:
        return (self.api_key_env, self.api_secret_env)
