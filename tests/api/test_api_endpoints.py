"""Every endpoint's shape against the API reference, from a running daemon."""

from __future__ import annotations

import time

import pytest
import trio
from apitools import NUMBER, assert_error, is_iso, server_factory


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


async def test_status_and_health(serve_api):
    async with serve_api() as api, api.client() as client:
        status = (await client.get("/api/v1/status")).json()
        assert set(status) == {"status", "uptime", "version", "mode", "exchanges",
                               "active_symbols", "signals_last_hour", "trades_today",
                               "premium_baselines", "currencies"}  # the last two: extras
        assert status["premium_baselines"] == {} and status["currencies"] == {}
        assert status["status"] == "idle" and status["mode"] == "simulation"
        assert set(status["exchanges"]) == {"sim_alpha", "sim_beta", "sim_gamma"}
        for feed in status["exchanges"].values():
            assert set(feed) == {"connected", "last_update", "latency_ms"}
            assert feed["connected"] is True
        assert status["active_symbols"] == 5
        assert isinstance(status["uptime"], int)

        response = await client.get("/api/v1/health")
        assert response.status_code == 200
        health = response.json()
        assert health["healthy"] is True
        checks = health["checks"]
        assert set(checks) == {"database", "exchanges", "memory", "disk", "config"}
        assert isinstance(checks["database"]["response_time_ms"], NUMBER)
        assert checks["exchanges"] == {"status": "pass", "connected_count": 3,
                                       "total_count": 3}
        assert 0 < checks["memory"]["usage_percent"] <= 100
        assert checks["disk"]["free_space_gb"] > 0


async def test_status_shows_the_krw_venue_its_rate_and_its_rolling_premium(serve_api):
    async with serve_api("[simulation.krw]\nenabled = true\n") as api, \
            api.client() as client:
        with trio.fail_after(20):
            while True:
                status = (await client.get("/api/v1/status")).json()
                premium = status["premium_baselines"].get("sim_won", {})
                if premium.get("samples"):
                    break
                await trio.sleep(0.1)
        assert status["exchanges"]["sim_won"]["connected"] is True
        assert premium["mode"] == "rolling" and premium["window_seconds"] == 1800.0
        assert 0.5 < premium["percent"] < 3.5
        won = status["currencies"]["sim_won"]
        assert (won["currency"], won["rate_symbol"], won["rate_max_age_seconds"]) == (
            "KRW", "USDTKRW", 5.0)
        assert 1_200 < won["rate"]["bid"] < won["rate"]["ask"] < 1_500
        assert set(won["quotes_without_rate"]) == {"rate_missing", "rate_stale"}


async def test_health_fails_with_503_after_a_refused_reload(serve_api):
    async with serve_api() as api, api.client() as client:
        api.config_path.write_text(api.config_path.read_text() + "\n[risk_management]\n"
                                   "max_concurrent_trades = -1\n")
        outcome = await api.runtime.reload()
        assert not outcome.ok
        response = await client.get("/api/v1/health")
        assert response.status_code == 503
        health = response.json()
        assert health["healthy"] is False
        assert health["checks"]["config"]["problems"][0]["field"] == (
            "risk_management.max_concurrent_trades")


