"""The ``[exchanges.bitget]`` table.

Fees are fractions (``0.001`` = 0.1 %, Bitget's base spot taker fee,
bitget-upbit-protocols.md section 0); ``premium_baseline`` is a percent.
"""

from __future__ import annotations

import attrs

from arbotd import setting
from arbotd.exchange.settings import Endpoints, VenueConfig

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
class BitgetConfig(VenueConfig):
    """``[exchanges.bitget]``: Bitget spot, API v2 (classic account). ``testnet`` is
    Bitget's demo trading: the demo WebSocket hosts and, on REST, the ``paptrading: 1``
    header (demo keys are made in Bitget's demo trading mode). ``ws_url`` is the whole
    public endpoint (default wss://ws.bitget.com/v2/ws/public, demo
    wss://wspap.bitget.com/v2/ws/public); ``rest_url`` defaults to https://api.bitget.com,
    also for demo trading. The order stream is the private ``orders`` channel (default
    wss://ws.bitget.com/v2/ws/private, demo wss://wspap.bitget.com/v2/ws/private)."""

    endpoints = Endpoints(
        ws=MAINNET_WS_URL, rest=MAINNET_REST_URL, order_stream=MAINNET_ORDER_STREAM_URL,
        testnet_ws=DEMO_WS_URL, testnet_rest=MAINNET_REST_URL,
        testnet_order_stream=DEMO_ORDER_STREAM_URL,
    )

    # Names of the environment variables holding the API key, its secret and the
    # passphrase chosen when the key was made (trading only).
    api_key_env: str = setting("BITGET_API_KEY", reload="restart")
    api_secret_env: str = setting("BITGET_API_SECRET", reload="restart")
    passphrase_env: str = setting("BITGET_API_PASSPHRASE", reload="restart")
    # Order book levels per side delivered to the engine: 1 is the best bid and ask
    # alone (books1), 2 to 15 come from books15 (snapshots), more from books (a snapshot,
    # then updates checked by seq and checksum). A changed depth restarts the feed.
    depth: int = setting(20, ge=1, le=MAX_DEPTH)
    # Channels (symbols) per WebSocket connection; more symbols open more connections.
    # Bitget advises fewer than 50.
    max_channels_per_connection: int = setting(40, ge=1, le=MAX_CHANNELS_PER_CONNECTION)

    def credential_variables(self) -> tuple[str, ...]:
        return (self.api_key_env, self.api_secret_env, self.passphrase_env)

    def resolved_ws_url(self) -> str:
        """``ws_url`` as written (Bitget's is a whole endpoint, path included), or the
        default for ``testnet``."""
        if self.ws_url:
            return self.ws_url
        return self.endpoints.testnet_ws if self.testnet else self.endpoints.ws
