"""Binance spot REST: request signing, clock offset, weight budget and error translation.

Facts (exchange-protocols.md sections 1.2 and 1.3, from Binance's ``rest-api.md``):

* A signed request carries ``timestamp`` (ms) and ``recvWindow`` (default 5000, at most
  60000) in its query string, then ``signature`` = hex HMAC-SHA256(secret, query string),
  plus the ``X-MBX-APIKEY`` header. Binance rejects it (``-1021``) when ``timestamp >=
  server + 1 s`` or ``server - timestamp > recvWindow``, so signed requests use the local
  clock plus the offset measured by :meth:`BinanceRest.sync_time`.
* ``REQUEST_WEIGHT`` is 6000/min per IP; every endpoint has a weight (:data:`WEIGHTS`;
  the depth snapshot's grows with its ``limit``, :func:`depth_weight`) and every response
  carries ``X-MBX-USED-WEIGHT-1M``, the weight used in the current minute.
* 429 (limit hit) and 418 (IP banned for ignoring 429s, 2 min to 3 days) carry
  ``Retry-After`` (seconds).
* 5xx and ``-1007`` mean the outcome is unknown (an order may have been placed).
* Errors come as ``{"code": -1121, "msg": "Invalid symbol."}``.

Pacing: before sending, a request takes its weight from an
:class:`arbotd.exchange.RequestBudget` (``budget_fraction`` of the limit), which waits
for the next minute when the budget is spent; the budget follows what Binance reports
in ``X-MBX-USED-WEIGHT-1M``, and a 429/418 blocks every request until ``Retry-After`` has
passed, so the daemon never keeps knocking while it is being told to stop.

The API secret is never logged nor put in an exception message; the API key is only sent
in its header.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd.exchange import PauseRule, RequestBudget, RestClient, query_string
from arbotd_binance.config import MAINNET_REST_URL, MAX_RECV_WINDOW_MS, TESTNET_REST_URL

__all__ = [
    "MAINNET_REST_URL",
    "REQUEST_WEIGHT_LIMIT",
    "TESTNET_REST_URL",
    "WEIGHTS",
    "BinanceNotSent",
    "BinanceRejection",
    "BinanceRest",
    "depth_weight",
    "sign",
    "weight_budget",
]

EXCHANGE = "binance"
# REQUEST_WEIGHT per minute per IP (exchange-protocols.md 1.3, CHANGELOG 2023-08-25).
REQUEST_WEIGHT_LIMIT = 6000
WEIGHT_WINDOW_SECONDS = 60.0
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = MAX_RECV_WINDOW_MS
# Request weights (exchange-protocols.md 1.2). myTrades with an orderId weighs 5
# (Binance rest-api.md "Account trade list"; not in the research table).
WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/account"): 20,
    ("POST", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/myTrades"): 5,
}
# GET /api/v3/depth weighs by its limit: (largest limit, weight), smallest first
# (exchange-protocols.md 1.2).
DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
# Both carry Retry-After; without it, a 429 is about the current minute, and a ban lasts
# at least 2 minutes (exchange-protocols.md 1.3).
PAUSES = {
    429: PauseRule("request rate limit hit", 60.0),
    418: PauseRule("IP banned for ignoring rate limits", 120.0),
}

INVALID_TIMESTAMP = -1021
# "Timeout waiting for response from backend server. Send status unknown."
UNKNOWN_OUTCOME = -1007


def depth_weight(limit: int) -> int:
    """The request weight of ``GET /api/v3/depth`` with ``limit`` levels a side."""
    for largest, weight in DEPTH_WEIGHTS:
        if limit <= largest:
            return weight
    raise ValueError(f"Binance answers at most {DEPTH_WEIGHTS[-1][0]} levels, not {limit}")


def weight_budget(
    fraction: float = 0.8, *, limit: int = REQUEST_WEIGHT_LIMIT,
    clock: Callable[[], float] = time.time,
) -> RequestBudget:
    """The request weight budget of one IP: ``fraction`` of ``limit`` per minute. Every
    client of the same IP (the account's, the feed's snapshots) should share one."""
    return RequestBudget("binance request weight", limit, WEIGHT_WINDOW_SECONDS,
                         fraction=fraction, clock=clock)


def sign(secret: str, query: str) -> str:
    """Binance's signature of ``query`` (the query string, then the body): hex
    HMAC-SHA256 keyed with the API secret."""
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


class BinanceRejection(PermanentExchangeError):
    """Binance refused a request (HTTP 4xx with ``{"code", "msg"}``): ``code`` and ``msg``
    are Binance's, so that callers can tell a duplicate order from a rejected one."""

    def __init__(self, message: str, *, status: int, code: int | None, msg: str) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        super().__init__(EXCHANGE, message)


class BinanceNotSent(TemporaryExchangeError):
    """A temporary failure that certainly left the request unprocessed (429/418, -1021, a
    refused connection, a pause still running): an order was not placed."""


