"""Live trades through the whole daemon whose fills come from the exchanges' private order
streams: fake Bybit and OKX servers on loopback push each order's events as they match
it, and the daemon's accounts learn of both legs from them without asking REST; when a
stream drops while a leg is being filled, REST tells the leg's outcome and no fill is
counted twice. Buy on Bybit (ask 65000), sell on OKX or on Bitget (bid 65700): each test
runs against both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
from exchanges.fake_bitget import FakeBitget, open_fake_bitget
from exchanges.fake_bitget_private import open_fake_bitget_private
from exchanges.fake_bybit import FakeBybit, open_fake_bybit
from exchanges.fake_bybit_private import FakeBybitPrivate, open_fake_bybit_private
from exchanges.fake_okx import FakeOkx, open_fake_okx
from exchanges.fake_okx_private import open_fake_okx_private

import arbotd
import arbotd_bitget.plugin
import arbotd_bybit.plugin
import arbotd_live.plugin
import arbotd_okx.plugin
import arbotd_xarb.plugin
from arbotd import TradeState

D = Decimal

CONFIG = """
[daemon]
mode = "live"
autostart = true

[arbitrage]
symbols = ["BTCUSDT"]
min_profit_threshold = 0.001
trade_amount_usd = 1000.0
cooldown_seconds = 3600.0

[live]
balance_refresh_seconds = 5.0

[exchanges.bybit]
enabled = true
ws_url = "{bybit_ws}"
rest_url = "{bybit_rest}"
order_stream_url = "{bybit_private}"

[exchanges.{seller}]
enabled = true
ws_url = "{seller_ws}"
rest_url = "{seller_rest}"
order_stream_url = "{seller_private}"
"""

BYBIT_QUERIES = {"/v5/order/realtime", "/v5/order/history", "/v5/execution/list"}
SELLERS = ("okx", "bitget")
SELLER_QUERIES = {"okx": {"/api/v5/trade/order", "/api/v5/trade/fills"},
                  "bitget": {"/api/v2/spot/trade/orderInfo", "/api/v2/spot/trade/fills"}}
_SYMBOL = {"okx": "BTC-USDT", "bitget": "BTCUSDT"}
_OPEN = {"okx": (open_fake_okx, open_fake_okx_private),
         "bitget": (open_fake_bitget, open_fake_bitget_private)}
_PLUGIN = {"okx": arbotd_okx.plugin, "bitget": arbotd_bitget.plugin}


def seller_name(fake: Any) -> str:
    return "okx" if isinstance(fake, FakeOkx) else "bitget"


def seller_fills(fake: Any) -> list[tuple[Decimal, Decimal]]:
    """Every execution of the sell venue's fake, as (price, quantity)."""
    if isinstance(fake, FakeOkx):
        return [(D(f["fillPx"]), D(f["fillSz"])) for f in fake.fills]
    return [(D(f["priceAvg"]), D(f["size"])) for f in fake.fills]


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYBIT_API_KEY", "test-api-key")
    monkeypatch.setenv("BYBIT_API_SECRET", "test-api-secret")
    monkeypatch.setenv("OKX_API_KEY", "test-okx-key")
    monkeypatch.setenv("OKX_API_SECRET", "test-okx-secret")
    monkeypatch.setenv("OKX_API_PASSPHRASE", "test-okx-passphrase")
    monkeypatch.setenv("BITGET_API_KEY", "test-bitget-key")
    monkeypatch.setenv("BITGET_API_SECRET", "test-bitget-secret")
    monkeypatch.setenv("BITGET_API_PASSPHRASE", "test-bitget-passphrase")


# Bybit, its private stream, the sell venue (FakeOkx or FakeBitget) and its own.
Venues = tuple[FakeBybit, FakeBybitPrivate, Any, Any]


@asynccontextmanager
async def exchanges(seller: str) -> AsyncIterator[Venues]:
    open_seller, open_private = _OPEN[seller]
    async with open_fake_bybit(interval=0.05) as bybit, \
            open_seller(interval=0.05) as sell, \
            open_fake_bybit_private(bybit) as bybit_private, \
            open_private(sell) as sell_private:
        # No opportunity until the test opens one.
        bybit.set_book("BTCUSDT", [("64990.0", "5")], [("65000.0", "5")])
        sell.set_book(_SYMBOL[seller], [("64995.0", "5")], [("65005.0", "5")])
        yield bybit, bybit_private, sell, sell_private


