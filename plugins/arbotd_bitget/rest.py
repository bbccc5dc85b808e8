"""Bitget v2 REST: signed requests, clock offset, per-endpoint request budgets and error
translation (the signature is in :mod:`arbotd_bitget.signing`, the codes in
:mod:`arbotd_bitget.codes`).

Facts (bitget-upbit-protocols.md 1.2 and 1.3, Bitget's ``common/signature``,
``common/quick-start`` and ``common/faq``):

* A private request carries ``ACCESS-KEY``, ``ACCESS-SIGN``, ``ACCESS-TIMESTAMP``
  (milliseconds), ``ACCESS-PASSPHRASE``, ``Content-Type: application/json`` and
  ``locale``; demo trading adds ``paptrading: 1``. The timestamp is the local clock plus
  the offset measured from ``/api/v2/public/time`` and must be within 30 s of Bitget's;
  Bitget refuses a stale one with 40008, after which the offset is measured again.
* Only GET (parameters in the query string, sorted by name as in Bitget's signing
  example) and POST (a JSON body) are used.
* Limits are per endpoint per second (time and symbols 20/s per IP; placing, cancelling,
  fills and balances 10/s and order details 20/s per account), and 6000 requests a
  minute per IP over all of them. Passing one answers HTTP 429 with no documented
  Retry-After; the endpoint then rests a window.
* The codes that Bitget's FAQ says to retry during its releases (45001, 40725, 40808,
  40015, and 40200) are temporary.

The API secret and passphrase are never logged nor put in an exception message; the key
and passphrase are only sent in their headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd.exchange import PauseRule, RequestBudget, RestClient, query_string
from arbotd_bitget.codes import (
    AUTH_CODES,
    RATE_LIMITED,
    SUCCESS,
    TEMPORARY_CODES,
    TIMESTAMP_EXPIRED,
)
from arbotd_bitget.config import MAINNET_REST_URL
from arbotd_bitget.signing import sign

__all__ = [
    "ENDPOINT_LIMITS",
    "IP_LIMIT",
    "LIMIT_WINDOW",
    "BitgetError",
    "BitgetRest",
]

EXCHANGE = "bitget"
TIME = "/api/v2/public/time"
# Requests per LIMIT_WINDOW seconds of each endpoint (bitget-upbit-protocols.md 1.2).
LIMIT_WINDOW = 1.0
ENDPOINT_LIMITS: dict[str, int] = {
    TIME: 20,
    "/api/v2/spot/public/symbols": 20,
    "/api/v2/spot/trade/place-order": 10,
    "/api/v2/spot/trade/cancel-order": 10,
    "/api/v2/spot/trade/orderInfo": 20,
    "/api/v2/spot/trade/fills": 10,
    "/api/v2/spot/account/assets": 10,
}
DEFAULT_LIMIT = 10
# Every endpoint together: 6000 requests a minute per IP (bitget-upbit-protocols.md 1.3).
IP_LIMIT = 6000
IP_WINDOW = 60.0


class BitgetError(PermanentExchangeError):
    """Bitget refused a request; ``code`` is Bitget's error code (``"43001"``: no such
    order)."""

    def __init__(self, message: str, code: str) -> None:
        self.code = code
        super().__init__(EXCHANGE, message)


class BitgetRest(RestClient):
    """An async Bitget v2 REST client. Use as ``async with BitgetRest(...) as rest`` or
    call :meth:`aclose`.

    Each endpoint has a :class:`~arbotd.exchange.RequestBudget` of ``budget_fraction``
    of its limit, and all of them share one of the per-IP minute, so that the daemon
    waits before Bitget refuses; a 429 pauses the endpoint for a window (``window`` is
    Bitget's 1 s; tests may change it).
    """

    exchange = EXCHANGE
    venue = "Bitget"
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
        self.ip_budget = RequestBudget("bitget (all endpoints)", IP_LIMIT, IP_WINDOW,
                                       fraction=budget_fraction, sliding=True)

    def budget(self, path: str) -> RequestBudget:
        """The request budget of an endpoint."""
        budget = self.budgets.get(path)
        if budget is None:
            limit = ENDPOINT_LIMITS.get(path, DEFAULT_LIMIT)
            # However small the fraction, one request per window must fit.
            fraction = max(self.budget_fraction, 1 / limit)
            # Bitget does not say where its windows start: count over the last window.
            budget = RequestBudget(
                f"bitget {path}", limit, self.window, fraction=fraction, sliding=True)
            self.budgets[path] = budget
        return budget

    def pause(self, path: str, retry_after: float | None = None) -> float:
        """Bitget said the endpoint's limit is reached: send nothing to it for
        ``retry_after`` seconds, or a whole window. Returns the pause."""
        seconds = retry_after if retry_after is not None else self.window
        self.budget(path).block_for(seconds)
        return seconds

    async def server_time(self) -> int:
        """Bitget's clock (``GET /api/v2/public/time``), in milliseconds."""
        data = await self.request("GET", TIME)
        try:
            return int(data["serverTime"])
        except (KeyError, TypeError, ValueError) as err:
            raise TemporaryExchangeError(EXCHANGE, f"malformed {TIME} answer") from err

    def describe(self, response: httpx.Response) -> str:
        code, msg, _ = _fields(response)
        return f" (code {code}: {msg})" if code else ""

    # -- requests ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        private: bool = False,
    ) -> Any:
        """``data`` of a successful answer (an object or a list, as the endpoint gives
        it). ``params`` go in the query string, ``body`` is sent as JSON. Raises
        :class:`~arbotd.TemporaryExchangeError` or :class:`BitgetError`."""
        # Bitget's signing example sorts the parameters; whether it must is not said
        # (unverified), so they are always sent sorted, and signed exactly as sent.
        query = query_string(dict(sorted((params or {}).items())))
        target = f"{path}?{query}" if query else path
        content = orjson.dumps(body).decode() if body is not None else ""
        headers: dict[str, str] = {"Content-Type": "application/json", "locale": "en-US"}
        if self.demo:
            headers["paptrading"] = "1"
        signer = None
        if private:
            if not self.has_credentials:
                raise PermanentExchangeError(
                    EXCHANGE, "API key, secret and passphrase are not all configured")
            signer = self._signer(method, target, content)
        where = f"{method} {path}"
        response = await self.send(
            method, path, budgets=[self.budget(path), self.ip_budget], query=query,
            body=content or None, headers=headers, sign=signer, where=where,
        )
        return await self._answer(where, path, response, private)

    def _signer(self, method: str, target: str, content: str
                ) -> Callable[[], dict[str, str]]:
        """The signed headers, made once the budgets let the request go (a signature
        made before a wait could be stale when it leaves)."""
        assert self._api_key and self._api_secret and self._passphrase
        key, secret, passphrase = self._api_key, self._api_secret, self._passphrase

        def headers() -> dict[str, str]:
            timestamp = str(self.timestamp_ms())
            return {"ACCESS-KEY": key, "ACCESS-PASSPHRASE": passphrase,
                    "ACCESS-TIMESTAMP": timestamp,
                    "ACCESS-SIGN": sign(secret, timestamp, method, target, content)}

        return headers

    async def _answer(self, where: str, path: str, response: httpx.Response, private: bool
                      ) -> Any:
        status = response.status_code
        code, msg, data = _fields(response)
        if code is None:
            raise self.malformed(where, response)
        if code == SUCCESS:
            return data
        detail = f"{where}: HTTP {status}, code {code}: {msg}"
        if code in RATE_LIMITED:
            pause = self.pause(path)
            raise TemporaryExchangeError(EXCHANGE, f"{detail}; pausing {pause:g} s",
                                         retry_after=pause)
        if code in TIMESTAMP_EXPIRED and private:
            # Only signed requests carry a timestamp; re-syncing on a public one could
            # loop (the re-sync's own request answering the same).
            offset = await self.sync_time()
            raise TemporaryExchangeError(EXCHANGE, f"{detail}; clock re-synced (offset "
                                                   f"{offset} ms)")
        if code in TEMPORARY_CODES:
            raise TemporaryExchangeError(EXCHANGE, detail)
        if code in AUTH_CODES:
            detail += " (check the API key, its secret, passphrase, IP list and permissions)"
        raise BitgetError(detail, code)


def _fields(response: httpx.Response) -> tuple[str | None, str, Any]:
    """``code``, ``msg`` and ``data`` of a Bitget answer; ``code`` is ``None`` when the
    answer is not Bitget's JSON."""
    try:
        answer = response.json()
        return str(answer["code"]), str(answer.get("msg", "")), answer.get("data")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "", None
