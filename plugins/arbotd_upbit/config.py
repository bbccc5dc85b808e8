"""The ``[exchanges.upbit]`` table.

Fees are fractions (``0.0005`` = 0.05 %, Upbit's KRW market fee, maker = taker,
bitget-upbit-protocols.md section 3); ``premium_baseline`` is a percent: Upbit's usual
premium over the other venues (the "kimchi premium"), fixed or followed as a rolling
median as the simulated KRW venue does (``[simulation.krw]``).
"""

from __future__ import annotations

import attrs

from arbotd import setting
from arbotd.exchange.settings import check_rest_url, check_ws_url

__all__ = [
    "DEPTH_LEVELS",
    "MAINNET_ORDER_STREAM_URL",
    "MAINNET_REST_URL",
    "MAINNET_WS_URL",
    "UpbitConfig",
]

# Public and private WebSocket endpoints and the REST base (bitget-upbit-protocols.md 0).
MAINNET_WS_URL = "wss://api.upbit.com/websocket/v1"
MAINNET_ORDER_STREAM_URL = "wss://api.upbit.com/websocket/v1/private"
MAINNET_REST_URL = "https://api.upbit.com"
# The level counts of the orderbook type's ``KRW-BTC.N`` codes (2.1); any other N is
# served as 30.
DEPTH_LEVELS = (1, 5, 15, 30)


def _check_premium_mode(value: object) -> str | None:
    return None if value in ("fixed", "rolling") else 'expected "fixed" or "rolling"'


@attrs.frozen
class UpbitConfig:
    """``[exchanges.upbit]``: Upbit (Korea), KRW markets."""

    enabled: bool = setting(False, api=True)
    # Public WebSocket endpoint; "" means wss://api.upbit.com/websocket/v1.
    ws_url: str = setting("", check=check_ws_url, reload="restart")
    # REST base URL (without /v1); "" means https://api.upbit.com.
    rest_url: str = setting("", check=check_rest_url, reload="restart")
    # KRW market taker fee, a fraction.
    taker_fee: float = setting(0.0005, ge=0, lt=0.1)
    # Upbit's usual premium over the other venues, percent. With premium_mode =
    # "rolling" it is where the rolling median starts.
    premium_baseline: float = setting(0.0, ge=-100, le=100)
    premium_mode: str = setting("fixed", check=_check_premium_mode)
    premium_window_seconds: float = setting(1_800.0, ge=10, le=30 * 86_400)
    # A KRW-USDT quote older than this makes Upbit's prices unusable.
    rate_max_age_seconds: float = setting(5.0, gt=0, le=3600)
    # Names of the environment variables holding the access key and secret key.
    access_key_env: str = setting("UPBIT_ACCESS_KEY", reload="restart")
    secret_key_env: str = setting("UPBIT_SECRET_KEY", reload="restart")
    # A connection that brings no message (not even {"status":"UP"}) for this long is
    # marked unusable and reopened.
    stale_after_seconds: float = setting(15.0, gt=0, le=3600)
    # Order book levels per side delivered to the engine: 1, 5, 15 or 30 (Upbit's
    # orderbook levels; another depth is served from the next larger one).
    depth: int = setting(1, ge=1, le=30)
    # Market codes per WebSocket connection (Upbit documents no cap).
    max_codes_per_connection: int = setting(100, ge=1, le=1000)
    # A market buy (a hedge, an unwind) goes out as an IOC limit buy at the ask level that
    # covers its quantity raised by this percent: Upbit's own market buys are sized in KRW
    # and can buy more than asked.
    market_buy_margin_percent: float = setting(1.0, ge=0, le=20)
    # Share of each Upbit request group's limit the daemon allows itself.
    request_budget_fraction: float = setting(0.8, gt=0, le=1)
    # Learn of fills from the private myOrder stream (live mode), REST answering only
    # when it is down or silent.
    order_stream: bool = setting(True, reload="restart")
    # The private WebSocket endpoint; "" means wss://api.upbit.com/websocket/v1/private
    # while rest_url is the default, and no stream when rest_url points elsewhere.
    order_stream_url: str = setting("", check=check_ws_url, reload="restart")

    def resolved_ws_url(self) -> str:
        return self.ws_url or MAINNET_WS_URL

    def resolved_rest_url(self) -> str:
        return (self.rest_url or MAINNET_REST_URL).rstrip("/")

    def resolved_order_stream_url(self) -> str | None:
        """Where the private myOrder stream is, ``None`` for none (see ``order_stream_url``)."""
        if not self.order_stream:
            return None
        if self.order_stream_url:
            return self.order_stream_url
        if self.rest_url:
            return None
        return MAINNET_ORDER_STREAM_URL

    def levels(self) -> int:
        """The orderbook level count that carries ``depth`` levels."""
        return next(n for n in DEPTH_LEVELS if n >= self.depth)
