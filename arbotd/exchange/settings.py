"""What every exchange plugin's ``[exchanges.<name>]`` table has in common.

:class:`VenueConfig` carries the keys whose meaning and default are the same on every
venue (switching the venue on, testnet, the URL overrides, fees, stale connections, the
request budget, the private order stream); a venue's config class subclasses it, adds its
own keys (its key variables, depth and per-connection bounds, receive window...) and
names its endpoints in :attr:`VenueConfig.endpoints`. :func:`check_ws_url` and
:func:`check_rest_url` make a typo in a base URL a configuration error naming the key,
not a connection failure at run time.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from arbotd._config import setting

__all__ = ["Endpoints", "VenueConfig", "check_rest_url", "check_ws_url"]


def check_ws_url(url: Any) -> str | None:
    """For ``setting(check=...)``: ``""`` (the exchange's default) or a ws(s):// URL."""
    if url and not str(url).startswith(("wss://", "ws://")):
        return f"expected a ws:// or wss:// URL (or \"\" for the default), got {url!r}"
    return None


def check_rest_url(url: Any) -> str | None:
    """For ``setting(check=...)``: ``""`` (the exchange's default) or an http(s):// URL."""
    if url and not str(url).startswith(("https://", "http://")):
        return f"expected an http:// or https:// URL (or \"\" for the default), got {url!r}"
    return None


@attrs.frozen
class Endpoints:
    """Where a venue is when its table leaves a URL empty: its production endpoints and
    its testnet's (a venue whose testnet shares a host names the same URL twice)."""

    ws: str
    rest: str
    order_stream: str
    testnet_ws: str
    testnet_rest: str
    testnet_order_stream: str


@attrs.frozen
class VenueConfig:
    """The keys every ``[exchanges.<name>]`` table has. A venue subclasses it with
    ``@attrs.frozen``, sets :attr:`endpoints`, adds its own keys and implements
    :meth:`credential_variables`."""

    #: The venue's default endpoints (a subclass sets them).
    endpoints: ClassVar[Endpoints]

    # Trading and watching it may be switched through the API; everything that says
    # where the daemon connects and which secrets it reads is read at start only.
    enabled: bool = setting(False, api=True)
    # Use the venue's testnet (or demo trading): its endpoints instead of production's.
    testnet: bool = setting(False, reload="restart")
    # WebSocket URL of the market data; "" means the venue's (the testnet's when
    # testnet = true).
    ws_url: str = setting("", check=check_ws_url, reload="restart")
    # REST base URL; "" means the venue's (the testnet's when testnet = true).
    rest_url: str = setting("", check=check_rest_url, reload="restart")
    taker_fee: float = setting(0.001, ge=0, lt=0.1)
    premium_baseline: float = setting(0.0, ge=-100, le=100)
    # A connection that brings no message for this long is marked unusable and reopened.
    stale_after_seconds: float = setting(10.0, gt=0, le=3600)
    # Share of the venue's request limits the daemon allows itself, so that it slows
    # down before the venue answers "too many requests" (or bans the IP).
    request_budget_fraction: float = setting(0.8, gt=0, le=1)
    # Learn of fills from the account's private order stream (live mode), REST
    # answering only when the stream is down or silent.
    order_stream: bool = setting(True, reload="restart")
    # The private stream's URL; "" means the venue's (the testnet's with testnet = true)
    # while rest_url is the default, and no stream when rest_url points elsewhere.
    order_stream_url: str = setting("", check=check_ws_url, reload="restart")

    def credential_variables(self) -> tuple[str, ...]:
        """The names of the environment variables holding the account's secrets (key,
        secret, and whatever else the venue signs with), in the order the venue's
        clients take them."""
        raise NotImplementedError

    def resolved_ws_url(self) -> str:
        """``ws_url`` without a trailing slash, or the default for ``testnet``."""
        if self.ws_url:
            return self.ws_url.rstrip("/")
        return self.endpoints.testnet_ws if self.testnet else self.endpoints.ws

    def resolved_rest_url(self) -> str:
        """``rest_url`` without a trailing slash, or the default for ``testnet``."""
        if self.rest_url:
            return self.rest_url.rstrip("/")
        return self.endpoints.testnet_rest if self.testnet else self.endpoints.rest

    def resolved_order_stream_url(self) -> str | None:
        """Where the private order stream is, ``None`` for none: ``order_stream`` is off,
        or ``rest_url`` names another server (a proxy, a fake) and ``order_stream_url``
        does not say where that server's stream is."""
        if not self.order_stream:
            return None
        if self.order_stream_url:
            return self.order_stream_url
        if self.rest_url:
            return None
        return self.endpoints.testnet_order_stream if self.testnet else self.endpoints.order_stream
