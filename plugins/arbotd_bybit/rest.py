"""Bybit v5 REST: request signing, clock offset, request budgets and error translation.

Facts (exchange-protocols.md sections 2.2 and 2.3, from Bybit's ``docs/v5/guide.mdx``,
``rate-limit.mdx`` and ``error.mdx``):

* A signed request carries ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP`` (ms),
  ``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN`` = lowercase hex HMAC-SHA256(secret,
  timestamp + key + recvWindow + payload), the payload being the query string of a GET
  and the raw JSON body of a POST. Bybit accepts it while ``server - recvWindow <=
  timestamp < server + 1000``; outside, ``retCode 10002``, and the client measures the
  clock offset again (``GET /v5/market/time``).
* Every answer is HTTP 200 with ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``
  unless the request never reached the API: ``retCode != 0`` is an error.
* Limits: 600 requests per 5 s per IP (past it, HTTP 403 and a wait of at least 10
  minutes), and per-UID limits per endpoint and second, reported in every private answer
  as ``X-Bapi-Limit`` / ``X-Bapi-Limit-Status`` (remaining) /
  ``X-Bapi-Limit-Reset-Timestamp``; past them, ``retCode 10006``. HTTP 429 is Bybit's
  system protection: retry later. Both are paced through :class:`RequestBudget` s, which
  make the daemon wait before a limit is reached.

The API secret is never logged nor put in an exception message; the API key is only sent
in its header.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import httpx
import orjson

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd.exchange import PauseRule, RequestBudget, RestClient, query_string

__all__ = [
    "AUTH_CODES",
    "IP_LIMIT",
    "IP_WINDOW",
    "UID_LIMITS",
    "BybitRest",
    "BybitRetCodeError",
    "sign",
]

log = logging.getLogger(__name__)

EXCHANGE = "bybit"
# 600 requests per 5 s per IP (exchange-protocols.md 2.3).
IP_LIMIT = 600
IP_WINDOW = 5.0
# Past the IP limit Bybit answers HTTP 403 and wants at least 10 minutes of quiet; 429 is
# its system protection. It documents no Retry-After: a second by default (2.3).
IP_BAN_SECONDS = 600.0
PAUSES = {
    429: PauseRule("Bybit's system protection; retry later", 1.0),
    403: PauseRule("access too frequent (IP limit passed) or this IP is not allowed",
                   IP_BAN_SECONDS),
}
# Per-UID requests per second of the endpoints used here (exchange-protocols.md 2.3); the
# answers' X-Bapi-Limit overrides them.
UID_LIMITS: dict[str, int] = {
    "/v5/order/create": 20,
    "/v5/order/cancel": 20,
    "/v5/order/realtime": 50,
    "/v5/order/history": 50,
    "/v5/execution/list": 50,
    "/v5/account/wallet-balance": 50,
    "/v5/account/fee-rate": 5,
}
UID_WINDOW = 1.0

# retCodes (exchange-protocols.md 2.3; docs/v5/error.mdx).
INVALID_TIMESTAMP = 10002
# Too many visits (per UID) and the IP rate limit: wait and retry.
RATE_LIMITED = frozenset({10006, 10018})
# Internal system error: the outcome of the request is unknown.
SERVER_ERRORS = frozenset({10016})
# Bad key, bad signature, no permission, not logged in, banned, IP not bound to the key:
# nothing will work until the operator fixes the key.
AUTH_CODES = frozenset({10003, 10004, 10005, 10007, 10008, 10009, 10010})


def sign(secret: str, payload: str) -> str:
    """Bybit's v5 signature of ``payload`` (timestamp + key + recvWindow + query string or
    body): lowercase hex HMAC-SHA256 keyed with the API secret."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class BybitRetCodeError(PermanentExchangeError):
    """Bybit refused a request with a ``retCode`` that retrying will not change; ``code``
    lets the caller tell a duplicate order id or an unknown order from a rejection."""

    def __init__(self, where: str, code: int, message: str) -> None:
        self.code = code
        self.ret_msg = message
        super().__init__(EXCHANGE, f"{where}: retCode {code}: {message}")