def thin_before_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the quotes and the orders, most of each best level went: each leg fills
    0.005 there and the rest one level further (within the IOC limits), so that each
    order has two fills to be told of."""
    create = FakeBybit.create_order

    async def bybit_create(self: FakeBybit, body: dict) -> object:
        self.set_book("BTCUSDT", [("64990.0", "5")], [("65000.0", "0.005"), ("65010.0", "5")])
        return await create(self, body)

    monkeypatch.setattr(FakeBybit, "create_order", bybit_create)
    for fake_class in (FakeOkx, FakeBitget):
        def seller_place(self: Any, body: dict, place: Any = fake_class.place) -> object:
            symbol = _SYMBOL[seller_name(self)]
            self.set_book(symbol, [("65700.0", "0.005"), ("65690.0", "5")], [("65710.0", "5")])
            return place(self, body)

        monkeypatch.setattr(fake_class, "place", seller_place)


def write_config(path: Path, venues: Venues) -> Path:
    bybit, bybit_private, sell, sell_private = venues
    path.write_text(CONFIG.format(
        bybit_ws=bybit.ws_url, bybit_rest=bybit.rest_url, bybit_private=bybit_private.url,
        seller=seller_name(sell), seller_ws=sell.ws_url, seller_rest=sell.rest_url,
        seller_private=sell_private.url))
    return path


def plugins(seller: str) -> list[tuple[str, object]]:
    return [("live", arbotd_live.plugin), ("xarb", arbotd_xarb.plugin),
            ("bybit", arbotd_bybit.plugin), (seller, _PLUGIN[seller])]


async def streams_connected(runtime: arbotd.Runtime) -> None:
    executor = runtime.control.executors["live"]
    with trio.fail_after(20):
        while any(s.get("order_stream") != "connected"
                  for s in executor.account_status().values()):
            await trio.sleep(0.02)


async def next_final_trade(runtime: arbotd.Runtime) -> arbotd.Trade:
    subscription = runtime.bus.subscribe(kinds=["trade"])
    with trio.fail_after(20):
        async for event in subscription:
            if event.payload.is_final:
                return event.payload
    raise AssertionError("the bus closed")


def asked(requests: list, paths: set[str]) -> list[str]:
    return [r.path for r in requests if r.method == "GET" and r.path in paths]


def fills_on(trade: arbotd.Trade, exchange: str) -> list[tuple[Decimal, Decimal]]:
    return [(f.price, f.quantity) for f in trade.fills if f.exchange == exchange]


@pytest.mark.parametrize("seller", SELLERS)
async def test_both_legs_are_learned_from_the_private_streams(start_daemon, tmp_path, keys,
                                                               monkeypatch, seller: str) -> None:
    thin_before_matching(monkeypatch)
    async with exchanges(seller) as venues:
        bybit, bybit_private, sell, sell_private = venues
        async with start_daemon(write_config(tmp_path / "arbot.toml", venues),
                                *plugins(seller)) as daemon:
            runtime = daemon.runtime
            await streams_connected(runtime)
            sell.set_book(_SYMBOL[seller], [("65700.0", "5")], [("65710.0", "5")])
            trade = await next_final_trade(runtime)
        assert trade.state is TradeState.COMPLETED, trade.reason
        assert trade.quantity == D("0.015384")
        # Each execution of each fake, once, as the streams pushed them.
        executed = [e for e in reversed(bybit.executions) if e["orderLinkId"] == "arb1b"]
        assert fills_on(trade, "bybit") == [(D(e["execPrice"]), D(e["execQty"]))
                                            for e in executed]
        assert fills_on(trade, "bybit") == [(D("65000.0"), D("0.005")),
                                            (D("65010.0"), D("0.010384"))]
        assert fills_on(trade, seller) == seller_fills(sell)
        assert len(sell.fills) == 2
        # No order was asked about: the streams told both legs.
        assert asked(bybit.requests, BYBIT_QUERIES) == []
        assert asked(sell.requests, SELLER_QUERIES[seller]) == []
        assert bybit_private.logins == [True] and sell_private.logins == [True]


@pytest.mark.parametrize("seller", SELLERS)
async def test_a_stream_lost_while_a_leg_fills_leaves_rest_to_tell_it_once(
    start_daemon, tmp_path, keys, monkeypatch, seller: str
) -> None:
    thin_before_matching(monkeypatch)
    async with exchanges(seller) as venues:
        bybit, _, sell, sell_private = venues
        async with start_daemon(write_config(tmp_path / "arbot.toml", venues),
                                *plugins(seller)) as daemon:
            runtime = daemon.runtime
            await streams_connected(runtime)
            # The seller's private stream goes right after the sell leg's first fill:
            # 0.005 at 65700, the rest at 65690 still to be heard of.
            sell_private.drop_after_fills = 1
            sell.set_book(_SYMBOL[seller], [("65700.0", "5")], [("65710.0", "5")])
            trade = await next_final_trade(runtime)
            # The stream came back by itself.
            executor = runtime.control.executors["live"]
            with trio.fail_after(20):
                while executor.account_status()[seller]["order_stream"] != "connected":
                    await trio.sleep(0.02)
        assert trade.state is TradeState.COMPLETED, trade.reason
        assert fills_on(trade, seller) == [(D("65700.0"), D("0.005")),
                                           (D("65690.0"), D("0.010384"))]
        assert sum(q for _, q in fills_on(trade, seller)) == trade.quantity
        assert sell_private.logins.count(True) == 2
        # The seller was asked about its leg; Bybit's stream told its own.
        assert asked(sell.requests, SELLER_QUERIES[seller])
        assert asked(bybit.requests, BYBIT_QUERIES) == []
