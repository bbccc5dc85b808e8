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
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import orjson

from arbotd._client_errors import (
    ArbotApiError,
    ConnectionFailed,
    ExchangeNotAvailable,
    Forbidden,
    InsufficientBalance,
    InternalError,
    InvalidSymbol,
    NotFound,
    RateLimitExceeded,
    StreamClosed,
    TradingDisabled,
    Unauthorized,
    ValidationError,
    error_from_response,
)
from arbotd._client_ws import API_PREFIX, Subscription, open_subscription

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

    # Inventory

    def get_inventory(self) -> dict[str, Any]:
        """``GET /inventory``: each traded asset on each exchange against its target
        share (``assets``), the transfers that restore the targets (``plan``), and the
        profit turned down for balance since the last recorded transfer."""
        return self._get("/inventory")

    def record_transfer(self, asset: str, source: str, destination: str, amount: float,
                        network_fee: float | None = None) -> dict[str, Any]:
        """``POST /inventory/transfers``: record a transfer carried out by hand (in
        simulation it moves the paper balances)."""
        body: dict[str, Any] = {"asset": asset, "from": source, "to": destination,
                                "amount": amount}
        if network_fee is not None:
            body["network_fee"] = network_fee
        return self._send("POST", "/inventory/transfers", body)


# WebSocket
