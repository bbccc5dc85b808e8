"""History, performance, analytics and batch endpoints against a running daemon whose sql
storage (SQLite in the state directory) holds rows written here through the models."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest
import trio
from apitools import NUMBER, READ_KEY, assert_error, is_iso, server_factory

from arbotd import HistoryStore, Signal, TradeState
from arbotd_sql.models import Bar, FillRecord, OrderRecord, SignalRecord, TradeRecord

D = Decimal
DAY1 = 1_704_067_200.0  # 2024-01-01T00:00:00Z
DAY2 = DAY1 + 86_400
BASE = 900_000  # ids far from those the running daemon gives its own signals and trades

TRADE_FIELDS = {"id", "symbol", "buy_exchange", "sell_exchange", "quantity",
                "planned_profit", "actual_profit", "fees_paid", "status", "started_at",
                "completed_at"}
DETAIL_FIELDS = {"id", "signal_id", "symbol", "buy_exchange", "sell_exchange",
                 "buy_order_id", "sell_order_id", "planned_buy_price", "planned_sell_price",
                 "actual_buy_price", "actual_sell_price", "quantity", "planned_profit",
                 "actual_profit", "fees_paid", "slippage", "status", "started_at",
                 "completed_at", "execution_time_ms"}
SIGNAL_FIELDS = {"id", "symbol", "buy_exchange", "sell_exchange", "buy_price", "sell_price",
                 "profit", "profit_percent", "confidence", "executed", "reject_reason",
                 "timestamp"}
METRICS = {"total_trades", "successful_trades", "win_rate", "total_profit", "total_fees",
           "net_profit", "avg_profit_per_trade", "max_profit", "max_loss",
           "avg_execution_time_seconds", "sharpe_ratio", "max_drawdown_percent",
           "profit_factor"}


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


NATIVE_FIELDS = {"buy_native_price", "sell_native_price", "buy_rate", "sell_rate"}


def _trade(number: int, symbol: str, state: str, started: float, *, profit: str | None,
           fees: str | None, mode: str = "simulation", filled: bool = True,
           krw: bool = False) -> None:
    """``krw``: the buy leg is on a venue quoted in KRW, at a rate of 1,350."""
    trade_id = BASE + number
    rate = D("1350") if krw else None
    TradeRecord.create(
        id=trade_id, signal_id=BASE + 100 + number, mode=mode, symbol=symbol,
        buy_exchange="sim_alpha", sell_exchange="sim_beta", quantity=D("0.1"),
        planned_buy_price=D("100"), planned_sell_price=D("101"), planned_profit=D("0.1"),
        actual_profit=None if profit is None else D(profit),
        fees_paid=None if fees is None else D(fees), state=state, started_at=started,
        completed_at=started + 10 * number, buy_rate=rate,
        buy_native_price=D("135000") if krw else None,
    )
    for position, (leg, side, exchange) in enumerate((("b", "buy", "sim_alpha"),
                                                      ("s", "sell", "sim_beta"))):
        native = krw and side == "buy"
        OrderRecord.create(
            client_order_id=f"arb{trade_id}{leg}", trade=trade_id, exchange=exchange,
            symbol=symbol, side=side, price=D("100"), quantity=D("0.1"),
            status="filled" if filled else "expired",
            filled_quantity=D("0.1") if filled else D("0"), exchange_order_id=None,
            purpose="entry", position=position,
            native_price=D("135000") if native else None, rate=rate if native else None,
        )
        if filled:
            FillRecord.create(
                order_id=f"arb{trade_id}{leg}", seq=0, trade=trade_id, exchange=exchange,
                symbol=symbol, side=side, price=D("100"), quantity=D("0.1"),
                fee=D("13.5") if native else D("0.01"), fee_asset="KRW" if native else "USDT",
                fee_value=D("0.01") if native else None, timestamp=started + 5,
                position=position, native_price=D("135000") if native else None,
                native_asset="KRW" if native else None,
            )


def insert_history() -> None:
    """Runs in the storage's reader thread (``storage.read``), with a connection."""
    # Simulation: +3 (fees 0.2) and -1 (fees 0.1) counted; a failed attempt without
    # fills is listed but not counted; a live trade never counts in simulation mode.
    _trade(1, "BTCUSDT", "completed", DAY1 + 3600, profit="3", fees="0.2", krw=True)
    _trade(2, "BTCUSDT", "failed", DAY1 + 7200, profit=None, fees=None, filled=False)
    _trade(3, "ETHUSDT", "completed", DAY2 + 3600, profit="-1", fees="0.1")
    _trade(4, "ETHUSDT", "completed", DAY2 + 7200, profit="100", fees="1", mode="live")
    for number in range(1, 6):
        SignalRecord.create(
            id=BASE + number, timestamp=DAY1 + number * 60, symbol="BTCUSDT" if number % 2
            else "ETHUSDT", buy_exchange="sim_alpha", sell_exchange="sim_beta",
            buy_price=100.0, sell_price=101.0, quantity=0.1, profit=0.05,
            profit_percent=0.5, spread_percent=1.0, fees=0.05, confidence=0.85,
            executed=number <= 2,
        )
    for minute in range(10):  # 10 one-minute bars from 00:00 to 00:09
        Bar.create(symbol="BTCUSDT", exchange="sim_alpha", minute=int(DAY1) + minute * 60,
                   open=100.0 + minute, high=110.0 + minute, low=90.0 + minute,
                   close=101.0 + minute, volume=1.0)