class BybitRest(RestClient):
    """An async Bybit v5 REST client. Use as ``async with BybitRest(...) as rest`` or call
    :meth:`aclose`.

    ``budget_fraction`` is the share of each limit (per IP, and per UID and endpoint) the
    daemon allows itself.
    """

    exchange = EXCHANGE
    venue = "Bybit"

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        base_url: str = "https://api.bybit.com",
        *,
        recv_window: int = 5000,
        timeout: float = 10.0,
        budget_fraction: float = 0.8,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if recv_window <= 0:
            raise ValueError("recv_window must be positive (ms)")
        super().__init__(base_url, credentials=(api_key, api_secret), pauses=PAUSES,
                         timeout=timeout, clock=clock, transport=transport)
        self._api_key = api_key
        self._api_secret = api_secret
        self.recv_window = recv_window
        self.budget_fraction = budget_fraction
        self.ip_budget = RequestBudget(
            "bybit requests per IP", IP_LIMIT, IP_WINDOW, fraction=budget_fraction
        )
        self.uid_budgets = {
            path: RequestBudget(f"bybit {path}", limit, UID_WINDOW, fraction=budget_fraction)
            for path, limit in UID_LIMITS.items()
        }

    async def server_time(self) -> int:
        """Bybit's clock (``GET /v5/market/time``), in milliseconds."""
        result = await self.public("/v5/market/time")
        try:
            return int(result["timeNano"]) // 1_000_000
        except (KeyError, TypeError, ValueError) as err:
            raise TemporaryExchangeError(EXCHANGE, "malformed /v5/market/time answer") from err

    # -- requests ------------------------------------------------------------------------

    async def public(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """An unsigned GET (market data); returns ``result``."""
        return await self._request("GET", path, query=query_string(params))

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """A signed GET; parameters go in the query string, which is what is signed."""
        query = query_string(params)
        return await self._request("GET", path, query=query, payload=query, signed=True)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """A signed POST of a JSON body; the exact bytes sent are what is signed."""
        text = orjson.dumps(dict(body)).decode()
        return await self._request("POST", path, body=text, payload=text, signed=True)

    def _signed_headers(self, payload: str) -> dict[str, str]:
        if not self._api_key or not self._api_secret:
            raise PermanentExchangeError(EXCHANGE, "API key and secret are not configured")
        timestamp = str(self.timestamp_ms())
        recv_window = str(self.recv_window)
        signature = sign(self._api_secret, timestamp + self._api_key + recv_window + payload)
        return {
            "X-BAPI-API-KEY": self._api_key,
            "X-BAPI-TIMESTAMP": timestamp,
            "X-BAPI-RECV-WINDOW": recv_window,
            "X-BAPI-SIGN": signature,
        }

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: str | None = None,
        payload: str = "",
        signed: bool = False,
    ) -> Any:
        where = f"{method} {path}"
        if signed and not self.has_credentials:
            raise PermanentExchangeError(EXCHANGE, "API key and secret are not configured")
        uid_budget = self.uid_budgets.get(path) if signed else None
        response = await self.send(
            method, path, query=query, body=body, where=where,
            budgets=[self.ip_budget] + ([uid_budget] if uid_budget is not None else []),
            headers={"Content-Type": "application/json"} if body is not None else None,
            # Signed after the budgets' waits, with the time of sending.
            sign=partial(self._signed_headers, payload) if signed else None,
        )
        try:
            answer = response.json()
            code = int(answer["retCode"])
            message = self._redact(str(answer.get("retMsg", "")))
        except (ValueError, KeyError, TypeError) as err:
            raise self.malformed(where, response) from err
        if code == 0:
            return answer.get("result")
        await self._raise_for(where, code, message, signed, uid_budget, response.headers)

    def _redact(self, text: str) -> str:
        """Bybit echoes the signed string, API key included, in some messages (10004's
        ``origin_string``): keep the key out of errors and logs."""
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "<api key>")
        return text

    def observe(self, path: str, response: httpx.Response) -> None:
        """Trust Bybit's count of the endpoint's limit over ours; when nothing is left,
        wait until the reset it announces."""
        budget = self.uid_budgets.get(path)
        if budget is None:
            return
        headers = response.headers
        try:
            limit = headers.get("X-Bapi-Limit")
            if limit is not None and float(limit) > 0:
                # Never below one request's worth of allowance (acquire would refuse).
                budget.limit = max(float(limit), 1.0 / budget.fraction)
            remaining = headers.get("X-Bapi-Limit-Status")
            if remaining is not None:
                budget.observe_remaining(float(remaining))
                reset = headers.get("X-Bapi-Limit-Reset-Timestamp")
                if float(remaining) <= 0 and reset is not None:
                    wait = (int(reset) - self.timestamp_ms()) / 1000.0
                    budget.block_for(min(max(wait, 0.0), UID_WINDOW))
        except ValueError:
            log.debug("bybit: unreadable rate-limit headers %r", dict(headers))

    async def _raise_for(
        self,
        where: str,
        code: int,
        message: str,
        signed: bool,
        uid_budget: RequestBudget | None,
        headers: httpx.Headers,
    ) -> None:
        detail = f"retCode {code}: {message}"
        if code in RATE_LIMITED:
            retry_after = UID_WINDOW
            reset = headers.get("X-Bapi-Limit-Reset-Timestamp")
            if reset is not None and reset.isdigit():
                retry_after = min(max((int(reset) - self.timestamp_ms()) / 1000.0, 0.0), 10.0)
            (uid_budget or self.ip_budget).block_for(retry_after)
            raise TemporaryExchangeError(
                EXCHANGE, f"{where}: {detail} (rate limit)", retry_after=retry_after
            )
        if code in SERVER_ERRORS:
            raise TemporaryExchangeError(EXCHANGE, f"{where}: {detail}, outcome unknown")
        if code == INVALID_TIMESTAMP and signed:
            # Only signed requests carry a timestamp; re-syncing on an unsigned one could
            # loop (the re-sync's own request answering 10002).
            offset = await self.sync_time()
            raise TemporaryExchangeError(
                EXCHANGE, f"{where}: {detail}; clock re-synced (offset {offset} ms)"
            )
        raise BybitRetCodeError(where, code, message)
