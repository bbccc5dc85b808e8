"""The ``[exchanges.okx]`` table.

Fees are fractions (``0.001`` = 0.1 %, OKX's Lv1 spot taker fee, exchange-protocols.md
section 6); ``premium_baseline`` is a percent.
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
    "OkxConfig",
]

# The public WebSocket endpoint, and demo trading's (exchange-protocols.md 0 and 3.1).
MAINNET_WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
DEMO_WS_URL = "wss://wspap.okx.com:8443/ws/v5/public"
# The private endpoint, where the account's orders channel is (its login is required).
MAINNET_ORDER_STREAM_URL = "wss://ws.okx.com:8443/ws/v5/private"
DEMO_ORDER_STREAM_URL = "wss://wspap.okx.com:8443/ws/v5/private"
# REST has one host; demo trading is the same host with the ``x-simulated-trading: 1``
# header (exchange-protocols.md 3.2).
MAINNET_REST_URL = "https://www.okx.com"
# OKX documents no channel cap for bbo-tbt, only 64 KB of args per subscribe request
# and 480 subscribe requests an hour per connection (exchange-protocols.md 3.1); this
# bound keeps one connection's subscription well inside the first.
MAX_CHANNELS_PER_CONNECTION = 1000
# The books channel's snapshot carries 400 levels per side (exchange-protocols.md 3.1).
MAX_DEPTH = 400


@attrs.frozen
class OkxConfig(VenueConfig):
    """``[exchanges.okx]``: OKX v5 spot. ``testnet`` is OKX's demo trading: the demo
    WebSocket hosts and, on REST, the ``x-simulated-trading: 1`` header (demo keys are
    made in OKX's demo trading mode). ``ws_url`` is the whole public endpoint (default
    wss://ws.okx.com:8443/ws/v5/public, demo wss://wspap.okx.com:8443/ws/v5/public);
    ``rest_url`` defaults to https://www.okx.com, also for demo trading. The order stream
    is the private ``orders`` channel."""

    endpoints = Endpoints(
        ws=MAINNET_WS_URL, rest=MAINNET_REST_URL, order_stream=MAINNET_ORDER_STREAM_URL,
        testnet_ws=DEMO_WS_URL, testnet_rest=MAINNET_REST_URL,
        testnet_order_stream=DEMO_ORDER_STREAM_URL,
    )

    # Names of the environment variables holding the API key, its secret and the
    # passphrase chosen when the key was made (trading only).
    api_key_env: str = setting("OKX_API_KEY", reload="restart")
    api_secret_env: str = setting("OKX_API_SECRET", reload="restart")
    passphrase_env: str = setting("OKX_API_PASSPHRASE", reload="restart")
    # Order book levels per side delivered to the engine: 1 is the best bid and ask alone
    # (bbo-tbt), 2 to 5 come from books5 (snapshots), more from books (a snapshot, then
    # updates checked by seqId and checksum). A changed depth restarts the feed.
    depth: int = setting(20, ge=1, le=MAX_DEPTH)
    # Channels (symbols) per WebSocket connection; more symbols open more connections.
    # The books channel (depth above 5) takes at most 30 per connection, as OKX advises.
    max_channels_per_connection: int = setting(100, ge=1, le=MAX_CHANNELS_PER_CONNECTION)

    def credential_variables(self) -> tuple[str, ...]:
        return (self.api_key_env, self.api_secret_env, self.passphrase_env)

    def resolved_ws_url(self) -> str:
        """``ws_url`` as written (OKX's is a whole endpoint, path included), or the
        default for ``testnet``."""
        if self.ws_url:
            return self.ws_url
        return self.endpoints.testnet_ws if self.testnet else self.endpoints.ws