async def _loaded(api) -> None:
    storage = api.runtime.storage
    assert isinstance(storage, HistoryStore)
    await storage.read(insert_history)


async def test_trades_list_filters_and_pagination(serve_api):
    async with serve_api() as api, api.client() as client:
        await _loaded(api)
        query = {"start_date": "2024-01-01", "end_date": "2024-01-02"}
        response = await client.get("/api/v1/trades", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"trades", "total_count", "pagination"}
        assert body["total_count"] == 4
        assert body["pagination"] == {"limit": 100, "offset": 0, "has_more": False}
        assert [t["id"] for t in body["trades"]] == [BASE + 4, BASE + 3, BASE + 2, BASE + 1]
        for trade in body["trades"]:
            # extras: the planned quantity, and the native prices and rates of a leg on
            # a venue quoted in another currency
            assert set(trade) == TRADE_FIELDS | {"planned_quantity", *NATIVE_FIELDS}
            assert isinstance(trade["quantity"], float) and is_iso(trade["started_at"])
        first = body["trades"][-1]
        assert first["status"] == "completed" and first["actual_profit"] == 3.0
        assert (first["buy_native_price"], first["buy_rate"]) == (135_000.0, 1350.0)
        assert (first["sell_native_price"], first["sell_rate"]) == (None, None)
        assert body["trades"][0]["buy_rate"] is None
        assert first["started_at"] == "2024-01-01T01:00:00Z"

        page = (await client.get("/api/v1/trades",
                                 params={**query, "limit": 2, "offset": 1})).json()
        assert [t["id"] for t in page["trades"]] == [BASE + 3, BASE + 2]
        assert page["pagination"] == {"limit": 2, "offset": 1, "has_more": True}
        assert page["total_count"] == 4

        only = (await client.get("/api/v1/trades",
                                 params={**query, "symbol": "ETHUSDT"})).json()
        assert {t["id"] for t in only["trades"]} == {BASE + 3, BASE + 4}
        failed = (await client.get("/api/v1/trades", params={"status": "failed"})).json()
        assert [t["id"] for t in failed["trades"]] == [BASE + 2]
        day = (await client.get("/api/v1/trades", params={"end_date": "2024-01-01"})).json()
        assert {t["id"] for t in day["trades"]} == {BASE + 1, BASE + 2}


