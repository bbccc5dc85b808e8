"""Live trades through the whole daemon whose fills come from the exchanges' private order
streams: fake Bybit and OKX servers on loopback push each order's events as they match
it, and the daemon's accounts learn of both legs from them without asking REST; when a
stream drops while a leg is being filled, REST tells the leg's outcome and no fill is
counted twice. Buy on Bybit (ask 65000), sell on OKX (bid 65700)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import trio
from exchanges.fake_bybit import FakeBybit, open_fake_bybit
from exchanges.fake_bybit_private import FakeBybitPrivate, open_fake_bybit_private
from exchanges.fake_okx import FakeOkx, open_fake_okx
from exchanges.fake_okx_private import FakeOkxPrivate, open_fake_okx_private

import arbotd
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

[exchanges.okx]
enabled = true
ws_url = "{okx_ws}"
rest_url = "{okx_rest}"
order_stream_url = "{okx_private}"
"""

BYBIT_QUERIES = {"/v5/order/realtime", "/v5/order/history", "/v5/execution/list"}
OKX_QUERIES = {"/api/v5/trade/order", "/api/v5/trade/fills"}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYBIT_API_KEY", "test-api-key")
    monkeypatch.setenv("BYBIT_API_SECRET", "test-api-secret")
    monkeypatch.setenv("OKX_API_KEY", "test-okx-key")
    monkeypatch.setenv("OKX_API_SECRET", "test-okx-secret")
    monkeypatch.setenv("OKX_API_PASSPHRASE", "test-okx-passphrase")


Venues = tuple[FakeBybit, FakeBybitPrivate, FakeOkx, FakeOkxPrivate]


@asynccontextmanager
async def exchanges() -> AsyncIterator[Venues]:
    async with open_fake_bybit(interval=0.05) as bybit, open_fake_okx(interval=0.05) as okx, \
            open_fake_bybit_private(bybit) as bybit_private, \
            open_fake_okx_private(okx) as okx_private:
        # No opportunity until the test opens one.
        bybit.set_book("BTCUSDT", [("64990.0", "5")], [("65000.0", "5")])
        okx.set_book("BTC-USDT", [("64995.0", "5")], [("65005.0", "5")])
        yield bybit, bybit_private, okx, okx_private


def thin_before_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the quotes and the orders, most of each best level went: each leg fills
    0.005 there and the rest one level further (within the IOC limits), so that each
    order has two fills to be told of."""
    create, place = FakeBybit.create_order, FakeOkx.place

    async def bybit_create(self: FakeBybit, body: dict) -> object:
        self.set_book("BTCUSDT", [("64990.0", "5")], [("65000.0", "0.005"), ("65010.0", "5")])
        return await create(self, body)

    def okx_place(self: FakeOkx, body: dict) -> object:
        self.set_book("BTC-USDT", [("65700.0", "0.005"), ("65690.0", "5")], [("65710.0", "5")])
        return place(self, body)

    monkeypatch.setattr(FakeBybit, "create_order", bybit_create)
    monkeypatch.setattr(FakeOkx, "place", okx_place)


def write_config(path: Path, venues: Venues) -> Path:
    bybit, bybit_private, okx, okx_private = venues
    path.write_text(CONFIG.format(
        bybit_ws=bybit.ws_url, bybit_rest=bybit.rest_url, bybit_private=bybit_private.url,
        okx_ws=okx.ws_url, okx_rest=okx.rest_url, okx_private=okx_private.url))
    return path


PLUGINS = [("live", arbotd_live.plugin), ("xarb", arbotd_xarb.plugin),
           ("bybit", arbotd_bybit.plugin), ("okx", arbotd_okx.plugin)]


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


async def test_both_legs_are_learned_from_the_private_streams(start_daemon, tmp_path, keys,
                                                               monkeypatch) -> None:
    thin_before_matching(monkeypatch)
    async with exchanges() as venues:
        bybit, bybit_private, okx, okx_private = venues
        async with start_daemon(write_config(tmp_path / "arbot.toml", venues), *PLUGINS
                                ) as daemon:
            runtime = daemon.runtime
            await streams_connected(runtime)
            okx.set_book("BTC-USDT", [("65700.0", "5")], [("65710.0", "5")])
            trade = await next_final_trade(runtime)
        assert trade.state is TradeState.COMPLETED, trade.reason
        assert trade.quantity == D("0.015384")
        # Each execution of each fake, once, as the streams pushed them.
        executed = [e for e in reversed(bybit.executions) if e["orderLinkId"] == "arb1b"]
        assert fills_on(trade, "bybit") == [(D(e["execPrice"]), D(e["execQty"]))
                                            for e in executed]
        assert fills_on(trade, "bybit") == [(D("65000.0"), D("0.005")),
                                            (D("65010.0"), D("0.010384"))]
        assert fills_on(trade, "okx") == [(D(f["fillPx"]), D(f["fillSz"])) for f in okx.fills]
        assert len(okx.fills) == 2
        # No order was asked about: the streams told both legs.
        assert asked(bybit.requests, BYBIT_QUERIES) == []
        assert asked(okx.requests, OKX_QUERIES) == []
        assert bybit_private.logins == [True] and okx_private.logins == [True]


async def test_a_stream_lost_while_a_leg_fills_leaves_rest_to_tell_it_once(
    start_daemon, tmp_path, keys, monkeypatch
) -> None:
    thin_before_matching(monkeypatch)
    async with exchanges() as venues:
        bybit, _, okx, okx_private = venues
        async with start_daemon(write_config(tmp_path / "arbot.toml", venues), *PLUGINS
                                ) as daemon:
            runtime = daemon.runtime
            await streams_connected(runtime)
            # OKX's private stream goes right after the sell leg's first fill: 0.005 at
            # 65700, the rest at 65690 still to be heard of.
            okx_private.drop_after_fills = 1
            okx.set_book("BTC-USDT", [("65700.0", "5")], [("65710.0", "5")])
            trade = await next_final_trade(runtime)
            # The stream came back by itself.
            executor = runtime.control.executors["live"]
            with trio.fail_after(20):
                while executor.account_status()["okx"]["order_stream"] != "connected":
                    await trio.sleep(0.02)
        assert trade.state is TradeState.COMPLETED, trade.reason
        assert fills_on(trade, "okx") == [(D("65700.0"), D("0.005")),
                                          (D("65690.0"), D("0.010384"))]
        assert sum(q for _, q in fills_on(trade, "okx")) == trade.quantity
        assert okx_private.logins.count(True) == 2
        # OKX was asked about its leg; Bybit's stream told its own.
        assert asked(okx.requests, OKX_QUERIES)
        assert asked(bybit.requests, BYBIT_QUERIES) == []
