"""The ``[exchanges.upbit]`` table.

Fees are fractions (``0.0005`` = 0.05 %, Upbit's KRW market fee, maker = taker,
bitget-upbit-protocols.md section 3); ``premium_baseline`` is a percent: Upbit's usual
premium over the other venues (the "kimchi premium"), fixed or followed as a rolling
median as the simulated KRW venue does (``[simulation.krw]``).

Upbit has no testnet, so its table has no ``testnet`` key: :class:`UpbitConfig` leaves
out that key of :class:`~arbotd.exchange.VenueConfig` (a ``testnet = true`` that still
reached production would trade real money).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from arbotd import setting
from arbotd.exchange.settings import Endpoints, VenueConfig

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


def _without_testnet(cls: type, fields: list[attrs.Attribute]) -> list[attrs.Attribute]:
    """The table's keys: the shared ones but ``testnet`` (Upbit has none)."""
    return [f for f in fields if f.name != "testnet"]


@attrs.frozen(field_transformer=_without_testnet)
class UpbitConfig(VenueConfig):
    """``[exchanges.upbit]``: Upbit (Korea), KRW markets. ``ws_url`` defaults to
    wss://api.upbit.com/websocket/v1, ``rest_url`` (without /v1) to
    https://api.upbit.com, the private myOrder stream to
    wss://api.upbit.com/websocket/v1/private."""

    # No testnet: production's endpoints, always (see the module's docstring).
    endpoints = Endpoints(
        ws=MAINNET_WS_URL, rest=MAINNET_REST_URL, order_stream=MAINNET_ORDER_STREAM_URL,
        testnet_ws=MAINNET_WS_URL, testnet_rest=MAINNET_REST_URL,
        testnet_order_stream=MAINNET_ORDER_STREAM_URL,
    )
    testnet: ClassVar[bool] = False

    # KRW market taker fee, a fraction.
    taker_fee: float = setting(0.0005, ge=0, lt=0.1)
    # With premium_mode = "rolling" premium_baseline is where the rolling median starts.
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

    def credential_variables(self) -> tuple[str, ...]:
        return (self.access_key_env, self.secret_key_env)

    def resolved_ws_url(self) -> str:
        """``ws_url`` as written (Upbit's is a whole endpoint, path included), or
        Upbit's."""
        return self.ws_url or self.endpoints.ws

    def levels(self) -> int:
        """The orderbook level count that carries ``depth`` levels."""
        return next(n for n in DEPTH_LEVELS if n >= self.depth)


