"""OKX v5 REST: request signing, clock offset, per-endpoint request budgets and error
translation.

Facts (exchange-protocols.md sections 3.2 and 3.3, from OKX's
``#overview-rest-authentication`` and ``#overview-rate-limits``):

* A private request carries ``OK-ACCESS-KEY``, ``OK-ACCESS-PASSPHRASE``,
  ``OK-ACCESS-TIMESTAMP`` (ISO 8601 UTC with milliseconds, ``2020-12-08T09:08:57.715Z``)
  and ``OK-ACCESS-SIGN`` = base64(HMAC-SHA256(secret, timestamp + METHOD + request path
  with its query string + body)). Demo trading adds ``x-simulated-trading: 1``. The
  timestamp is the local clock plus the offset measured from ``/api/v5/public/time``;
  OKX refuses a stale one with 50102, after which the offset is measured again.
* Every answer is ``{"code": "0", "msg": "", "data": [...]}``; ``code`` other than "0"
  is an error. Order endpoints answer per order: ``code`` "1" with ``data[i].sCode``.
* Limits are per endpoint, counted per 2 s (time 10, instruments 20, order placement,
  cancel and details 60, balance 10). Passing one answers 50011 "Too Many Requests",
  with HTTP 429 or 200, and no documented Retry-After.
* 50001, 50013 and 50026 are temporary; 50004 is a timeout whose outcome is unknown;
  50105, 50111 and 50113 are a wrong passphrase, key and signature.

The API secret and passphrase are never logged nor put in an exception message; the key
and passphrase are only sent in their headers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd.exchange import (
    PauseRule,
    RequestBudget,
    RestClient,
    parse_retry_after,
    query_string,
)
from arbotd_okx.config import MAINNET_REST_URL

__all__ = [
    "ENDPOINT_LIMITS",
    "LIMIT_WINDOW",
    "OkxError",
    "OkxRest",
    "iso_timestamp",
    "sign",
]

EXCHANGE = "okx"
TIME = "/api/v5/public/time"
# Requests per LIMIT_WINDOW seconds of each endpoint (exchange-protocols.md 3.2). The
# fills endpoint is not in the research notes (unverified): it is given the 60 of the
# other trade queries.
LIMIT_WINDOW = 2.0
ENDPOINT_LIMITS: dict[str, int] = {
    TIME: 10,
    "/api/v5/public/instruments": 20,
    "/api/v5/trade/order": 60,
    "/api/v5/trade/cancel-order": 60,
    "/api/v5/trade/fills": 60,
    "/api/v5/account/balance": 10,
}
DEFAULT_LIMIT = 10

RATE_LIMITED = frozenset({"50011", "50061"})
TEMPORARY_CODES = frozenset({"50001", "50004", "50013", "50026"}) | RATE_LIMITED
TIMESTAMP_EXPIRED = "50102"


def iso_timestamp(ms: int) -> str:
    """Milliseconds since the epoch as OKX's ``OK-ACCESS-TIMESTAMP``
    (``2020-12-08T09:08:57.715Z``)."""
    moment = dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def sign(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    """OKX's signature: base64 of HMAC-SHA256(secret, timestamp + METHOD + request path
    (with ``?query`` for a GET) + body)."""
    payload = f"{timestamp}{method.upper()}{request_path}{body}"
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class OkxError(PermanentExchangeError):
    """OKX refused a request; ``code`` is OKX's error code (``"51603"``: no such
    order)."""

    def __init__(self, message: str, code: str) -> None:
        self.code = code
        super().__init__(EXCHANGE, message)


class OkxRest(RestClient):
    """An async OKX v5 REST client. Use as ``async with OkxRest(...) as rest`` or call
    :meth:`aclose`.

    Each endpoint has a :class:`~arbotd.exchange.RequestBudget` of ``budget_fraction``
    of its limit, so that the daemon waits before OKX refuses; a 50011 answer pauses the
    endpoint for a window (``window`` is OKX's 2 s; tests shorten it).
    """

    exchange = EXCHANGE
    venue = "OKX"
    repr_fields = ("base_url", "demo", "offset_ms")

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        passphrase: str | None = None,
        base_url: str = MAINNET_REST_URL,
        *,
        demo: bool = False,
        timeout: float = 10.0,
        budget_fraction: float = 0.8,
        window: float = LIMIT_WINDOW,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 0 < budget_fraction <= 1:
            raise ValueError("budget_fraction must be in (0, 1]")
        # A 429 comes with no documented Retry-After: the endpoint rests a window.
        super().__init__(
            base_url, credentials=(api_key, api_secret, passphrase),
            pauses={429: PauseRule("request rate limit hit", window)},
            timeout=timeout, clock=clock, transport=transport,
        )
        self._api_key = api_key
        self._api_secret = api_secret
        self._passphrase = passphrase
        self.demo = demo
        self.budget_fraction = budget_fraction
        self.window = window
        self.budgets: dict[str, RequestBudget] = {}

    def budget(self, path: str) -> RequestBudget:
        """The request budget of an endpoint."""
        budget = self.budgets.get(path)
        if budget is None:
            limit = ENDPOINT_LIMITS.get(path, DEFAULT_LIMIT)
            # However small the fraction, one request per window must fit.
            fraction = max(self.budget_fraction, 1 / limit)
            # OKX does not say where its windows start: count over the last window, so
            # that no span of one window takes more than the allowance.
            budget = RequestBudget(
                f"okx {path}", limit, self.window, fraction=fraction, sliding=True
            )
            self.budgets[path] = budget
        return budget

    def pause(self, path: str, retry_after: float | None = None) -> float:
        """OKX said the endpoint's limit is reached: send nothing to it for
        ``retry_after`` seconds, or a whole window when it did not say (it documents no
        Retry-After). Returns the pause."""
        seconds = retry_after if retry_after is not None else self.window
        self.budget(path).block_for(seconds)
        return seconds

    async def server_time(self) -> int:
        """OKX's clock (``GET /api/v5/public/time``), in milliseconds."""
        data = await self.request("GET", TIME)
        try:
            return int(data[0]["ts"])
        except (IndexError, KeyError, TypeError, ValueError) as err:
            raise TemporaryExchangeError(EXCHANGE, f"malformed {TIME} answer") from err

    # -- requests ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        private: bool = False,
        headers: Mapping[str, str] | None = None,
        per_order: bool = False,
    ) -> list[Any]:
        """``data`` of a successful answer. ``params`` go in the query string, ``body`` is
        sent as JSON. With ``per_order``, an answer whose ``data`` holds per-order
        results (``sCode``) is returned even when ``code`` is not "0": the caller reads
        each ``sCode``. Raises :class:`~arbotd.TemporaryExchangeError` or
        :class:`OkxError`."""
        query = query_string(params)
        target = f"{path}?{query}" if query else path
        content = orjson.dumps(body).decode() if body is not None else ""
        sent: dict[str, str] = {"Content-Type": "application/json", **(headers or {})}
        if self.demo:
            sent["x-simulated-trading"] = "1"
        if private:
            if not self.has_credentials:
                raise PermanentExchangeError(
                    EXCHANGE, "API key, secret and passphrase are not all configured"
                )
            assert self._api_key and self._api_secret and self._passphrase
            timestamp = iso_timestamp(self.timestamp_ms())
            sent["OK-ACCESS-KEY"] = self._api_key
            sent["OK-ACCESS-PASSPHRASE"] = self._passphrase
            sent["OK-ACCESS-TIMESTAMP"] = timestamp
            sent["OK-ACCESS-SIGN"] = sign(self._api_secret, timestamp, method, target, content)
        where = f"{method} {path}"
        response = await self.send(
            method, path, budgets=[self.budget(path)], query=query, body=content or None,
            headers=sent, where=where,
        )
        return await self._answer(where, path, response, private, per_order)

    def describe(self, response: httpx.Response) -> str:
        code, msg, _ = _fields(response)
        return f" (code {code}: {msg})" if code else ""

    async def _answer(
        self, where: str, path: str, response: httpx.Response, private: bool, per_order: bool
    ) -> list[Any]:
        status = response.status_code
        code, msg, data = _fields(response)
        if code in RATE_LIMITED:
            # OKX's rate limit also comes as HTTP 200 (exchange-protocols.md 3.3).
            pause = self.pause(path, parse_retry_after(response.headers.get("Retry-After")))
            raise TemporaryExchangeError(
                EXCHANGE,
                f"{where}: HTTP {status}, request rate limit hit (code {code}: {msg}); "
                f"pausing {pause:g} s",
                retry_after=pause,
            )
        if code is None:
            raise self.malformed(where, response)
        if code == "0":
            return list(data)
        if per_order and data and all(isinstance(d, dict) and "sCode" in d for d in data):
            return list(data)
        detail = f"{where}: HTTP {status}, code {code}: {msg}"
        if code == TIMESTAMP_EXPIRED and private:
            # Only signed requests carry a timestamp; re-syncing on a public one could
            # loop (the re-sync's own request answering the same).
            offset = await self.sync_time()
            raise TemporaryExchangeError(
                EXCHANGE, f"{detail}; clock re-synced (offset {offset} ms)"
            )
        if code in TEMPORARY_CODES:
            raise TemporaryExchangeError(EXCHANGE, detail)
        raise OkxError(detail, code)


def _fields(response: httpx.Response) -> tuple[str | None, str, list[Any]]:
    """``code``, ``msg`` and ``data`` of an OKX answer; ``code`` is ``None`` when the
    answer is not OKX's JSON."""
    try:
        answer = response.json()
        return str(answer["code"]), str(answer.get("msg", "")), answer.get("data") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "", []
