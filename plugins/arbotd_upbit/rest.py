"""Upbit REST: JWT-signed requests, the request groups' budgets (from ``Remaining-Req``),
and error translation.

Facts (bitget-upbit-protocols.md 2.2 and 2.3, docs.upbit.com/kr/reference/rate-limits):

* Base ``https://api.upbit.com/v1``; POST bodies are JSON
  (``Content-Type: application/json; charset=utf-8``), signed by a query hash of their
  fields (:mod:`arbotd_upbit.signing`).
* Limits are per group: ``order`` (``POST /orders``) 8/s (12/s since 2026-08-21 21:00
  KST; the older, lower figure is used, as it holds whichever applies), ``default`` (the
  other Exchange calls) 30/s, each Quotation group 10/s. Every answer carries
  ``Remaining-Req: group=default; min=1800; sec=29``: ``sec`` is what remains of the
  current second; the budget of that group trusts it.
* Over a limit Upbit answers 429; keep sending and it answers 418 with a block that grows
  on repeat. Neither documents a Retry-After: 429 rests the group a second, 418 a minute.
* There is no timestamp in the token, so no clock offset to keep.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from arbotd import PermanentExchangeError, TemporaryExchangeError
from arbotd.exchange import PauseRule, RequestBudget, RestClient, query_string
from arbotd_upbit.config import MAINNET_REST_URL
from arbotd_upbit.errors import AUTH_ERRORS, NONCE_USED, UpbitError, error_fields
from arbotd_upbit.signing import bearer

__all__ = ["GROUP_LIMITS", "UpbitRest", "group_of", "parse_remaining_req"]

EXCHANGE = "upbit"
LIMIT_WINDOW = 1.0
GROUP_LIMITS: dict[str, int] = {"order": 8, "default": 30, "market": 10, "orderbook": 10,
                                "ticker": 10}
_REMAINING = re.compile(r"group=([\w-]+);.*?sec=(\d+)")


def group_of(method: str, path: str) -> str:
    """The request group a call counts in."""
    if method == "POST" and path in ("/v1/orders", "/v1/orders/cancel_and_new"):
        return "order"
    if path.startswith("/v1/market/"):
        return "market"
    if path.startswith("/v1/orderbook"):
        return "orderbook"
    if path.startswith("/v1/ticker"):
        return "ticker"
    return "default"


def parse_remaining_req(value: str | None) -> tuple[str, int] | None:
    """``(group, sec)`` of a ``Remaining-Req`` header, ``None`` when absent or unreadable."""
    if not value:
        return None
    match = _REMAINING.search(value)
    return (match.group(1), int(match.group(2))) if match else None


class UpbitRest(RestClient):
    """An async Upbit REST client (``async with UpbitRest(...) as rest``)."""

    exchange = EXCHANGE
    venue = "Upbit"
    repr_fields = ("base_url",)

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        base_url: str = MAINNET_REST_URL,
        *,
        timeout: float = 10.0,
        budget_fraction: float = 0.8,
        window: float = LIMIT_WINDOW,
        ban_pause: float = 60.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 0 < budget_fraction <= 1:
            raise ValueError("budget_fraction must be in (0, 1]")
        super().__init__(
            base_url, credentials=(access_key, secret_key),
            pauses={429: PauseRule("request rate limit hit", window),
                    418: PauseRule("blocked for passing the rate limit", ban_pause)},
            timeout=timeout, clock=clock, transport=transport,
        )
        self._access_key = access_key
        self._secret_key = secret_key
        self.budget_fraction = budget_fraction
        self.window = window
        self.budgets: dict[str, RequestBudget] = {}

    def budget(self, group: str) -> RequestBudget:
        budget = self.budgets.get(group)
        if budget is None:
            limit = GROUP_LIMITS.get(group, GROUP_LIMITS["default"])
            fraction = max(self.budget_fraction, 1 / limit)
            budget = RequestBudget(f"upbit {group}", limit, self.window, fraction=fraction,
                                   sliding=True)
            self.budgets[group] = budget
        return budget

    async def server_time(self) -> int:
        # Upbit's tokens carry no time: there is no offset to measure.
        return int(self._clock() * 1000)

    def observe(self, path: str, response: httpx.Response) -> None:
        remaining = parse_remaining_req(response.headers.get("Remaining-Req"))
        if remaining is not None:
            group, sec = remaining
            self.budget(group).observe_remaining(sec)

    def describe(self, response: httpx.Response) -> str:
        fields = _error_of(response)
        return f" ({fields[0]}: {fields[1]})" if fields else ""

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        private: bool = False,
    ) -> Any:
        """The decoded answer of a successful call. ``params`` go in the query string,
        ``body`` as JSON; a private call is signed over whichever it has. Raises
        :class:`~arbotd.TemporaryExchangeError` or :class:`UpbitError`."""
        query = query_string(params)
        content = orjson.dumps(body).decode() if body is not None else None
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Accept": "application/json"}
        sign: Callable[[], Mapping[str, str]] | None = None
        if private:
            if not self.has_credentials:
                raise PermanentExchangeError(
                    EXCHANGE, "the Upbit access key and secret key are not both configured")
            assert self._access_key and self._secret_key
            key, secret = self._access_key, self._secret_key
            signed = {k: v for k, v in (body or params or {}).items() if v is not None}

            def sign() -> Mapping[str, str]:
                return {"Authorization": bearer(key, secret, signed)}
        where = f"{method} {path}"
        response = await self.send(
            method, path, budgets=[self.budget(group_of(method, path))], query=query,
            body=content, headers=headers, sign=sign, where=where)
        return self._answer(where, response)

    def _answer(self, where: str, response: httpx.Response) -> Any:
        status = response.status_code
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise self.malformed(where, response) from None
        fields = error_fields(answer)
        if status < 300 and fields is None:
            return answer
        if fields is None:
            raise self.malformed(where, response)
        name, message = fields
        detail = f"{where}: HTTP {status}, {name}: {message}"
        if name == NONCE_USED:
            raise TemporaryExchangeError(EXCHANGE, detail)
        if name in AUTH_ERRORS:
            detail += " (check the access key, the secret key and the key's IP allowlist)"
        raise UpbitError(detail, name, status)


def _error_of(response: httpx.Response) -> tuple[str, str] | None:
    try:
        return error_fields(orjson.loads(response.content))
    except orjson.JSONDecodeError:
        return None
