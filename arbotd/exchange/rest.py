"""What every signed REST client of an exchange does the same way: the HTTP client, the
clock offset, and the path of a request from the request budget to an answer worth
parsing.

:class:`RestClient` is a base class. An exchange plugin subclasses it and keeps its own
signing, response parsing and error codes; the base translates what is common to the
three exchanges (exchange-protocols.md sections 1.3, 2.3 and 3.3):

* a timeout is :class:`arbotd.TemporaryExchangeError` "timed out, outcome unknown": the
  request may have reached the exchange, so an order may have been placed;
* a refused connection (or a connect timeout) is :attr:`RestClient.not_sent`: nothing
  left the machine, so a retry cannot place an order twice;
* an HTTP status by which the exchange asks to be left alone (:class:`PauseRule`: 429
  everywhere, Binance's 418 ban, Bybit's 403) pauses the request budget for
  ``Retry-After`` seconds, or the rule's pause when the exchange sends none, and raises
  :attr:`RestClient.not_sent` with ``retry_after`` set to that pause;
* any 5xx is temporary with the outcome unknown.

Everything else comes back as the :class:`httpx.Response`, for the exchange's own codes.
Messages name the request (``GET /path``) and what the exchange said, never a key,
secret or passphrase, and neither does the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self
from urllib.parse import urlencode

import attrs
import httpx

from arbotd._errors import ExchangeError, PermanentExchangeError, TemporaryExchangeError
from arbotd.exchange.budget import RequestBudget, parse_retry_after

__all__ = ["PauseRule", "RestClient", "query_string"]

log = logging.getLogger(__name__)


@attrs.frozen
class PauseRule:
    """How to read an HTTP status by which an exchange asks the client to stop for a
    while: ``what`` it means (for the error message), and how many ``seconds`` to pause
    when the answer carries no ``Retry-After``."""

    what: str
    seconds: float


class RestClient:
    """The shared part of an exchange's async REST client. Use as ``async with
    Client(...) as rest`` or call :meth:`aclose`.

    A subclass sets :attr:`exchange` (the venue's name in errors) and :attr:`venue` (its
    name in prose), implements :meth:`server_time`, and calls :meth:`send` for every
    request. It may override :meth:`observe` (budgets that learn from response headers)
    and :meth:`describe` (the exchange's own error code in messages).

    ``credentials`` are the values a signed request needs (key, secret, passphrase);
    they only decide :attr:`has_credentials` and are never shown. ``pauses`` maps the
    HTTP statuses by which the exchange asks for a pause to their :class:`PauseRule`.
    """

    exchange: ClassVar[str] = "exchange"
    venue: ClassVar[str] = "the exchange"
    # The attributes shown by repr(): never one that holds a secret.
    repr_fields: ClassVar[tuple[str, ...]] = ("base_url", "offset_ms")
    # Raised when the request certainly did not reach the exchange; a plugin whose
    # callers retry placements on it names its own subclass.
    not_sent: ClassVar[type[TemporaryExchangeError]] = TemporaryExchangeError

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Sequence[str | None] = (),
        pauses: Mapping[int, PauseRule] | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.pauses: Mapping[int, PauseRule] = dict(pauses or {})
        self._credentials = tuple(credentials)
        self._clock = clock
        # Server time minus local time, in milliseconds.
        self.offset_ms = 0
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.repr_fields)
        return f"{type(self).__name__}({fields})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def has_credentials(self) -> bool:
        """Whether every value a signed request needs is configured."""
        return bool(self._credentials) and all(self._credentials)

    # -- clock ---------------------------------------------------------------------------

    def timestamp_ms(self) -> int:
        """Local time corrected by the measured offset, in milliseconds: what signed
        requests carry, since exchanges refuse a timestamp far from their own clock."""
        return int(self._clock() * 1000) + self.offset_ms

    async def server_time(self) -> int:
        """The exchange's clock in milliseconds, from its public time endpoint."""
        raise NotImplementedError

    async def sync_time(self) -> int:
        """Measure the offset between the exchange's clock and ours and return it in
        milliseconds. The server read its clock somewhere in the round trip; the
        midpoint is the best guess of when."""
        before = self._clock()
        server = await self.server_time()
        after = self._clock()
        self.offset_ms = server - int((before + after) / 2 * 1000)
        log.debug("%s clock offset %d ms", self.exchange, self.offset_ms)
        return self.offset_ms

    # -- requests ------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        *,
        budgets: Sequence[RequestBudget] = (),
        cost: float = 1.0,
        query: str = "",
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
        sign: Callable[[], Mapping[str, str]] | None = None,
        where: str | None = None,
    ) -> httpx.Response:
        """Send one request and return its answer, unless that answer (or its absence)
        means the same on every exchange: see the module's docstring.

        ``cost`` is taken from each of ``budgets`` first; the first one is paused when
        the exchange asks for a pause (list the widest first). ``query`` is the encoded
        query string, ``body`` the exact text sent. ``sign``, when given, is called
        after the budgets' waits and returns headers to add, so that a signature made
        with the time of sending is not stale by the time it leaves.
        """
        where = where or f"{method} {path}"
        uses = [await budget.acquire(cost) for budget in budgets]
        sent = {**(headers or {}), **(sign() if sign is not None else {})}
        url = f"{path}?{query}" if query else path
        try:
            response = await self._client.request(method, url, headers=sent, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            raise self.not_sent(
                self.exchange, f"{where}: connection failed ({type(err).__name__})"
            ) from err
        except httpx.TimeoutException as err:
            raise TemporaryExchangeError(
                self.exchange, f"{where}: timed out, outcome unknown"
            ) from err
        except httpx.TransportError as err:
            raise TemporaryExchangeError(
                self.exchange, f"{where}: connection failed ({type(err).__name__})"
            ) from err
        finally:
            # The exchange received the request by now, if ever (sliding budgets).
            for budget, use in zip(budgets, uses, strict=False):
                budget.finish(use)
        status = response.status_code
        log.debug("%s %s -> %d", self.exchange, where, status)
        self.observe(path, response)
        rule = self.pauses.get(status)
        if rule is not None:
            header = parse_retry_after(response.headers.get("Retry-After"))
            pause = header if header is not None else rule.seconds
            if budgets:
                budgets[0].block_for(pause)
            raise self.not_sent(
                self.exchange,
                f"{where}: HTTP {status}, {rule.what}{self.describe(response)}; "
                f"pausing {pause:g} s",
                retry_after=pause,
            )
        if status >= 500:
            raise TemporaryExchangeError(
                self.exchange, f"{where}: HTTP {status}, outcome unknown"
                f"{self.describe(response)}"
            )
        return response

    def observe(self, path: str, response: httpx.Response) -> None:
        """Called with every answer before it is judged, a 429 included, so that a
        budget can follow what the exchange reports of its use in headers."""

    def describe(self, response: httpx.Response) -> str:
        """The exchange's own error code and message in an answer, as `` (code …: …)``
        appended to error messages; empty when it has none."""
        return ""

    def malformed(self, where: str, response: httpx.Response) -> ExchangeError:
        """The error for an answer the exchange's parser cannot read: refused when the
        status says so, otherwise temporary (a proxy's page, a truncated body)."""
        status = response.status_code
        if status >= 400:
            return PermanentExchangeError(self.exchange, f"{where}: HTTP {status}")
        return TemporaryExchangeError(
            self.exchange, f"{where}: HTTP {status}, the answer is not {self.venue}'s JSON"
        )


def query_string(params: Mapping[str, Any] | None) -> str:
    """``params`` encoded as a query string, leaving out the ones set to ``None`` (an
    exchange would read them as empty values, not as absent)."""
    return urlencode({k: v for k, v in (params or {}).items() if v is not None})
