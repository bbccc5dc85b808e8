"""``arbotd.client`` against a running daemon with the real plugins.

The server runs in the test's trio loop, so the synchronous client runs in a thread.
Endpoints that are not served yet (the server answers 404 ``No such endpoint``) are
skipped, so that their tests run once the routes land.
"""

from __future__ import annotations

import datetime as dt
import functools
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio
from apitools import API_KEY, READ_KEY, is_iso, server_factory

from arbotd import UserStore, hash_password
from arbotd.client import (
    ArbotApiError,
    ArbotClient,
    ConnectionFailed,
    ExchangeNotAvailable,
    Forbidden,
    InsufficientBalance,
    InternalError,
    InvalidSymbol,
    NotFound,
    RateLimit,
    RateLimitExceeded,
    TradingDisabled,
    Unauthorized,
    ValidationError,
    open_subscription,
)

AUTH = "auth_required = true\n"


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


async def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a client method in a thread: the server needs the trio loop meanwhile."""
    return await trio.to_thread.run_sync(functools.partial(method, *args, **kwargs))


async def call_served(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Like :func:`call`, skipping the test while the server has no such route."""
    try:
        return await call(method, *args, **kwargs)
    except NotFound as err:
        if err.message == "No such endpoint":
            pytest.skip(f"{method.__name__}: the route is not served yet (404 NOT_FOUND)")
        raise


async def test_sdk_usage_pattern(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url) as client:
            status = await call(client.get_status)
            assert status["status"] == "idle"
            assert client.rate_limit is not None
            assert client.rate_limit.type == "requests"
            assert client.rate_limit.remaining < client.rate_limit.limit

            result = await call(client.start_trading, mode="simulation")
            assert result["success"] is True and result["mode"] == "simulation"
            assert (await call(client.get_status))["status"] == "running"

            recent = await call_served(client.get_trades,
                                       start_date=dt.datetime.now() - dt.timedelta(days=1),
                                       limit=50)
            assert isinstance(recent["trades"], list)
            assert recent["pagination"]["limit"] == 50


async def test_control_and_market_endpoints(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url, api_key=API_KEY) as client:
            assert (await call(client.get_health))["healthy"] is True
            body = await call(client.start_trading, mode="simulation", symbols=["BTCUSDT"],
                              exchanges=["sim_alpha", "sim_beta"])
            assert body["symbols_count"] == 1 and body["exchanges_count"] == 2
            with trio.fail_after(10):
                while len(api.runtime.engine.book.get("ETHUSDT", {})) < 3:
                    await trio.sleep(0.05)
            prices = await call(client.get_current_prices, "ETHUSDT", exchange="sim_beta")
            assert list(prices["prices"]) == ["ETHUSDT"]
            assert list(prices["prices"]["ETHUSDT"]) == ["sim_beta"]
            assert "spreads" in await call(client.get_spreads, symbol="BTCUSDT",
                                           min_profit=0.0)
            assert "total_value_usd" in await call(client.get_balances)
            assert set(await call(client.get_risk_limits)) == {"limits", "status",
                                                               "warnings"}
            stopped = await call(client.stop_trading)
            assert stopped["success"] is True and is_iso(stopped["stop_time"])

            config = await call(client.get_trading_config)
            assert config["arbitrage"]["min_profit_threshold"] == 0.002
            changed = await call(client.update_trading_config,
                                 {"arbitrage": {"min_profit_threshold": 0.004}})
            assert changed["updated_fields"] == ["min_profit_threshold"]
            with pytest.raises(ValidationError) as invalid:
                await call(client.update_trading_config,
                           {"arbitrage": {"min_profit_threshold": 5}})
            assert invalid.value.details["field"] == "arbitrage.min_profit_threshold"

            assert (await call(client.emergency_stop))["success"] is True
            assert (await call(client.get_status))["status"] == "emergency_stopped"


async def test_typed_errors_from_the_error_object(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url) as client:
            with pytest.raises(InvalidSymbol) as invalid:
                await call(client.get_current_prices, "NOPE")
            err = invalid.value
            assert err.code == "INVALID_SYMBOL" and err.status == 400
            assert err.details["provided_symbol"] == "NOPE"
            assert "BTCUSDT" in err.details["valid_symbols"]
            assert isinstance(err, ArbotApiError) and "NOPE" in str(err)

            with pytest.raises(ExchangeNotAvailable) as unavailable:
                await call(client.get_current_prices, exchange="nowhere")
            assert unavailable.value.status == 503

            with pytest.raises(ValidationError) as invalid_mode:
                await call(client.start_trading, mode="bad")
            assert invalid_mode.value.status == 400

            with pytest.raises(TradingDisabled):
                await call(client.start_trading, mode="live")

            with pytest.raises(NotFound) as missing:
                await call(client.request, "GET", "/api/v1/nope")
            assert missing.value.status == 404
            # Error answers carry the rate-limit headers too.
            assert client.rate_limit is not None

            with pytest.raises(ArbotApiError) as not_allowed:
                await call(client.request, "DELETE", "/api/v1/status")
            assert not_allowed.value.code == "METHOD_NOT_ALLOWED"


