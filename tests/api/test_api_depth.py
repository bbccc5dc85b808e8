"""Books of several levels through the API: ``GET /orderbook``, and the volume-weighted
prices and limit prices of signals (``/signals``, the WebSocket) and trades
(``/trades/{id}``).

DOGEUSDT is configured but not simulated, so the books of it here are only those the test
hands the engine, as a feed would.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal

import orjson
import pytest
import trio
from apitools import assert_error, server_factory
from trio_websocket import open_websocket_url

from arbotd import Quote, Trade, TradeState

D = Decimal
TIMEOUT = 20.0
ARBITRAGE = """
symbols = ["BTCUSDT", "ETHUSDT", "DOGEUSDT"]
max_trades_per_hour = 100000
"""

ALPHA_ASKS = ((0.1000, 500.0), (0.1002, 500.0), (0.1010, 5000.0))
BETA_BIDS = ((0.1015, 300.0), (0.1010, 2000.0))


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


def doge(exchange: str, *, bids: tuple | None, asks: tuple | None,
         best: tuple[float, float] = (0.0999, 0.1016)) -> Quote:
    now = time.time()
    bid = bids[0] if bids else (best[0], 1000.0)
    ask = asks[0] if asks else (best[1], 1000.0)
    return Quote(exchange, "DOGEUSDT", bid[0], ask[0], bid[1], ask[1], now - 0.01, now,
                 bids=bids, asks=asks)


async def test_order_book_levels_best_first(serve_api):
    async with serve_api(arbitrage=ARBITRAGE) as api, api.client() as client:
        engine = api.runtime.engine
        bids = ((0.0999, 1000.0), (0.0998, 2500.5), (0.0995, 10_000.0))
        engine.on_quote(doge("sim_alpha", bids=bids, asks=ALPHA_ASKS))
        query = {"symbol": "DOGEUSDT", "exchange": "sim_alpha"}
        response = await client.get("/api/v1/orderbook", params=query)
        assert response.status_code == 200, response.text
        book = response.json()
        assert set(book) == {"symbol", "exchange", "timestamp", "exchange_timestamp",
                             "bids", "asks"}
        assert (book["symbol"], book["exchange"]) == ("DOGEUSDT", "sim_alpha")
        assert book["bids"] == [list(level) for level in bids]
        assert book["asks"] == [list(level) for level in ALPHA_ASKS]
        assert book["timestamp"] == engine.book["DOGEUSDT"]["sim_alpha"].received_ts
        two = (await client.get("/api/v1/orderbook", params={**query, "depth": 2})).json()
        assert two["bids"] == [list(level) for level in bids[:2]]
        assert two["asks"] == [list(level) for level in ALPHA_ASKS[:2]]

        # A venue that sends its best level only gives one level a side.
        engine.on_quote(doge("sim_beta", bids=None, asks=None))
        level1 = (await client.get("/api/v1/orderbook", params={
            "symbol": "DOGEUSDT", "exchange": "sim_beta"})).json()
        assert (level1["bids"], level1["asks"]) == ([[0.0999, 1000.0]], [[0.1016, 1000.0]])

        # A book that lost its sync is not shown: there is none to trade on.
        engine.forget_symbol("sim_alpha", "DOGEUSDT")
        error = assert_error(await client.get("/api/v1/orderbook", params=query), 503,
                             "EXCHANGE_NOT_AVAILABLE")
        assert error["details"] == {"exchange": "sim_alpha", "symbol": "DOGEUSDT"}


@pytest.mark.parametrize(("params", "status", "code", "field"), [
    ({"exchange": "sim_alpha"}, 400, "VALIDATION_ERROR", "symbol"),
    ({"symbol": "DOGEUSDT"}, 400, "VALIDATION_ERROR", "exchange"),
    ({"symbol": "PEPEUSDT", "exchange": "sim_alpha"}, 400, "INVALID_SYMBOL", None),
    ({"symbol": "DOGEUSDT", "exchange": "kraken"}, 503, "EXCHANGE_NOT_AVAILABLE", None),
    ({"symbol": "DOGEUSDT", "exchange": "sim_alpha", "depth": "0"}, 400,
     "VALIDATION_ERROR", "depth"),
    ({"symbol": "DOGEUSDT", "exchange": "sim_alpha", "depth": "1001"}, 400,
     "VALIDATION_ERROR", "depth"),
    ({"symbol": "DOGEUSDT", "exchange": "sim_alpha", "depth": "ten"}, 400,
     "VALIDATION_ERROR", "depth"),
])
async def test_order_book_validation(serve_api, params, status, code, field):
    async with serve_api(arbitrage=ARBITRAGE) as api, api.client() as client:
        api.runtime.engine.on_quote(doge("sim_alpha", bids=None, asks=ALPHA_ASKS))
        error = assert_error(await client.get("/api/v1/orderbook", params=params), status,
                             code)
        if field is not None:
            assert error["details"]["field"] == field


def expected_walk() -> dict[str, float]:
    """The walk of ALPHA_ASKS against BETA_BIDS (fees 0.1 %, slippage 0.05 %, threshold
    0.2 %, 100 USDT a trade): 300 at 0.1000/0.1015, 200 at 0.1000/0.1010, then 50 USDT
    at 0.1002/0.1010 (each of those units earns 0.55 %); the trade amount ends it."""
    third = 50 / 0.1002
    quantity = math.floor((500 + third) * 1e8) / 1e8
    third = quantity - 500
    return {
        "quantity": quantity,
        "buy_price": (300 * 0.1 + 200 * 0.1 + third * 0.1002) / quantity,
        "sell_price": (300 * 0.1015 + 200 * 0.101 + third * 0.101) / quantity,
        "buy_limit": 0.1002,
        "sell_limit": 0.101,
    }


async def test_signals_show_vwap_and_limit_prices(serve_api):
    async with serve_api(arbitrage=ARBITRAGE) as api, api.client() as client:
        url = api.url.replace("http", "ws", 1) + "/api/v1/ws"
        async with open_websocket_url(url) as ws:
            await ws.send_message(orjson.dumps({"type": "subscribe", "channel": "signals",
                                                "symbols": ["DOGEUSDT"]}).decode())
            with trio.fail_after(TIMEOUT):
                while orjson.loads(await ws.get_message())["type"] != "subscribed":
                    pass
            engine = api.runtime.engine
            engine.on_quote(doge("sim_alpha", bids=None, asks=ALPHA_ASKS))
            engine.on_quote(doge("sim_beta", bids=BETA_BIDS, asks=None))
            with trio.fail_after(TIMEOUT):
                while (message := orjson.loads(await ws.get_message()))["type"] != "signal":
                    pass
        expected = expected_walk()
        pushed = message["data"]
        assert (pushed["buy_exchange"], pushed["sell_exchange"]) == ("sim_alpha", "sim_beta")
        for name, value in expected.items():
            assert pushed[name] == pytest.approx(value, rel=1e-9), name

        with trio.fail_after(TIMEOUT):
            while True:
                listed = (await client.get("/api/v1/signals",
                                           params={"symbol": "DOGEUSDT"})).json()["signals"]
                if listed:
                    break
                await trio.sleep(0.05)
        [stored] = listed
        assert stored["id"] == pushed["id"]
        for name, value in expected.items():
            assert stored[name] == pytest.approx(value, rel=1e-9), name


async def test_trade_detail_shows_planned_vwaps_and_limit_prices(serve_api):
    async with serve_api(arbitrage=ARBITRAGE) as api, api.client() as client:
        trade = Trade(id=900_001, signal_id=900_101, mode="simulation", symbol="DOGEUSDT",
                      buy_exchange="sim_alpha", sell_exchange="sim_beta",
                      quantity=D("999.00199600"), planned_buy_price=D("0.10009980"),
                      planned_sell_price=D("0.10130030"), planned_profit=D("0.65"),
                      started_at=time.time(), state=TradeState.PLANNED,
                      buy_limit=D("0.1002"), sell_limit=D("0.1010"))
        api.runtime.storage.record_trade(trade)
        assert await api.runtime.storage.flush(10)
        detail = (await client.get("/api/v1/trades/900001")).json()
        assert (detail["planned_buy_price"], detail["planned_sell_price"]) == (
            0.1000998, 0.1013003)
        assert (detail["buy_limit"], detail["sell_limit"]) == (0.1002, 0.101)
