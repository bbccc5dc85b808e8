"""The ``[exchanges.bitget]`` table.

Fees are fractions (``0.001`` = 0.1 %, Bitget's base spot taker fee,
bitget-upbit-protocols.md section 0); ``premium_baseline`` is a percent.
"""

from __future__ import annotations

import attrs

from arbotd import setting
from arbotd.exchange.settings import check_rest_url, check_ws_url

__all__ = [
    "DEMO_ORDER_STREAM_URL",
    "DEMO_WS_URL",
    "MAINNET_ORDER_STREAM_URL",
    "MAINNET_REST_URL",
    "MAINNET_WS_URL",
    "MAX_CHANNELS_PER_CONNECTION",
    "MAX_DEPTH",
    "BitgetConfig",
]

# The public WebSocket endpoint, and demo trading's (bitget-upbit-protocols.md 0, 1.1).
MAINNET_WS_URL = "wss://ws.bitget.com/v2/ws/public"
DEMO_WS_URL = "wss://wspap.bitget.com/v2/ws/public"
# The private endpoint, where the account's orders channel is (after op:login), and
# demo trading's (Bitget's ``common/demotrading/websocket``).
MAINNET_ORDER_STREAM_URL = "wss://ws.bitget.com/v2/ws/private"
DEMO_ORDER_STREAM_URL = "wss://wspap.bitget.com/v2/ws/private"
# REST has one host; demo trading is the same host with the ``paptrading: 1`` header and
# a demo key (bitget-upbit-protocols.md 1.2).
MAINNET_REST_URL = "https://api.bitget.com"
# Bitget allows 1000 channels per connection and advises fewer than 50
# (bitget-upbit-protocols.md 1.1).
MAX_CHANNELS_PER_CONNECTION = 1000
# The books channel carries every level; the doc also speaks of 400 levels
# (bitget-upbit-protocols.md 1.1), the most a depth may ask for.
MAX_DEPTH = 400


@attrs.frozen
class BitgetConfig:
    """``[exchanges.bitget]``: Bitget spot, API v2 (classic account)."""

    # Trading and watching it may be switched through the API; everything that says
    # where the daemon connects and which secrets it reads is read at start only.
    enabled: bool = setting(False, api=True)
    # Use Bitget's demo trading: the demo WebSocket host and, on REST, the
    # ``paptrading: 1`` header (demo keys are made in Bitget's demo trading mode).
    testnet: bool = setting(False, reload="restart")
    # Public WebSocket endpoint; "" means wss://ws.bitget.com/v2/ws/public, or the
    # demo's (wss://wspap.bitget.com/v2/ws/public) when testnet = true.
    ws_url: str = setting("", check=check_ws_url, reload="restart")
    # REST base URL; "" means https://api.bitget.com (also for demo trading).
    rest_url: str = setting("", check=check_rest_url, reload="restart")
    taker_fee: float = setting(0.001, ge=0, lt=0.1)
    premium_baseline: float = setting(0.0, ge=-100, le=100)
    # Names of the environment variables holding the API key, its secret and the
    # passphrase chosen when the key was made (trading only).
    api_key_env: str = setting("BITGET_API_KEY", reload="restart")
    api_secret_env: str = setting("BITGET_API_SECRET", reload="restart")
    passphrase_env: str = setting("BITGET_API_PASSPHRASE", reload="restart")
    # A connection that brings no message (not even the pong answering its ping) for
    # this long is marked unusable and reopened.
    stale_after_seconds: float = setting(10.0, gt=0, le=3600)
    # Order book levels per side delivered to the engine: 1 is the best bid and ask
    # alone (books1), 2 to 15 come from books15 (snapshots), more from books (a snapshot,
    # then updates checked by seq and checksum). A changed depth restarts the feed.
    depth: int = setting(20, ge=1, le=MAX_DEPTH)
    # Channels (symbols) per WebSocket connection; more symbols open more connections.
    # Bitget advises fewer than 50.
    max_channels_per_connection: int = setting(40, ge=1, le=MAX_CHANNELS_PER_CONNECTION)
    # Share of each REST endpoint's request limit the daemon allows itself, so that it
    # slows down before Bitget answers 429.
    request_budget_fraction: float = setting(0.8, gt=0, le=1)
    # Learn of fills from the private orders channel (live mode), REST answering only
    # when the stream is down or silent.
    order_stream: bool = setting(True, reload="restart")
    # The private WebSocket endpoint; "" means wss://ws.bitget.com/v2/ws/private (the
    # demo's with testnet = true) while rest_url is the default, and no stream when
    # rest_url points elsewhere.
    order_stream_url: str = setting("", check=check_ws_url, reload="restart")

    def resolved_ws_url(self) -> str:
        """``ws_url``, or the default for ``testnet``."""
        if self.ws_url:
            return self.ws_url
        return DEMO_WS_URL if self.testnet else MAINNET_WS_URL

    def resolved_rest_url(self) -> str:
        """``rest_url`` without a trailing slash, or Bitget's REST host."""
        return (self.rest_url or MAINNET_REST_URL).rstrip("/")

    def resolved_order_stream_url(self) -> str | None:
        """Where the private orders channel is, ``None`` for none: ``order_stream`` is
        off, or ``rest_url`` names another server (a proxy, a fake) and
        ``order_stream_url`` does not say where that server's stream is."""
        if not self.order_stream:
            return None
        if self.order_stream_url:
            return self.order_stream_url
        if self.rest_url:
            return None
        return DEMO_ORDER_STREAM_URL if self.testnet else MAINNET_ORDER_STREAM_URL
