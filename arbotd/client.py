"""A Python client for arbotd's REST API, and a WebSocket subscription helper for trio.

The client mirrors the API reference's Python SDK example, with errors raised instead of
returned::

    from datetime import datetime, timedelta
    from arbotd.client import ArbotClient

    with ArbotClient("http://localhost:8080", api_key="your-api-key") as client:
        status = client.get_status()
        print(f"ArBot status: {status['status']}")

        recent_trades = client.get_trades(
            start_date=datetime.now() - timedelta(days=1), limit=50
        )
        print(f"Found {len(recent_trades['trades'])} recent trades")

        result = client.start_trading(mode="simulation")
        print(f"Trading started: {result['success']}")

With JWT instead of an API key, ``client.login("admin", "password")`` stores the token for
the calls that follow (or pass ``token=`` to the constructor).

Every method returns the response's JSON body as the reference documents it. A non-2xx
answer raises the exception of its error code, built from the reference's error object
(``code``, ``message``, ``details``); the rate-limit headers of the last response are in
``client.rate_limit``::

    ArbotApiError                 any error answer (.code, .message, .details, .status)
    ├── InvalidSymbol             INVALID_SYMBOL           400
    ├── InsufficientBalance       INSUFFICIENT_BALANCE     400
    ├── ValidationError           VALIDATION_ERROR         400  malformed body or parameter
    ├── Unauthorized              UNAUTHORIZED             401  missing or wrong credentials
    ├── Forbidden                 FORBIDDEN                403  read scope on a write route
    ├── TradingDisabled           TRADING_DISABLED         403
    ├── NotFound                  NOT_FOUND                404
    ├── RateLimitExceeded         RATE_LIMIT_EXCEEDED      429  (.retry_after, seconds)
    ├── InternalError             INTERNAL_ERROR           500
    ├── ExchangeNotAvailable      EXCHANGE_NOT_AVAILABLE   503
    ├── ConnectionFailed          no answer: refused, timed out, TLS or protocol failure
    └── StreamClosed              the server closed a WebSocket subscription (.close_code)

Other codes (``METHOD_NOT_ALLOWED``) and error bodies that are not the error object (a
proxy's HTML page) raise ``ArbotApiError`` itself, with ``code`` ``None`` for the latter.

Real-time data, in a trio program::

    from arbotd.client import open_subscription

    async with open_subscription("ws://localhost:8080/api/v1/ws", channels=["prices"],
                                 symbols=["BTCUSDT"], token="your-api-key") as sub:
        async for message in sub:
            print(message["type"], message["data"])
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import attrs
import httpx
import orjson
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from arbotd._errors import ArbotError

__all__ = [
    "ArbotApiError",
    "ArbotClient",
    "ConnectionFailed",
    "ExchangeNotAvailable",
    "Forbidden",
    "InsufficientBalance",
    "InternalError",
    "InvalidSymbol",
    "NotFound",
    "RateLimit",
    "RateLimitExceeded",
    "StreamClosed",
    "Subscription",
    "TradingDisabled",
    "Unauthorized",
    "ValidationError",
    "error_from_response",
    "open_subscription",
]

API_PREFIX = "/api/v1"
DATA_MESSAGES = frozenset({"price_update", "signal", "trade_update"})
_ACKS = frozenset({"authenticated", "subscribed", "unsubscribed"})


class ArbotApiError(ArbotError):
    """An error answer from the API, or no answer at all.

    ``code`` is the error object's code (``None`` when the body was not an error object),
    ``details`` its details, ``status`` the HTTP status (``None`` without an HTTP answer).
    """

    code_name: str | None = None

    def __init__(self, code: str | None, message: str,
                 details: Mapping[str, Any] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.status = status

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status is not None else ""
        return f"{prefix}{self.code or 'error'}: {self.message}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
                f"details={self.details!r}, status={self.status!r})")


class InvalidSymbol(ArbotApiError):
    """The symbol is not traded; ``details["valid_symbols"]`` lists those that are."""

    code_name = "INVALID_SYMBOL"


class ExchangeNotAvailable(ArbotApiError):
    """The exchange is unknown, disabled or not connected."""

    code_name = "EXCHANGE_NOT_AVAILABLE"


class InsufficientBalance(ArbotApiError):
    """An account does not hold enough for the operation."""

    code_name = "INSUFFICIENT_BALANCE"


class RateLimitExceeded(ArbotApiError):
    """Too many requests; ``retry_after`` is the seconds to wait (``None`` if not said)."""

    code_name = "RATE_LIMIT_EXCEEDED"

    def __init__(self, code: str | None, message: str,
                 details: Mapping[str, Any] | None = None, status: int | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(code, message, details, status)
        if retry_after is None:
            retry_after = _int_or_none(self.details.get("retry_after"))
        self.retry_after = retry_after


class Unauthorized(ArbotApiError):
    """Credentials are missing, wrong or expired."""

    code_name = "UNAUTHORIZED"


class Forbidden(ArbotApiError):
    """The credentials are valid but their scope does not allow this (read on a write)."""

    code_name = "FORBIDDEN"


class TradingDisabled(ArbotApiError):
    """Trading is not allowed now (for example live mode without live trading enabled)."""

    code_name = "TRADING_DISABLED"


class ValidationError(ArbotApiError):
    """A body or parameter is malformed; ``details`` usually names the field."""

    code_name = "VALIDATION_ERROR"


class NotFound(ArbotApiError):
    """No such endpoint or object."""

    code_name = "NOT_FOUND"


class InternalError(ArbotApiError):
    """The server failed; its log says why (the answer never does)."""

    code_name = "INTERNAL_ERROR"


class ConnectionFailed(ArbotApiError):
    """The server could not be reached or did not answer: the cause is ``__cause__``."""

    code_name = "CONNECTION_FAILED"


class StreamClosed(ArbotApiError):
    """The server closed a WebSocket subscription; ``close_code`` and ``message`` (the
    close reason) say why: 1001 at shutdown, 1008 for a policy violation (a client too
    slow to keep up, failed authentication)."""

    code_name = "STREAM_CLOSED"

    @property
    def close_code(self) -> int | None:
        return _int_or_none(self.details.get("close_code"))


_BY_CODE: dict[str, type[ArbotApiError]] = {
    cls.code_name: cls
    for cls in (InvalidSymbol, ExchangeNotAvailable, InsufficientBalance, RateLimitExceeded,
                Unauthorized, Forbidden, TradingDisabled, ValidationError, NotFound,
                InternalError)
    if cls.code_name
}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _from_error_object(error: Mapping[str, Any], status: int | None,
                       retry_after: int | None = None) -> ArbotApiError:
    code = error.get("code")
    code = code if isinstance(code, str) else None
    message = error.get("message")
    message = message if isinstance(message, str) else "error"
    details = error.get("details")
    details = details if isinstance(details, Mapping) else {}
    cls = _BY_CODE.get(code or "", ArbotApiError)
    if cls is RateLimitExceeded:
        return RateLimitExceeded(code, message, details, status, retry_after=retry_after)
    return cls(code, message, details, status)


def error_from_response(response: httpx.Response) -> ArbotApiError:
    """The exception for an error answer: the class of its error code, or
    ``ArbotApiError`` with ``code=None`` when the body is not the error object."""
    retry_after = _int_or_none(response.headers.get("Retry-After"))
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return _from_error_object(error, response.status_code, retry_after)
    text = response.text.strip()[:200] or response.reason_phrase
    if response.status_code == 429:
        return RateLimitExceeded(None, text, {}, 429, retry_after=retry_after)
    return ArbotApiError(None, text, {}, response.status_code)


@attrs.frozen
class RateLimit:
    """The ``X-RateLimit-*`` headers of a response: the bucket's requests per minute,
    what is left of its burst, when (epoch seconds) it is full again, and its type."""

    limit: int
    remaining: int
    reset: int
    type: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        """The rate limit the headers describe, ``None`` if they do not."""
        try:
            return cls(int(headers["X-RateLimit-Limit"]),
                       int(headers["X-RateLimit-Remaining"]),
                       int(headers["X-RateLimit-Reset"]),
                       headers.get("X-RateLimit-Type", "requests"))
        except (KeyError, ValueError):
            return None


def _day(value: dt.date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d")


def _epoch(value: dt.datetime | dt.date | float | str | None) -> float | str | None:
    if value is None or isinstance(value, int | float | str):
        return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value.timestamp()


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


class ArbotClient:
    """A synchronous client for one arbotd server.

    :param base_url: the server, without the ``/api/v1`` prefix.
    :param api_key: sent as ``X-API-Key`` on every request.
    :param token: a JWT sent as ``Authorization: Bearer``; :meth:`login` sets it.
    :param timeout: seconds for connecting and for each read and write.
    :param httpx_options: passed to :class:`httpx.Client` (``verify`` for a private CA,
        ``transport`` for tests).

    Use it as a context manager, or call :meth:`close` when done.
    """

    def __init__(self, base_url: str = "http://localhost:8080", api_key: str | None = None,
                 token: str | None = None, timeout: float = 10.0,
                 **httpx_options: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.token = token
        self.rate_limit: RateLimit | None = None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, **httpx_options)

    def __enter__(self) -> ArbotClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections to the server."""
        self._http.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None) -> Any:
        """Send one request and return the decoded JSON body of a 2xx answer.

        ``path`` is relative to the base URL (``"/api/v1/status"``); parameters that are
        ``None`` are left out. Raises the :class:`ArbotApiError` of the error code
        otherwise, :class:`ConnectionFailed` when there is no answer.
        """
        return self._call(method, path, params=params, json=json)

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              json: Any = None, accept_status: int | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=query, json=json,
                                          headers=self._headers())
        except httpx.TransportError as err:
            raise ConnectionFailed(
                "CONNECTION_FAILED",
                f"{method} {self.base_url}{path}: {type(err).__name__}: {err or 'no answer'}",
            ) from err
        self.rate_limit = RateLimit.from_headers(response.headers)
        if not response.is_success and response.status_code != accept_status:
            raise error_from_response(response)
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as err:
            raise ArbotApiError(None, "The answer is not JSON", {},
                                response.status_code) from err

    def _get(self, path: str, **params: Any) -> Any:
        return self.request("GET", API_PREFIX + path, params=params)

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        return self.request(method, API_PREFIX + path, json=body)

    # System

    def get_status(self) -> dict[str, Any]:
        """``GET /status``: ``status`` (running, idle, emergency_stopped, stopping),
        ``uptime``, ``version``, ``mode``, ``exchanges`` (connected, last_update,
        latency_ms per exchange), ``active_symbols``, ``signals_last_hour``,
        ``trades_today``."""
        return self._get("/status")

    def get_health(self) -> dict[str, Any]:
        """``GET /health``: ``healthy`` and the ``checks`` (database, exchanges, memory,
        disk, config). An unhealthy server answers 503 with the same body, returned here
        rather than raised."""
        return self._call("GET", API_PREFIX + "/health", accept_status=503)

    def login(self, username: str, password: str) -> dict[str, Any]:
        """``POST /auth/login``: ``access_token``, ``token_type``, ``expires_in``,
        ``scope``. The token is kept and sent with the calls that follow."""
        body = self._send("POST", "/auth/login", {"username": username,
                                                  "password": password})
        self.token = body["access_token"]
        return body

    # Trading control

    def start_trading(self, mode: str = "live", symbols: Iterable[str] | None = None,
                      exchanges: Iterable[str] | None = None) -> dict[str, Any]:
        """``POST /trading/start`` in ``mode`` ("live", "simulation", "backtest"),
        optionally limited to ``symbols`` and ``exchanges``: ``success``, ``message``,
        ``mode``, ``start_time``, ``symbols_count``, ``exchanges_count``."""
        body: dict[str, Any] = {"mode": mode}
        if symbols is not None:
            body["symbols"] = list(symbols)
        if exchanges is not None:
            body["exchanges"] = list(exchanges)
        return self._send("POST", "/trading/start", body)

    def stop_trading(self) -> dict[str, Any]:
        """``POST /trading/stop``: ``success``, ``message``, ``stop_time``,
        ``trades_completed``, ``pending_trades``."""
        return self._send("POST", "/trading/stop")

    def get_trading_config(self) -> dict[str, Any]:
        """``GET /trading/config``: the ``arbitrage``, ``risk_management`` and
        ``exchanges`` settings."""
        return self._get("/trading/config")

    def update_trading_config(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /trading/config`` with ``changes`` shaped like :meth:`get_trading_config`
        (``{"arbitrage": {"min_profit_threshold": 0.004}}``): ``success``, ``message``,
        ``updated_fields``. An invalid value raises :class:`ValidationError` naming the
        field in ``details["field"]``."""
        return self._send("PUT", "/trading/config", dict(changes))

    # Market data

    def get_current_prices(self, symbol: str | None = None,
                           exchange: str | None = None) -> dict[str, Any]:
        """``GET /prices/current``: ``timestamp`` and ``prices`` by symbol, then exchange
        (bid, ask, bid_size, ask_size, timestamp)."""
        return self._get("/prices/current", symbol=symbol, exchange=exchange)

    def get_price_history(self, symbol: str, start_time: dt.datetime | float,
                          end_time: dt.datetime | float, exchange: str | None = None,
                          interval: str = "1m") -> dict[str, Any]:
        """``GET /prices/history`` between two times (datetimes or epoch seconds) in
        ``interval`` candles (1m, 5m, 1h, 1d): ``symbol``, ``exchange``, ``interval``,
        ``data`` (timestamp, open, high, low, close, volume)."""
        return self._get("/prices/history", symbol=symbol, exchange=exchange,
                         start_time=_epoch(start_time), end_time=_epoch(end_time),
                         interval=interval)

    def get_spreads(self, symbol: str | None = None,
                    min_profit: float | None = None) -> dict[str, Any]:
        """``GET /spreads/current``: ``timestamp`` and ``spreads`` (symbol, buy and sell
        exchange and price, spread, spread_percent, profit_after_fees, profit_percent)."""
        return self._get("/spreads/current", symbol=symbol, min_profit=min_profit)

    # Trading data

    def get_trades(self, start_date: dt.date | str | None = None,
                   end_date: dt.date | str | None = None, symbol: str | None = None,
                   status: str | None = None, limit: int = 100,
                   offset: int = 0) -> dict[str, Any]:
        """``GET /trades``, dates as ``date``/``datetime`` (sent as YYYY-MM-DD):
        ``trades``, ``total_count``, ``pagination`` (limit, offset, has_more)."""
        return self._get("/trades", start_date=_day(start_date), end_date=_day(end_date),
                         symbol=symbol, status=status, limit=limit, offset=offset)

    def get_trade(self, trade_id: int | str) -> dict[str, Any]:
        """``GET /trades/{trade_id}``: one trade with its orders, planned and actual
        prices, profit, fees, slippage and execution time. Raises :class:`NotFound`."""
        return self._get(f"/trades/{quote(str(trade_id), safe='')}")

    def get_signals(self, start_time: dt.datetime | float | None = None,
                    end_time: dt.datetime | float | None = None, symbol: str | None = None,
                    executed: bool | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        """``GET /signals`` between two times (datetimes or epoch seconds): ``signals``
        (id, symbol, exchanges, prices, profit, confidence, executed, timestamp) and
        ``total_count``."""
        return self._get("/signals", start_time=_epoch(start_time),
                         end_time=_epoch(end_time), symbol=symbol,
                         executed=_flag(executed), limit=limit)

    # Account

    def get_balances(self) -> dict[str, Any]:
        """``GET /balances``: ``timestamp``, ``balances`` by exchange then asset (free,
        locked, total) and ``total_value_usd``."""
        return self._get("/balances")

    def get_performance(self, period: str | None = None,
                        start_date: dt.date | str | None = None,
                        end_date: dt.date | str | None = None) -> dict[str, Any]:
        """``GET /performance`` for a ``period`` (day, week, month, year) or between two
        dates: ``period``, ``start_date``, ``end_date``, ``metrics``,
        ``daily_breakdown``."""
        return self._get("/performance", period=period, start_date=_day(start_date),
                         end_date=_day(end_date))

    # Advanced

    def batch_trades(self, operations: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /batch/trades`` with operations such as ``{"type": "execute_signal",
        "signal_id": 123, "quantity": 0.1}`` or ``{"type": "cancel_trade", "trade_id":
        456}``: ``results``, one per operation (operation, success, trade_id or error)."""
        return self._send("POST", "/batch/trades",
                          {"operations": [dict(op) for op in operations]})

    def analytics_query(self, query_type: str,
                        parameters: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /analytics/query``: ``query_type``, ``results``, ``execution_time_ms``."""
        return self._send("POST", "/analytics/query",
                          {"query_type": query_type, "parameters": dict(parameters)})

    # Risk

    def emergency_stop(self) -> dict[str, Any]:
        """``POST /risk/emergency-stop``: ``success``, ``message``, ``trades_cancelled``,
        ``positions_closed``, ``timestamp``."""
        return self._send("POST", "/risk/emergency-stop")

    def get_risk_limits(self) -> dict[str, Any]:
        """``GET /risk/limits``: ``limits`` with their current use, ``status`` (normal,
        warning, critical) and ``warnings``."""
        return self._get("/risk/limits")


# WebSocket


def _ws_url(url: str) -> str:
    """``ws://host/api/v1/ws`` as given; an ``http(s)://`` base URL becomes the
    WebSocket URL of that server."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path
    if parts.scheme in ("http", "https") and path.rstrip("/") in ("", API_PREFIX):
        path = API_PREFIX + "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class Subscription:
    """An open WebSocket subscription: iterate over it for the data messages
    (``{"type": "price_update" | "signal" | "trade_update", "data": {...}}``).

    Iteration ends when the server closes the socket normally; an ``error`` message
    raises the exception of its code, any other close :class:`StreamClosed`.
    """

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._pending: deque[dict[str, Any]] = deque()

    async def _receive(self) -> dict[str, Any] | None:
        """The next message, ``None`` after a normal close; raises for errors."""
        try:
            raw = await self._ws.get_message()
        except ConnectionClosed as closed:
            reason = closed.reason
            if reason is None or reason.code == 1000:
                return None
            raise StreamClosed("STREAM_CLOSED", reason.reason or reason.name,
                               {"close_code": reason.code, "reason": reason.reason}
                               ) from None
        message = orjson.loads(raw)
        if not isinstance(message, dict):
            raise ArbotApiError(None, "The server sent a message that is not an object")
        if message.get("type") == "error":
            error = message.get("error")
            raise _from_error_object(error if isinstance(error, dict) else {}, None)
        return message

    async def _expect(self, reply: str) -> dict[str, Any]:
        """Wait for the ``reply`` acknowledgement, keeping data messages for later."""
        while True:
            message = await self._receive()
            if message is None:
                raise StreamClosed("STREAM_CLOSED", f"closed before {reply!r}",
                                   {"close_code": 1000})
            if message.get("type") == reply:
                return message
            if message.get("type") in DATA_MESSAGES:
                self._pending.append(message)

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._ws.send_message(orjson.dumps(message).decode())
        except ConnectionClosed as closed:
            # The server closed first: the error message it sent before closing, if any,
            # says why (``_receive`` raises it), else the close reason does.
            while await self._receive() is not None:
                pass
            raise StreamClosed("STREAM_CLOSED", "The server closed the connection",
                               {"close_code": 1000}) from closed

    async def authenticate(self, token: str) -> dict[str, Any]:
        """Send the ``auth`` message; returns the server's ``authenticated`` reply (with
        the ``scope``). Raises :class:`Unauthorized` for a wrong token."""
        await self._send({"type": "auth", "token": token})
        return await self._expect("authenticated")

    async def subscribe(self, channel: str, symbols: Iterable[str] | None = None
                        ) -> dict[str, Any]:
        """Subscribe to ``channel`` ("prices", "signals", "trades"), only for ``symbols``
        if given; returns the ``subscribed`` reply."""
        message: dict[str, Any] = {"type": "subscribe", "channel": channel}
        if symbols is not None:
            message["symbols"] = list(symbols)
        await self._send(message)
        return await self._expect("subscribed")

    async def unsubscribe(self, channel: str) -> dict[str, Any]:
        """Stop receiving ``channel``; returns the ``unsubscribed`` reply."""
        await self._send({"type": "unsubscribe", "channel": channel})
        return await self._expect("unsubscribed")

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._pending:
            message = await self._receive()
            if message is None:
                raise StopAsyncIteration
            if message.get("type") in DATA_MESSAGES:
                return message
        return self._pending.popleft()


@asynccontextmanager
async def open_subscription(url: str, channels: Iterable[str] = ("prices",),
                            symbols: Iterable[str] | None = None, token: str | None = None,
                            ) -> AsyncIterator[Subscription]:
    """Connect to the API's WebSocket, authenticate with ``token`` (a JWT or an API key)
    when given, subscribe to ``channels`` (filtered by ``symbols`` when given) and yield
    the :class:`Subscription` to iterate over.

    ``url`` is the WebSocket URL (``ws://localhost:8080/api/v1/ws``) or the server's
    base URL (``http://localhost:8080``). Raises :class:`ConnectionFailed` when the server
    cannot be reached, the exception of the error code when it refuses the connection
    (:class:`RateLimitExceeded`), the credentials or a subscription.
    """
    target = _ws_url(url)
    symbol_list = list(symbols) if symbols is not None else None
    opened = False
    try:
        async with open_websocket_url(target) as ws:
            opened = True
            subscription = Subscription(ws)
            if token is not None:
                await subscription.authenticate(token)
            for channel in channels:
                await subscription.subscribe(channel, symbol_list)
            yield subscription
    except ConnectionRejected as rejected:
        raise _rejection(rejected) from rejected
    except (HandshakeError, OSError, trio.BrokenResourceError) as err:
        if opened:  # raised by the caller's code, or after the handshake: not ours
            raise
        raise ConnectionFailed("CONNECTION_FAILED",
                               f"{target}: {type(err).__name__}: {err}") from err


def _rejection(rejected: ConnectionRejected) -> ArbotApiError:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in rejected.headers or ()}
    response = httpx.Response(rejected.status_code, headers=headers,
                              content=rejected.body or b"")
    return error_from_response(response)