class BinanceRest(RestClient):
    """An async Binance spot REST client. Use as ``async with BinanceRest(...) as rest``
    or call :meth:`aclose`.

    ``budget_fraction`` of ``weight_limit`` is the share of the per-minute request weight
    the daemon allows itself (or pass a ready ``budget``). A request that would have to
    wait more than ``max_wait`` seconds for a ban to pass fails at once with
    :class:`arbotd.TemporaryExchangeError` (``retry_after`` set) instead of waiting.
    """

    exchange = EXCHANGE
    venue = "Binance"
    not_sent = BinanceNotSent

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
        budget: RequestBudget | None = None,
        max_wait: float = 30.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 0 < recv_window <= MAX_RECV_WINDOW:
            raise ValueError(f"recv_window must be in (0, {MAX_RECV_WINDOW}] ms")
        if not 0 < budget_fraction <= 1:
            raise ValueError("budget_fraction must be in (0, 1]")
        super().__init__(base_url, credentials=(api_key, api_secret), pauses=PAUSES,
                         timeout=timeout, clock=clock, transport=transport)
        self._api_key = api_key
        self._api_secret = api_secret
        self.recv_window = recv_window
        self.max_wait = max_wait
        # Binance's weight minutes follow its clock; the local wall clock is close enough
        # for the windows to line up, and X-MBX-USED-WEIGHT-1M corrects the count.
        self.budget = budget if budget is not None else weight_budget(
            budget_fraction, limit=weight_limit, clock=clock)
        # The last X-MBX-USED-WEIGHT-1M seen, None before the first response.
        self.used_weight: int | None = None

    def budget_ok(self, weight: int = 1) -> bool:
        """Whether a request of ``weight`` may go now without waiting: the weight used this
        minute stays within the budget and no 429/418 pause is running."""
        return self.budget.available(weight)

    async def server_time(self) -> int:
        """Binance's clock (``GET /api/v3/time``), in milliseconds."""
        data = await self.public("GET", "/api/v3/time")
        try:
            return int(data["serverTime"])
        except (KeyError, TypeError, ValueError) as err:
            raise TemporaryExchangeError(EXCHANGE, "malformed /api/v3/time answer") from err

    # -- requests ------------------------------------------------------------------------

    async def public(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, *,
        weight: int | None = None,
    ) -> Any:
        """An unsigned (market data) request; ``weight`` when it is not the path's
        usual one (:data:`WEIGHTS`)."""
        return await self._request(method, path, query=query_string(params), weight=weight)

    async def depth(self, symbol: str, limit: int) -> Any:
        """The order book snapshot of ``symbol`` (Binance form), ``limit`` levels a side
        (``GET /api/v3/depth``): ``{"lastUpdateId", "bids", "asks"}`` as Binance sent it."""
        return await self.public("GET", "/api/v3/depth", {"symbol": symbol, "limit": limit},
                                 weight=depth_weight(limit))

    async def signed(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        """A signed (USER_DATA/TRADE) request; parameters go in the query string.

        Signed before the budget's wait, as the account expects: it lets a lost
        placement's ``recvWindow`` run from just before this call, which a timestamp
        taken after a wait would outlive."""
        if not self.has_credentials:
            raise PermanentExchangeError(EXCHANGE, "API key and secret are not configured")
        assert self._api_key is not None and self._api_secret is not None
        query_params = {k: v for k, v in (params or {}).items() if v is not None}
        query_params["recvWindow"] = self.recv_window
        query_params["timestamp"] = self.timestamp_ms()
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
        weight: int | None = None,
    ) -> Any:
        where = f"{method} {path}"
        paused = self.budget.blocked_for()
        if paused > self.max_wait:
            raise BinanceNotSent(
                EXCHANGE, f"{where}: not sent, Binance asked for a pause of {paused:.0f} s "
                "more (429/418)", retry_after=paused,
            )
        response = await self.send(
            method, path, budgets=[self.budget],
            cost=weight if weight is not None else WEIGHTS.get((method, path), 1),
            query=query, headers=headers, where=where,
        )
        if response.status_code < 400:
            try:
                return response.json()
            except ValueError as err:
                raise self.malformed(where, response) from err
        await self._raise_for(where, response, signed)

    def observe(self, path: str, response: httpx.Response) -> None:
        value = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if value is None:
            return
        try:
            used = int(value)
        except ValueError:
            return
        self.used_weight = used
        self.budget.observe_used(used)

    def describe(self, response: httpx.Response) -> str:
        code, msg = _error_of(response)
        return f" (code {code}: {msg})" if code is not None else ""

    async def _raise_for(self, where: str, response: httpx.Response, signed: bool) -> None:
        status = response.status_code
        code, msg = _error_of(response)
        detail = self.describe(response)
        if code == UNKNOWN_OUTCOME:
            raise TemporaryExchangeError(EXCHANGE, f"{where}: HTTP {status}, outcome unknown"
                                                   f"{detail}")
        if code == INVALID_TIMESTAMP and signed:
            # Only signed requests carry a timestamp; re-syncing on an unsigned one could
            # loop (the re-sync's own request answering -1021).
            offset = await self.sync_time()
            raise BinanceNotSent(
                EXCHANGE,
                f"{where}: timestamp outside recvWindow{detail}; clock re-synced "
                f"(offset {offset} ms)",
            )
        raise BinanceRejection(f"{where}: HTTP {status}{detail}", status=status, code=code,
                               msg=msg)


def _error_of(response: httpx.Response) -> tuple[int | None, str]:
    """Binance's ``{"code", "msg"}`` of an error answer, ``(None, "")`` without one."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    return body.get("code"), str(body.get("msg", ""))
