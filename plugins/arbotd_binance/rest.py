"""Binance spot REST: request signing, clock offset, weight budget and error translation.

Facts (exchange-protocols.md sections 1.2 and 1.3, from Binance's ``rest-api.md``):

* A signed request carries ``timestamp`` (ms) and ``recvWindow`` (default 5000, at most
  60000) in its query string, then ``signature`` = hex HMAC-SHA256(secret, query string),
  plus the ``X-MBX-APIKEY`` header. Binance rejects it (``-1021``) when ``timestamp >=
  server + 1 s`` or ``server - timestamp > recvWindow``, so signed requests use the local
  clock plus the offset measured by :meth:`BinanceRest.sync_time`.
* Every response carries ``X-MBX-USED-WEIGHT-1M``; ``REQUEST_WEIGHT`` is 6000/min per IP.
* 429 (limit hit) and 418 (IP banned for ignoring 429s) carry ``Retry-After`` (seconds).
* Errors come as ``{"code": -1121, "msg": "Invalid symbol."}``.

The API secret is never logged nor put in an exception message; the API key is only sent
in its header.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx

from arbotd._errors import PermanentExchangeError, TemporaryExchangeError

__all__ = [
    "MAINNET_REST_URL",
    "REQUEST_WEIGHT_LIMIT",
    "TESTNET_REST_URL",
    "BinanceRest",
    "sign",
]

log = logging.getLogger(__name__)

EXCHANGE = "binance"
MAINNET_REST_URL = "https://api.binance.com"
TESTNET_REST_URL = "https://testnet.binance.vision"
# REQUEST_WEIGHT per minute per IP (exchange-protocols.md 1.3, CHANGELOG 2023-08-25).
REQUEST_WEIGHT_LIMIT = 6000
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000
# Request weights (exchange-protocols.md 1.2).
WEIGHTS = {"/api/v3/time": 1, "/api/v3/account": 20}

INVALID_TIMESTAMP = -1021


def sign(secret: str, query: str) -> str:
    """Binance's signature of ``query`` (the query string, then the body): hex
    HMAC-SHA256 keyed with the API secret."""
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class BinanceRest:
    """An async Binance spot REST client. Use as ``async with BinanceRest(...) as rest``
    or call :meth:`aclose`.

    ``budget_fraction`` of ``weight_limit`` is the share of the per-minute request weight
    the daemon allows itself, so that it slows down before Binance answers 429 (and bans
    with 418 after repeated 429s).
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        base_url: str = MAINNET_REST_URL,
        *,
        recv_window: int = DEFAULT_RECV_WINDOW,
        timeout: float = 10.0,
        weight_limit: int = REQUEST_WEIGHT_LIMIT,
        budget_fraction: float = 0.8,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 0 < recv_window <= MAX_RECV_WINDOW:
            raise ValueError(f"recv_window must be in (0, {MAX_RECV_WINDOW}] ms")
        if not 0 < budget_fraction <= 1:
            raise ValueError("budget_fraction must be in (0, 1]")
        self._api_key = api_key
        self._api_secret = api_secret
        self.base_url = base_url.rstrip("/")
        self.recv_window = recv_window
        self.weight_limit = weight_limit
        self.budget_fraction = budget_fraction
        self._clock = clock
        # Server time minus local time, in milliseconds.
        self.offset_ms = 0
        # The last X-MBX-USED-WEIGHT-1M seen, None before the first response.
        self.used_weight: int | None = None
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:  # never show the key or secret
        return f"BinanceRest(base_url={self.base_url!r}, offset_ms={self.offset_ms})"

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- weight budget -----------------------------------------------------------------

    def budget_ok(self, weight: int = 1) -> bool:
        """Whether a request of ``weight`` keeps the used weight of this minute at or below
        ``budget_fraction`` of ``weight_limit``."""
        used = self.used_weight or 0
        return used + weight <= self.budget_fraction * self.weight_limit

    # -- clock ---------------------------------------------------------------------------

    def timestamp(self) -> int:
        """Local time corrected by the measured offset, in milliseconds."""
        return int(self._clock() * 1000) + self.offset_ms

    async def server_time(self) -> int:
        """Binance's clock (``GET /api/v3/time``), in milliseconds."""
        data = await self._request("GET", "/api/v3/time")
        try:
            return int(data["serverTime"])
        except (KeyError, TypeError, ValueError) as err:
            raise TemporaryExchangeError(EXCHANGE, "malformed /api/v3/time answer") from err

    async def sync_time(self) -> int:
        """Measure the offset between Binance's clock and ours (server time minus the
        midpoint of the round trip) and return it in milliseconds."""
        before = self._clock()
        server = await self.server_time()
        after = self._clock()
        self.offset_ms = server - int((before + after) / 2 * 1000)
        log.debug("binance clock offset %d ms", self.offset_ms)
        return self.offset_ms

    # -- requests ------------------------------------------------------------------------

    async def signed(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        """A signed (USER_DATA/TRADE) request; parameters go in the query string."""
        if not self._api_key or not self._api_secret:
            raise PermanentExchangeError(EXCHANGE, "API key and secret are not configured")
        query_params = {k: v for k, v in (params or {}).items() if v is not None}
        query_params["recvWindow"] = self.recv_window
        query_params["timestamp"] = self.timestamp()
        query = urlencode(query_params)
        query = f"{query}&signature={sign(self._api_secret, query)}"
        return await self._request(
            method, path, query=query, headers={"X-MBX-APIKEY": self._api_key}, signed=True
        )

    async def account(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Balances (``GET /api/v3/account``): asset -> (free, locked)."""
        data = await self.signed("GET", "/api/v3/account")
        try:
            return {
                b["asset"]: (Decimal(b["free"]), Decimal(b["locked"]))
                for b in data["balances"]
            }
        except (KeyError, TypeError, ArithmeticError) as err:
            raise TemporaryExchangeError(EXCHANGE, "malformed /api/v3/account answer") from err

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        signed: bool = False,
    ) -> Any:
        url = f"{path}?{query}" if query else path
        try:
            response = await self._client.request(method, url, headers=headers)
        except httpx.TimeoutException as err:
            raise TemporaryExchangeError(EXCHANGE, f"{method} {path}: timed out") from err
        except httpx.TransportError as err:
            raise TemporaryExchangeError(
                EXCHANGE, f"{method} {path}: connection failed ({type(err).__name__})"
            ) from err
        self._track_weight(response)
        log.debug("binance %s %s -> %d", method, path, response.status_code)
        if response.status_code < 400:
            try:
                return response.json()
            except ValueError as err:
                raise TemporaryExchangeError(
                    EXCHANGE, f"{method} {path}: answer is not JSON"
                ) from err
        await self._raise_for(method, path, response, signed)

    def _track_weight(self, response: httpx.Response) -> None:
        value = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if value is not None:
            with contextlib.suppress(ValueError):
                self.used_weight = int(value)

    async def _raise_for(
        self, method: str, path: str, response: httpx.Response, signed: bool
    ) -> None:
        status = response.status_code
        where = f"{method} {path}"
        code: int | None = None
        msg = ""
        try:
            body = response.json()
            if isinstance(body, dict):
                code = body.get("code")
                msg = str(body.get("msg", ""))
        except ValueError:
            pass
        detail = f" (code {code}: {msg})" if code is not None else ""
        if status == 418:
            retry_after = _retry_after(response)
            log.warning("binance banned this IP (HTTP 418), retry after %s s", retry_after)
            raise TemporaryExchangeError(
                EXCHANGE,
                f"{where}: HTTP 418, IP banned for ignoring rate limits{detail}",
                retry_after=retry_after,
            )
        if status == 429:
            raise TemporaryExchangeError(
                EXCHANGE,
                f"{where}: HTTP 429, request rate limit hit{detail}",
                retry_after=_retry_after(response),
            )
        if status >= 500:
            raise TemporaryExchangeError(
                EXCHANGE, f"{where}: HTTP {status}, outcome unknown{detail}"
            )
        if code == INVALID_TIMESTAMP and signed:
            # Only signed requests carry a timestamp; re-syncing on an unsigned one could
            # loop (the re-sync's own request answering -1021).
            offset = await self.sync_time()
            raise TemporaryExchangeError(
                EXCHANGE,
                f"{where}: timestamp outside recvWindow{detail}; clock re-synced "
                f"(offset {offset} ms)",
            )
        raise PermanentExchangeError(EXCHANGE, f"{where}: HTTP {status}{detail}")