@pytest.mark.parametrize(("params", "field"), [
    ({"start_date": "2024-1-1"}, "start_date"),
    ({"end_date": "2024-02-30"}, "end_date"),
    ({"start_date": "2024-01-03", "end_date": "2024-01-02"}, "start_date"),
    ({"status": "done"}, "status"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"),
])
async def test_trades_validation(serve_api, params, field):
    async with serve_api() as api, api.client() as client:
        error = assert_error(await client.get("/api/v1/trades", params=params), 400,
                             "VALIDATION_ERROR")
        assert error["details"]["field"] == field


async def test_trade_detail_and_not_found(serve_api):
    async with serve_api() as api, api.client() as client:
        await _loaded(api)
        response = await client.get(f"/api/v1/trades/{BASE + 1}")
        assert response.status_code == 200, response.text
        trade = response.json()
        # extras of the query
        assert set(trade) == DETAIL_FIELDS | {"mode", "reason", "legs", "planned_quantity",
                                              "buy_limit", "sell_limit", *NATIVE_FIELDS}
        assert trade["signal_id"] == BASE + 101
        buy, sell = trade["legs"]
        assert (buy["native_price"], buy["rate"]) == (135_000.0, 1350.0)
        assert (sell["native_price"], sell["rate"]) == (None, None)
        assert (buy["fills"][0]["native_price"], buy["fills"][0]["native_asset"]) == (
            135_000.0, "KRW")
        assert trade["buy_order_id"] == f"arb{BASE + 1}b"
        assert trade["execution_time_ms"] == 10_000
        assert trade["status"] == "completed" and is_iso(trade["completed_at"])

        error = assert_error(await client.get("/api/v1/trades/123456789"), 404, "NOT_FOUND")
        assert error["details"] == {"trade_id": 123456789}
        for bad in ("abc", "0", "-3", "1.5", "99999999999999999999"):
            error = assert_error(await client.get(f"/api/v1/trades/{bad}"), 400,
                                 "VALIDATION_ERROR")
            assert error["details"]["field"] == "trade_id"

        error = assert_error(await client.get("/api/v1/trades", params={"symbol": "DOGE"}),
                             400, "INVALID_SYMBOL")
        assert "BTCUSDT" in error["details"]["valid_symbols"]
        assert error["details"]["provided_symbol"] == "DOGE"


async def test_signals(serve_api):
    async with serve_api() as api, api.client() as client:
        await _loaded(api)
        window = {"start_time": DAY1, "end_time": DAY1 + 3600}
        body = (await client.get("/api/v1/signals", params=window)).json()
        assert set(body) == {"signals", "total_count"}
        assert body["total_count"] == 5
        assert [s["id"] for s in body["signals"]] == [BASE + n for n in (5, 4, 3, 2, 1)]
        for signal in body["signals"]:
            # extras: the quantity the prices are the VWAPs of, the limit prices, and the
            # threshold the signal was held to
            # and, on venues quoted in another currency, the native prices and rates
            assert set(signal) == SIGNAL_FIELDS | {"quantity", "buy_limit", "sell_limit",
                                                   "threshold", "threshold_reason",
                                                   *NATIVE_FIELDS}
            assert isinstance(signal["executed"], bool)
            assert isinstance(signal["timestamp"], NUMBER)

        executed = (await client.get("/api/v1/signals",
                                     params={**window, "executed": "true"})).json()
        assert {s["id"] for s in executed["signals"]} == {BASE + 1, BASE + 2}
        not_executed = (await client.get("/api/v1/signals",
                                         params={**window, "executed": "false"})).json()
        assert not_executed["total_count"] == 3
        eth = (await client.get("/api/v1/signals",
                                params={**window, "symbol": "ETHUSDT", "limit": 1})).json()
        assert eth["total_count"] == 2 and [s["id"] for s in eth["signals"]] == [BASE + 4]
        narrow = (await client.get("/api/v1/signals", params={
            "start_time": DAY1 + 120, "end_time": DAY1 + 180})).json()
        assert {s["id"] for s in narrow["signals"]} == {BASE + 2, BASE + 3}

        for params, field in (({"executed": "yes"}, "executed"),
                              ({"start_time": "x"}, "start_time"),
                              ({"start_time": "-5"}, "start_time"),
                              ({"start_time": "10", "end_time": "5"}, "start_time"),
                              ({"limit": "5000"}, "limit")):
            error = assert_error(await client.get("/api/v1/signals", params=params), 400,
                                 "VALIDATION_ERROR")
            assert error["details"]["field"] == field


async def test_price_history(serve_api):
    async with serve_api() as api, api.client() as client:
        await _loaded(api)
        params = {"symbol": "BTCUSDT", "start_time": DAY1, "end_time": DAY1 + 540}
        body = (await client.get("/api/v1/prices/history", params=params)).json()
        assert set(body) == {"symbol", "exchange", "interval", "data"}
        assert body["symbol"] == "BTCUSDT" and body["exchange"] == "sim_alpha"
        assert body["interval"] == "1m" and len(body["data"]) == 10
        candle = body["data"][0]
        assert set(candle) == {"timestamp", "open", "high", "low", "close", "volume"}
        assert candle == {"timestamp": int(DAY1), "open": 100.0, "high": 110.0, "low": 90.0,
                          "close": 101.0, "volume": 1.0}

        five = (await client.get("/api/v1/prices/history", params={
            **params, "interval": "5m", "exchange": "sim_alpha"})).json()
        assert [c["timestamp"] for c in five["data"]] == [int(DAY1), int(DAY1) + 300]
        assert five["data"][0] == {"timestamp": int(DAY1), "open": 100.0, "high": 114.0,
                                   "low": 90.0, "close": 105.0, "volume": 5.0}
        other = (await client.get("/api/v1/prices/history", params={
            **params, "exchange": "sim_beta"})).json()
        assert other["exchange"] == "sim_beta" and other["data"] == []

        url = "/api/v1/prices/history"
        for query, field in (({"start_time": DAY1, "end_time": DAY1}, "symbol"),
                             ({"symbol": "BTCUSDT", "end_time": DAY1}, "start_time"),
                             ({"symbol": "BTCUSDT", "start_time": DAY1}, "end_time"),
                             ({**params, "interval": "2m"}, "interval"),
                             ({**params, "end_time": DAY1 + 60 * 10_000}, "interval")):
            error = assert_error(await client.get(url, params=query), 400, "VALIDATION_ERROR")
            assert error["details"]["field"] == field
        # 10,000 one-minute candles is the most one answer holds.
        ok = await client.get(url, params={**params, "end_time": DAY1 + 60 * 9_999})
        assert ok.status_code == 200
        assert_error(await client.get(url, params={**params, "symbol": "NOPE"}), 400,
                     "INVALID_SYMBOL")
        error = assert_error(await client.get(url, params={**params, "exchange": "nope"}),
                             503, "EXCHANGE_NOT_AVAILABLE")
        assert error["details"]["available_exchanges"] == ["sim_alpha", "sim_beta",
                                                           "sim_gamma"]


async def test_performance_counts_the_current_mode_only(serve_api):
    async with serve_api() as api, api.client() as client:
        await _loaded(api)
        response = await client.get("/api/v1/performance", params={
            "start_date": "2024-01-01", "end_date": "2024-01-02"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"period", "start_date", "end_date", "metrics", "notes",
                             "daily_breakdown"}
        assert body["period"] == "custom"
        assert (body["start_date"], body["end_date"]) == ("2024-01-01", "2024-01-02")
        metrics = body["metrics"]
        assert set(metrics) == METRICS | {"sortino_ratio"}  # an extra
        assert metrics["total_trades"] == 2  # the live trade and the unfilled one left out
        assert metrics["successful_trades"] == 1 and metrics["win_rate"] == 50.0
        assert metrics["net_profit"] == 2.0
        assert [d["date"] for d in body["daily_breakdown"]] == ["2024-01-01", "2024-01-02"]

        week = (await client.get("/api/v1/performance", params={"period": "week"})).json()
        assert week["period"] == "week" and week["metrics"]["total_trades"] == 0
        # The ISO week containing today, Monday to Sunday.
        today = dt.datetime.now(dt.UTC).date()
        monday = today - dt.timedelta(days=today.weekday())
        assert (week["start_date"], week["end_date"]) == (
            monday.isoformat(), (monday + dt.timedelta(days=6)).isoformat())
        default = (await client.get("/api/v1/performance")).json()
        assert default["period"] == "month"

        for params, field in (({"period": "decade"}, "period"),
                              ({"period": "day", "start_date": "2024-01-01"}, "period"),
                              ({"start_date": "01/01/2024"}, "start_date"),
                              ({"start_date": "2024-01-05", "end_date": "2024-01-01"},
                               "start_date")):
            error = assert_error(await client.get("/api/v1/performance", params=params), 400,
                                 "VALIDATION_ERROR")
            assert error["details"]["field"] == field


async def test_analytics_query(serve_api):
    async with serve_api() as api, api.client(headers={"X-API-Key": READ_KEY}) as client:
        await _loaded(api)
        query = {"query_type": "symbol_performance", "parameters": {
            "symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT"], "start_date": "2024-01-01",
            "end_date": "2024-01-31", "metrics": ["profit", "win_rate", "volume"]}}
        response = await client.post("/api/v1/analytics/query", json=query)
        assert response.status_code == 200, response.text  # a read: the read scope will do
        assert response.headers["X-RateLimit-Limit"] == "1000"  # the read limit
        body = response.json()
        assert set(body) == {"query_type", "results", "execution_time_ms"}
        assert body["query_type"] == "symbol_performance"
        assert isinstance(body["execution_time_ms"], int)
        assert body["results"] == {
            "BTCUSDT": {"profit": 3.0, "win_rate": 100.0, "volume": 0.1},
            "ETHUSDT": {"profit": -1.0, "win_rate": 0.0, "volume": 0.1},
            "SOLUSDT": {"profit": 0.0, "win_rate": 0.0, "volume": 0.0},
        }
        everything = (await client.post("/api/v1/analytics/query", json={
            "query_type": "symbol_performance", "parameters": {"metrics": ["profit"]}})).json()
        assert everything["results"] == {"BTCUSDT": {"profit": 3.0},
                                         "ETHUSDT": {"profit": -1.0}}

        error = assert_error(await client.post("/api/v1/analytics/query", json={
            "query_type": "sql"}), 400, "VALIDATION_ERROR")
        assert error["details"]["field"] == "query_type"
        assert error["details"]["supported"] == ["symbol_performance"]
        for parameters, field in (({"metrics": ["profit", "luck"]}, "parameters.metrics"),
                                  ({"metrics": "profit"}, "parameters.metrics"),
                                  ({"symbols": []}, "parameters.symbols"),
                                  ({"start_date": "yesterday"}, "parameters.start_date"),
                                  ({"start_date": "2024-02-01", "end_date": "2024-01-01"},
                                   "parameters.start_date"),
                                  ({"limit": 3}, "parameters.limit")):
            error = assert_error(await client.post("/api/v1/analytics/query", json={
                "query_type": "symbol_performance", "parameters": parameters}), 400,
                "VALIDATION_ERROR")
            assert error["details"]["field"] == field
        error = assert_error(await client.post("/api/v1/analytics/query", json={
            "query_type": "symbol_performance", "parameters": {"symbols": ["FOO"]}}), 400,
            "INVALID_SYMBOL")
        assert error["details"]["provided_symbol"] == "FOO"
        assert_error(await client.post("/api/v1/analytics/query", content=b"[1]"), 400,
                     "VALIDATION_ERROR")


def _signal(api, signal_id: int, *, age: float = 0.0) -> Signal:
    engine, control = api.runtime.engine, api.runtime.control
    alpha, beta = engine.book["BTCUSDT"]["sim_alpha"], engine.book["BTCUSDT"]["sim_beta"]
    return Signal(
        id=signal_id, symbol="BTCUSDT", buy_exchange="sim_alpha", sell_exchange="sim_beta",
        buy_price=alpha.ask, sell_price=beta.bid, buy_size=alpha.ask_size,
        sell_size=beta.bid_size, quantity=0.001, profit=0.01, profit_percent=0.1,
        spread_percent=0.1, fees=0.001, confidence=0.9, timestamp=control.clock() - age,
        price_tolerance=0.01,
    )


async def test_batch_trades(serve_api):
    async with serve_api() as api, api.client() as client:
        await _loaded(api)
        engine, control = api.runtime.engine, api.runtime.control
        with trio.fail_after(10):
            while not {"sim_alpha", "sim_beta"} <= set(engine.book.get("BTCUSDT", {})):
                await trio.sleep(0.05)
        engine.last_signals.append(_signal(api, 10**9))
        operation = {"type": "execute_signal", "signal_id": 10**9, "quantity": 0.0005}
        body = (await client.post("/api/v1/batch/trades",
                                  json={"operations": [operation]})).json()
        assert body == {"results": [{"operation": 1, "success": False,
                                     "error": "Trading is not started"}]}

        started = await client.post("/api/v1/trading/start", json={"mode": "simulation"})
        assert started.status_code == 200, started.text
        engine.last_signals.append(_signal(api, 10**9 + 1, age=30))
        engine.last_signals.append(_signal(api, 10**9 + 2))
        response = await client.post("/api/v1/batch/trades", json={"operations": [
            operation,
            {"type": "execute_signal", "signal_id": 10**9 + 1},
            {"type": "execute_signal", "signal_id": 12345678},
            {"type": "execute_signal", "signal_id": 10**9 + 2, "quantity": 5.0},
            {"type": "cancel_trade", "trade_id": BASE + 1},
            {"type": "cancel_trade", "trade_id": 77777777},
            operation,
        ]})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["operation"] for r in results] == list(range(1, 8))
        executed = results[0]
        assert executed["success"] is True, executed
        assert set(executed) == {"operation", "success", "trade_id"}
        trade = control.recent_trades[executed["trade_id"]]
        assert trade.signal_id == 10**9 and trade.quantity == D("0.0005")
        assert [{k: v for k, v in r.items() if k != "operation"} for r in results[1:]] == [
            {"success": False, "error": "Signal expired"},
            {"success": False, "error": "Signal not found"},
            {"success": False, "error": "Quantity exceeds the signal's quantity (0.001)"},
            {"success": False, "error": "Trade already finished"},
            {"success": False, "error": "Trade not found"},
            {"success": False, "error": "Signal already executed"},
        ]

        await control.wait_idle()
        body = (await client.post("/api/v1/batch/trades", json={"operations": [
            {"type": "cancel_trade", "trade_id": executed["trade_id"]}]})).json()
        assert body["results"] == [{"operation": 1, "success": False,
                                    "error": "Trade already finished"}]

        # Refused by the control's checks: the reason is the answer.
        engine.last_signals.append(attrs.evolve(_signal(api, 10**9 + 3), quantity=10**6))
        body = (await client.post("/api/v1/batch/trades", json={"operations": [
            {"type": "execute_signal", "signal_id": 10**9 + 3}]})).json()
        result = body["results"][0]
        assert result["success"] is False and result["error"].startswith("Signal rejected: ")