async def test_unauthorized_and_forbidden(serve_api):
    async with serve_api(AUTH) as api:
        with ArbotClient(api.url) as anonymous:
            with pytest.raises(Unauthorized) as missing:
                await call(anonymous.get_status)
            assert missing.value.status == 401
        with ArbotClient(api.url, api_key="wrong-key") as wrong, \
                pytest.raises(Unauthorized):
            await call(wrong.get_status)
        with ArbotClient(api.url, api_key=READ_KEY) as reader:
            assert (await call(reader.get_status))["status"] == "idle"
            with pytest.raises(Forbidden) as forbidden:
                await call(reader.start_trading, mode="simulation")
            assert forbidden.value.status == 403
            assert forbidden.value.details["required_scope"] == "trading"


async def test_rate_limit_exceeded_has_retry_after(serve_api):
    async with serve_api("write_per_minute = 60\nwrite_burst = 1\n") as api:
        with ArbotClient(api.url) as client:
            await call(client.stop_trading)
            assert client.rate_limit == RateLimit(60, 0, client.rate_limit.reset, "requests")
            with pytest.raises(RateLimitExceeded) as limited:
                await call(client.stop_trading)
            assert limited.value.status == 429
            assert limited.value.retry_after is not None and limited.value.retry_after >= 1
            assert limited.value.details["type"] == "write"
            # Reads have their own bucket.
            await call(client.get_status)


async def test_connection_failed_on_a_closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ArbotClient(f"http://127.0.0.1:{port}", timeout=2.0) as client, \
            pytest.raises(ConnectionFailed) as failed:
        await call(client.get_status)
    assert isinstance(failed.value.__cause__, httpx.ConnectError)
    assert failed.value.status is None and f"127.0.0.1:{port}" in str(failed.value)
    with pytest.raises(ConnectionFailed):
        async with open_subscription(f"ws://127.0.0.1:{port}/api/v1/ws"):
            pass


