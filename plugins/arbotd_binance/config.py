"""The ``[exchanges.binance]`` table.

Fees are fractions (``0.001`` = 0.1 %, Binance's base-tier spot taker fee,
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
class BinanceConfig:
    """``[exchanges.binance]``: Binance spot."""

    # Trading and watching it may be switched through the API; everything that says
    # where the daemon connects and which secrets it reads is read at start only.
    enabled: bool = setting(False, api=True)
    # Use Binance's spot testnet (wss://stream.testnet.binance.vision,
    # https://testnet.binance.vision).
    testnet: bool = setting(False, reload="restart")
    # WebSocket base URL; "" means wss://stream.binance.com:9443, or the testnet's URL
    # when testnet = true.
    ws_url: str = setting("", check=check_ws_url, reload="restart")
    # REST base URL; "" means https://api.binance.com, or https://testnet.binance.vision
    # when testnet = true.
    rest_url: str = setting("", check=check_rest_url, reload="restart")
    taker_fee: float = setting(0.001, ge=0, lt=0.1)
    premium_baseline: float = setting(0.0, ge=-100, le=100)
    # Names of the environment variables holding the API key and secret (trading only).
    api_key_env: str = setting("BINANCE_API_KEY", reload="restart")
    api_secret_env: str = setting("BINANCE_API_SECRET", reload="restart")
    # A connection that brings no message for this long is marked unusable and reopened.
    stale_after_seconds: float = setting(10.0, gt=0, le=3600)
    # Streams (symbols) per WebSocket connection; more symbols open more connections.
    max_streams_per_connection: int = setting(200, ge=1, le=MAX_STREAMS_PER_CONNECTION)
    # Order book levels per side the strategies see. 1: the best bid and ask alone
    # (``<symbol>@bookTicker``); more: a local book per symbol kept from the diff-depth
    # stream (``<symbol>@depth@100ms``) and REST snapshots (``GET /api/v3/depth``).
    depth: int = setting(20, ge=1, le=MAX_DEPTH)
    # How long (ms) a signed request stays valid after its timestamp; Binance refuses it
    # later than that (default 5000, at most 60000).
    recv_window_ms: int = setting(5000, ge=1, le=MAX_RECV_WINDOW_MS)
    # Share of Binance's request weight limit (6000 per minute per IP) the daemon allows
    # itself; past it, requests wait for the next minute instead of risking a 429 or ban.
    request_budget_fraction: float = setting(0.8, gt=0, le=1)
    # A REST request that has not answered after this many seconds is given up (for an
    # order: its outcome is unknown, and the order is looked up by its client order id).
    request_timeout_seconds: float = setting(10.0, gt=0, le=120)
    # Learn of fills from the account's user data stream (live mode), REST answering
    # only when the stream is down or silent.
    order_stream: bool = setting(True, reload="restart")
    # The WebSocket API URL of that stream; "" means wss://ws-api.binance.com:443/ws-api/v3
    # (the testnet's with testnet = true) while rest_url is the default, and no stream
    # when rest_url points elsewhere.
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
        """Where the user data stream is subscribed, ``None`` for none: ``order_stream``
        is off, or ``rest_url`` names another server (a proxy, a fake) and
        ``order_stream_url`` does not say where that server's stream is."""
        if not self.order_stream:
            return None
        if self.order_stream_url:
            return self.order_stream_url
        if self.rest_url:
            return None
        return TESTNET_ORDER_STREAM_URL if self.testnet else MAINNET_ORDER_STREAM_URL