async def test_batch_cancels_a_trade_in_flight_and_names_a_shortfall(serve_api):
    """A paper trade whose orders wait out their fill delay is cancelled; a signal the
    balances cannot cover is refused with INSUFFICIENT_BALANCE and what is short."""
    extra = "\n[simulation.paper]\nfill_delay_seconds = 5.0\n"
    async with serve_api(extra) as api, api.client() as client:
        await _loaded(api)
        engine, control = api.runtime.engine, api.runtime.control
        with trio.fail_after(10):
            while not {"sim_alpha", "sim_beta"} <= set(engine.book.get("BTCUSDT", {})):
                await trio.sleep(0.05)
        started = await client.post("/api/v1/trading/start", json={"mode": "simulation"})
        assert started.status_code == 200, started.text
        engine.last_signals.append(_signal(api, 10**9 + 5))
        body = (await client.post("/api/v1/batch/trades", json={"operations": [
            {"type": "execute_signal", "signal_id": 10**9 + 5}]})).json()
        [executed] = body["results"]
        assert executed["success"], executed
        body = (await client.post("/api/v1/batch/trades", json={"operations": [
            {"type": "cancel_trade", "trade_id": executed["trade_id"]}]})).json()
        assert body["results"] == [{"operation": 1, "success": True,
                                    "trade_id": executed["trade_id"]}]
        trade = control.recent_trades[executed["trade_id"]]
        assert trade.state is TradeState.CANCELLED and not trade.fills
        assert await api.runtime.storage.flush(10)
        detail = (await client.get(f"/api/v1/trades/{trade.id}")).json()
        assert detail["status"] == "cancelled"

        # All but 5 USDT of sim_alpha promised elsewhere (reserved: not a loss).
        ledger = control.ledger
        ledger.reserve("sim_alpha", "USDT",
                       ledger.total("sim_alpha", "USDT") - ledger.reserved("sim_alpha", "USDT")
                       - D("5"))
        engine.last_signals.append(_signal(api, 10**9 + 6))
        body = (await client.post("/api/v1/batch/trades", json={"operations": [
            {"type": "execute_signal", "signal_id": 10**9 + 6}]})).json()
        [refused] = body["results"]
        assert refused["success"] is False, refused
        assert refused.get("code") == "INSUFFICIENT_BALANCE", refused
        assert refused["details"]["exchange"] == "sim_alpha"
        assert refused["details"]["asset"] == "USDT"
        assert refused["details"]["available"] == 5.0
        assert refused["details"]["required"] > 5.0