def test_error_bodies_without_a_server():
    answers = {
        "/api/v1/balances": httpx.Response(400, json={"error": {
            "code": "INSUFFICIENT_BALANCE", "message": "low", "details": {"asset": "USDT"},
            "timestamp": "2024-01-01T12:00:00Z"}}),
        "/api/v1/status": httpx.Response(500, json={"error": {
            "code": "INTERNAL_ERROR", "message": "Internal server error", "details": {},
            "timestamp": "2024-01-01T12:00:00Z"}}),
        "/api/v1/risk/limits": httpx.Response(502, text="<html>Bad Gateway</html>"),
        "/api/v1/spreads/current": httpx.Response(429, text="slow down",
                                                  headers={"Retry-After": "7"}),
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path in answers:
            return answers[request.url.path]
        return httpx.Response(200, json={"ok": True})

    with ArbotClient("http://arbot.test", api_key="k", token="t",
                     transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(InsufficientBalance) as low:
            client.get_balances()
        assert low.value.details == {"asset": "USDT"}
        with pytest.raises(InternalError):
            client.get_status()
        with pytest.raises(ArbotApiError) as gateway:
            client.get_risk_limits()
        assert type(gateway.value) is ArbotApiError
        assert gateway.value.status == 502 and gateway.value.code is None
        with pytest.raises(RateLimitExceeded) as limited:
            client.get_spreads()
        assert limited.value.retry_after == 7
        assert client.rate_limit is None

        client.get_trades(start_date=dt.date(2024, 1, 1),
                          end_date=dt.datetime(2024, 1, 31, 23, 59), status="completed")
        client.get_signals(start_time=1640995200, executed=False)
        client.get_price_history("BTCUSDT", dt.datetime(2022, 1, 1, tzinfo=dt.UTC),
                                 1640998800.0, interval="1h")
        client.get_trade("12/3")
    trades, signals, history, trade = (r.url for r in seen[-4:])
    assert trades.params["start_date"] == "2024-01-01"
    assert trades.params["end_date"] == "2024-01-31"
    assert trades.params["limit"] == "100" and trades.params["offset"] == "0"
    assert "symbol" not in trades.params
    assert signals.params["executed"] == "false" and "limit" not in signals.params
    assert float(history.params["start_time"]) == 1640995200.0
    assert history.params["interval"] == "1h"
    assert trade.raw_path == b"/api/v1/trades/12%2F3"
    assert seen[-1].headers["X-API-Key"] == "k"
    assert seen[-1].headers["Authorization"] == "Bearer t"


async def test_login_stores_the_token(serve_api):
    async with serve_api(AUTH) as api:
        storage = api.runtime.storage
        assert isinstance(storage, UserStore)
        await storage.add_user("admin", hash_password("pw"), "trading")
        with ArbotClient(api.url) as client:
            with pytest.raises(Unauthorized):
                await call(client.login, "admin", "wrong")
            assert client.token is None
            body = await call(client.login, "admin", "pw")
            assert body["scope"] == "trading" and client.token == body["access_token"]
            assert (await call(client.get_status))["status"] == "idle"
            assert (await call(client.stop_trading))["success"] is True
        with ArbotClient(api.url, token=body["access_token"]) as again:
            assert (await call(again.get_risk_limits))["status"] == "normal"
        async with open_subscription(api.url, channels=["prices"],
                                     token=body["access_token"]) as sub:
            with trio.fail_after(10):
                message = await sub.__anext__()
            assert message["type"] == "price_update"


async def test_subscription_filters_prices_by_symbol(serve_api):
    async with serve_api() as api:
        url = api.url.replace("http", "ws", 1) + "/api/v1/ws"
        async with open_subscription(url, channels=["prices"], symbols=["ETHUSDT"]) as sub:
            received = []
            with trio.fail_after(10):
                async for message in sub:
                    received.append(message)
                    if len(received) == 5:
                        break
            assert {m["type"] for m in received} == {"price_update"}
            assert {m["data"]["symbol"] for m in received} == {"ETHUSDT"}
            assert (await sub.unsubscribe("prices"))["channel"] == "prices"
            with pytest.raises(ValidationError):
                await sub.subscribe("weather")


async def test_subscription_auth(serve_api):
    async with serve_api(AUTH) as api:
        with pytest.raises(Unauthorized):
            async with open_subscription(api.url, token="wrong-key"):
                pass
        with pytest.raises(Unauthorized):
            async with open_subscription(api.url):  # no auth message at all
                pass
        async with open_subscription(api.url, channels=["prices", "signals"],
                                     token=API_KEY) as sub:
            with trio.fail_after(10):
                message = await sub.__anext__()
            assert message["type"] == "price_update"


async def test_subscription_refused_by_the_rate_limit(serve_api):
    async with serve_api("ws_burst = 1\n") as api:
        async with open_subscription(api.url):
            pass
        with pytest.raises(RateLimitExceeded) as limited:
            async with open_subscription(api.url):
                pass
        assert limited.value.status == 429 and limited.value.retry_after


# Endpoints being written now: skipped while the server answers 404 for the route.


async def test_trades_and_trade(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url) as client:
            body = await call_served(client.get_trades, symbol="BTCUSDT", status="completed",
                                     limit=10, offset=0)
            assert set(body) == {"trades", "total_count", "pagination"}
            with pytest.raises(NotFound) as missing:
                await call_served(client.get_trade, 10**9)
            assert missing.value.message != "No such endpoint"


async def test_price_history(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url) as client:
            now = dt.datetime.now(dt.UTC)
            body = await call_served(client.get_price_history, "BTCUSDT",
                                     now - dt.timedelta(hours=1), now, interval="1m")
            assert {"symbol", "interval", "data"} <= set(body)
            assert isinstance(body["data"], list)


async def test_signals(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url) as client:
            body = await call_served(client.get_signals, symbol="BTCUSDT", executed=True,
                                     limit=10)
            assert set(body) == {"signals", "total_count"}


async def test_performance(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url) as client:
            body = await call_served(client.get_performance, period="day")
            assert {"period", "start_date", "end_date", "metrics",
                    "daily_breakdown"} <= set(body)


async def test_batch_trades(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url) as client:
            body = await call_served(client.batch_trades,
                                     [{"type": "cancel_trade", "trade_id": 10**9}])
            [result] = body["results"]
            assert result["success"] is False


async def test_analytics_query(serve_api):
    async with serve_api() as api:
        with ArbotClient(api.url) as client:
            body = await call_served(client.analytics_query, "symbol_performance",
                                     {"symbols": ["BTCUSDT"], "metrics": ["profit"]})
            assert {"query_type", "results", "execution_time_ms"} <= set(body)