async def test_trading_start_stop_and_status(serve_api):
    async with serve_api() as api, api.client() as client:
        response = await client.post("/api/v1/trading/start",
                                     json={"mode": "simulation", "symbols": ["BTCUSDT"]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"success", "message", "mode", "start_time", "symbols_count",
                             "exchanges_count"}
        assert body["success"] is True and body["mode"] == "simulation"
        assert body["symbols_count"] == 1 and body["exchanges_count"] == 3
        assert is_iso(body["start_time"])
        assert (await client.get("/api/v1/status")).json()["status"] == "running"

        body = (await client.post("/api/v1/trading/stop")).json()
        assert set(body) == {"success", "message", "stop_time", "trades_completed",
                             "pending_trades"}
        assert is_iso(body["stop_time"])
        assert (await client.get("/api/v1/status")).json()["status"] == "idle"

        body = (await client.post("/api/v1/risk/emergency-stop")).json()
        assert set(body) == {"success", "message", "trades_cancelled", "positions_closed",
                             "timestamp"}
        assert (await client.get("/api/v1/status")).json()["status"] == "emergency_stopped"


async def test_trading_start_errors(serve_api):
    async with serve_api() as api, api.client() as client:
        error = assert_error(await client.post("/api/v1/trading/start",
                                               json={"symbols": ["NOPE"]}),
                             400, "INVALID_SYMBOL")
        assert error["details"]["provided_symbol"] == "NOPE"
        assert "BTCUSDT" in error["details"]["valid_symbols"]
        assert_error(await client.post("/api/v1/trading/start", json={"exchanges": ["x"]}),
                     503, "EXCHANGE_NOT_AVAILABLE")
        assert_error(await client.post("/api/v1/trading/start", json={"mode": "live"}),
                     403, "TRADING_DISABLED")
        assert_error(await client.post("/api/v1/trading/start", json={"mode": "other"}),
                     400, "VALIDATION_ERROR")
        assert_error(await client.post("/api/v1/trading/start", content=b"{not json",
                                       headers={"Content-Type": "application/json"}),
                     400, "VALIDATION_ERROR")
        assert_error(await client.post("/api/v1/trading/start", json=[1]),
                     400, "VALIDATION_ERROR")
        assert_error(await client.post("/api/v1/trading/start", json={"symbols": "BTCUSDT"}),
                     400, "VALIDATION_ERROR")


async def test_backtest_fields_are_checked_in_every_mode(serve_api):
    """The other modes do not use them, but a wrong value is still a wrong request."""
    async with serve_api() as api, api.client() as client:
        for field, value in (("end_time", 253_402_300_800.0), ("start_time", -1),
                             ("balance", 0), ("balance", "much")):
            error = assert_error(await client.post("/api/v1/trading/start", json={
                "mode": "simulation", field: value}), 400, "VALIDATION_ERROR")
            assert error["details"]["field"] == field
        assert (await client.get("/api/v1/status")).json()["status"] != "running"


async def test_unknown_route_and_method(serve_api):
    async with serve_api() as api, api.client() as client:
        response = await client.get("/api/v1/nope")
        assert_error(response, 404, "NOT_FOUND")
        assert response.headers["X-RateLimit-Type"] == "requests"
        error = assert_error(await client.delete("/api/v1/status"), 405,
                             "METHOD_NOT_ALLOWED")
        assert "GET" in error["details"]["allowed_methods"]


async def test_prices_spreads_balances(serve_api):
    async with serve_api() as api, api.client() as client:
        await client.post("/api/v1/trading/start")  # funds the paper accounts
        with trio.fail_after(10):
            while len(api.runtime.engine.book.get("BTCUSDT", {})) < 3:
                await trio.sleep(0.05)
        body = (await client.get("/api/v1/prices/current")).json()
        assert set(body) == {"timestamp", "prices"}
        quote = body["prices"]["BTCUSDT"]["sim_alpha"]
        assert set(quote) == {"bid", "ask", "bid_size", "ask_size", "timestamp"}
        assert quote["bid"] < quote["ask"]
        body = (await client.get("/api/v1/prices/current",
                                 params={"symbol": "ETHUSDT", "exchange": "sim_beta"})).json()
        assert list(body["prices"]) == ["ETHUSDT"]
        assert list(body["prices"]["ETHUSDT"]) == ["sim_beta"]
        assert_error(await client.get("/api/v1/prices/current", params={"symbol": "X"}),
                     400, "INVALID_SYMBOL")
        assert_error(await client.get("/api/v1/prices/current", params={"exchange": "x"}),
                     503, "EXCHANGE_NOT_AVAILABLE")

        body = (await client.get("/api/v1/spreads/current")).json()
        assert set(body) == {"timestamp", "spreads"}
        for spread in body["spreads"]:
            assert set(spread) == {"symbol", "buy_exchange", "sell_exchange", "buy_price",
                                   "sell_price", "spread", "spread_percent",
                                   "profit_after_fees", "profit_percent"}
            assert spread["spread"] > 0 and spread["profit_after_fees"] > 0
        # min_profit is in percent, the unit of profit_percent.
        filtered = (await client.get("/api/v1/spreads/current",
                                     params={"min_profit": 0.5})).json()["spreads"]
        assert all(s["profit_percent"] >= 0.5 for s in filtered)
        assert_error(await client.get("/api/v1/spreads/current", params={"min_profit": "x"}),
                     400, "VALIDATION_ERROR")

        body = (await client.get("/api/v1/balances")).json()
        assert set(body) == {"timestamp", "balances", "total_value_usd"}
        usdt = body["balances"]["sim_alpha"]["USDT"]
        assert set(usdt) == {"free", "locked", "total"}
        assert usdt["total"] == usdt["free"] + usdt["locked"]
        assert body["total_value_usd"] > 0


def test_spread_arithmetic():
    from arbotd import Quote
    from arbotd_api.routes.market import compute_spreads

    def q(ex, bid, ask):
        return Quote(ex, "BTCUSDT", bid, ask, 1.0, 1.0, 0.0, 0.0)

    book = {"BTCUSDT": {"a": q("a", 43248.0, 43249.0), "b": q("b", 43251.0, 43252.0),
                        "c": q("c", 1.0, 2.0)}}
    [spread] = compute_spreads(book, {"a": 0.0, "b": 0.0}, {"a": True, "b": True,
                                                              "c": False}, 43249.0)
    assert spread["buy_exchange"] == "a" and spread["sell_exchange"] == "b"
    assert spread["spread"] == 2.0
    assert round(spread["spread_percent"], 4) == 0.0046
    assert spread["profit_after_fees"] == 2.0  # one coin, no fees

    # Fees, the slippage allowance and premium baselines come off, as for a signal:
    # per unit 2 - 43249 * 0.00001 - 43251 * 0.00001 - 0.00001 * 43249 = 0.70251;
    # a book that does not pay after them is not listed.
    [spread] = compute_spreads(book, {"a": 0.00001, "b": 0.00001}, {"a": True, "b": True},
                               43249.0, slippage=0.00001)
    assert spread["profit_after_fees"] == 0.70251
    assert spread["profit_percent"] == round(0.70251 / 43249 * 100, 6)
    assert compute_spreads(book, {"a": 0.0001, "b": 0.0001}, {"a": True, "b": True},
                           43249.0) == []
    # Against b's usual 0.01 % premium a -> b does not pay (b -> a now does, just).
    assert [(s["buy_exchange"], s["sell_exchange"]) for s in compute_spreads(
        book, {"a": 0.0, "b": 0.0}, {"a": True, "b": True}, 43249.0,
        premium={"b": 0.01})] == [("b", "a")]
    # b usually trades 3 % above a: at 0.007 % above it, buying on b is the opportunity,
    # though its ask is above a's bid.
    [spread] = compute_spreads(book, {"a": 0.0, "b": 0.0}, {"a": True, "b": True}, 43249.0,
                               premium={"b": 3.0})
    assert (spread["buy_exchange"], spread["sell_exchange"]) == ("b", "a")
    assert spread["spread"] == -4.0


async def test_risk_limits(serve_api):
    async with serve_api() as api, api.client() as client:
        body = (await client.get("/api/v1/risk/limits")).json()
        assert set(body) == {"limits", "status", "warnings"}
        limits = body["limits"]
        for key in ("max_drawdown_percent", "current_drawdown_percent",
                    "max_concurrent_trades", "current_active_trades", "daily_loss_limit",
                    "current_daily_loss"):
            assert isinstance(limits[key], NUMBER), key
        assert body["status"] == "normal" and body["warnings"] == []


async def test_trading_config_round_trip_keeps_comments(serve_api):
    async with serve_api() as api, api.client() as client:
        body = (await client.get("/api/v1/trading/config")).json()
        assert set(body) == {"arbitrage", "risk_management", "exchanges"}
        assert set(body["arbitrage"]) == {"min_profit_threshold", "max_position_size",
                                          "trade_amount_usd", "use_trend_filter",
                                          "trend_filter_mode"}
        assert set(body["risk_management"]) == {"max_drawdown_percent",
                                                "stop_loss_percent",
                                                "max_concurrent_trades"}
        assert body["exchanges"]["sim_alpha"] == {"enabled": True}

        response = await client.put("/api/v1/trading/config", json={
            "arbitrage": {"min_profit_threshold": 0.004},
            "risk_management": {"max_concurrent_trades": 5}})
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True,
                                   "message": "Configuration updated successfully",
                                   "updated_fields": ["min_profit_threshold",
                                                      "max_concurrent_trades"]}
        text = api.config_path.read_text()
        assert "# Keep this comment." in text and "min_profit_threshold = 0.004" in text
        assert api.runtime.config["arbitrage"].min_profit_threshold == 0.004
        body = (await client.get("/api/v1/trading/config")).json()
        assert body["risk_management"]["max_concurrent_trades"] == 5

        before = api.config_path.read_text()
        error = assert_error(await client.put("/api/v1/trading/config", json={
            "arbitrage": {"min_profit_threshold": 5}}), 400, "VALIDATION_ERROR")
        assert error["details"]["field"] == "arbitrage.min_profit_threshold"
        error = assert_error(await client.put("/api/v1/trading/config", json={
            "arbitrage": {"no_such_key": 1}}), 400, "VALIDATION_ERROR")
        assert "arbitrage" in error["details"]["field"]
        assert_error(await client.put("/api/v1/trading/config", json={"api": {"port": 1}}),
                     403, "FORBIDDEN")
        assert_error(await client.put("/api/v1/trading/config", json={}),
                     400, "VALIDATION_ERROR")
        # A null inside a list has no TOML form: a validation error, not a crash.
        error = assert_error(await client.put("/api/v1/trading/config", json={
            "arbitrage": {"symbols": ["BTCUSDT", None]}}), 400, "VALIDATION_ERROR")
        assert error["details"]["field"] == "arbitrage.symbols"
        assert api.config_path.read_text() == before


async def test_internal_error_leaks_nothing(serve_api):
    async with serve_api() as api, api.client() as client:
        def broken():
            raise RuntimeError("secret internals")

        api.runtime.control.status = broken
        response = await client.get("/api/v1/status")
        error = assert_error(response, 500, "INTERNAL_ERROR")
        assert "secret" not in response.text and error["details"] == {}


async def test_current_prices_follow_every_new_quote(serve_api):
    from arbotd import Quote

    async with serve_api() as api, api.client() as client:
        engine = api.runtime.engine

        async def shown() -> dict:
            body = (await client.get("/api/v1/prices/current")).json()
            return body["prices"]["TESTUSDT"]["sim_alpha"]

        # A symbol no simulated feed quotes, so that only this test moves its book: it
        # appears in the next answer, and each answer shows the book as it is then,
        # however often the same quote is read.
        for bid in (12345.5, 12346.25, 12347.0):
            now = time.time()
            engine.on_quote(Quote("sim_alpha", "TESTUSDT", bid, bid + 1.0, 2.0, 3.0, now, now))
            seen = await shown()
            assert seen["bid"] == bid and seen["ask"] == bid + 1.0
            assert (await shown())["bid"] == bid