async def test_batch_trades_validation_and_scope(serve_api):
    async with serve_api() as api, api.client() as client:
        url = "/api/v1/batch/trades"
        cases = [
            ({}, "operations", None),
            ({"operations": []}, "operations", None),
            ({"operations": [{"type": "cancel_trade", "trade_id": 1}] * 101}, "operations",
             None),
            ({"operations": [{"type": "cancel_trade", "trade_id": 1}, 5]}, "operations[1]",
             2),
            ({"operations": [{"type": "buy"}]}, "operations[0].type", 1),
            ({"operations": [{"type": "execute_signal"}]}, "operations[0].signal_id", 1),
            ({"operations": [{"type": "execute_signal", "signal_id": True}]},
             "operations[0].signal_id", 1),
            ({"operations": [{"type": "execute_signal", "signal_id": 1, "quantity": -1}]},
             "operations[0].quantity", 1),
            ({"operations": [{"type": "cancel_trade", "trade_id": "7"}]},
             "operations[0].trade_id", 1),
            ({"operations": [{"type": "cancel_trade", "trade_id": 7, "force": True}]},
             "operations[0].force", 1),
        ]
        for body, field, number in cases:
            error = assert_error(await client.post(url, json=body), 400, "VALIDATION_ERROR")
            assert error["details"]["field"] == field, body
            assert error["details"].get("operation") == number
    # The read scope's refusal needs a server that requires credentials (without
    # auth_required, a key sent is ignored): tests/api/test_auth_sweep.py covers every
    # write route.


async def test_without_history_storage(serve_api):
    async with serve_api('\n[plugins]\ndisable = ["sql"]\n') as api, api.client() as client:
        assert api.runtime.storage is None
        for path in ("/api/v1/trades", "/api/v1/trades/1", "/api/v1/signals",
                     "/api/v1/performance",
                     "/api/v1/prices/history?symbol=BTCUSDT&start_time=0&end_time=60"):
            assert_error(await client.get(path), 503, "STORAGE_NOT_AVAILABLE")
        assert_error(await client.post("/api/v1/analytics/query", json={
            "query_type": "symbol_performance"}), 503, "STORAGE_NOT_AVAILABLE")
        body = (await client.post("/api/v1/batch/trades", json={"operations": [
            {"type": "cancel_trade", "trade_id": 5}]})).json()
        assert body["results"] == [{"operation": 1, "success": False,
                                    "error": "Trade not found"}]
