"""Live trades through the whole daemon against fake exchanges on loopback: real
WebSocket feeds, signed REST requests the fakes verify, IOC orders matched against the
fakes' books. Buy on Bybit (ask 65000), sell on OKX or on Bitget (bid 65700): each test
that names ``seller`` runs against both; and with a venue quoted in KRW, sell on Upbit."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
from exchanges.fake_bitget import FakeBitget, open_fake_bitget
from exchanges.fake_bybit import FakeBybit, open_fake_bybit
from exchanges.fake_okx import FakeOkx, open_fake_okx
from exchanges.fake_upbit import FakeUpbit, open_fake_upbit

import arbotd
import arbotd_bitget.plugin
import arbotd_bybit.plugin
import arbotd_live.plugin
import arbotd_okx.plugin
import arbotd_risk.plugin
import arbotd_upbit.plugin
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

[exchanges.{seller}]
enabled = true
ws_url = "{seller_ws}"
rest_url = "{seller_rest}"
"""

# The venues the sell leg goes to, each with what differs in its fake: how it opens, the
# symbol's name there, the field of an order holding its client id, the plugin, and the
# variable of its passphrase.
SELLERS = ("okx", "bitget")
Seller = FakeOkx | FakeBitget
_OPEN = {"okx": open_fake_okx, "bitget": open_fake_bitget}
_SYMBOL = {"okx": "BTC-USDT", "bitget": "BTCUSDT"}
_CLIENT_ID = {"okx": "clOrdId", "bitget": "clientOid"}
_PLUGIN = {"okx": arbotd_okx.plugin, "bitget": arbotd_bitget.plugin}
PASSPHRASE_ENV = {"okx": "OKX_API_PASSPHRASE", "bitget": "BITGET_API_PASSPHRASE"}


def seller_name(fake: Seller) -> str:
    return "okx" if isinstance(fake, FakeOkx) else "bitget"


def placed(fake: Seller, client_id: str) -> list[dict[str, Any]]:
    """The orders ``fake`` holds under ``client_id``."""
    key = _CLIENT_ID[seller_name(fake)]
    return [o for o in fake.orders.values() if o[key] == client_id]


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


@asynccontextmanager
async def exchanges(seller: str = "okx") -> AsyncIterator[tuple[FakeBybit, Any]]:
    async with open_fake_bybit(interval=0.05) as bybit, \
            _OPEN[seller](interval=0.05) as sell:
        # No opportunity until the test opens one.
        bybit.set_book("BTCUSDT", [("64990.0", "5")], [("65000.0", "5")])
        sell.set_book(_SYMBOL[seller], [("64995.0", "5")], [("65005.0", "5")])
        yield bybit, sell


def write_config(path: Path, bybit: FakeBybit, sell: Seller, extra: str = "") -> Path:
    path.write_text(CONFIG.format(bybit_ws=bybit.ws_url, bybit_rest=bybit.rest_url,
                                  seller=seller_name(sell), seller_ws=sell.ws_url,
                                  seller_rest=sell.rest_url) + extra)
    return path


def plugins(seller: str = "okx", *, risk: bool = True) -> list[tuple[str, object]]:
    chosen = [("live", arbotd_live.plugin), ("xarb", arbotd_xarb.plugin),
              ("bybit", arbotd_bybit.plugin), (seller, _PLUGIN[seller])]
    return [*chosen, ("risk", arbotd_risk.plugin)] if risk else chosen


async def next_final_trade(runtime: arbotd.Runtime) -> arbotd.Trade:
    subscription = runtime.bus.subscribe(kinds=["trade"])
    with trio.fail_after(20):
        async for event in subscription:
            if event.payload.is_final:
                return event.payload
    raise AssertionError("the bus closed")


def open_opportunity(sell: Seller, bid_levels: list[tuple[str, str]]) -> None:
    sell.set_book(_SYMBOL[seller_name(sell)], bid_levels, [("65710.0", "5")])


def fills_of(trade: arbotd.Trade, exchange: str) -> Decimal:
    return sum((f.quantity if f.side is arbotd.Side.BUY else -f.quantity
                for f in trade.fills if f.exchange == exchange), D(0))


@pytest.mark.parametrize("seller", SELLERS)
async def test_both_legs_fill(start_daemon, tmp_path, keys, seller: str) -> None:
    async with exchanges(seller) as (bybit, sell_venue):
        config = write_config(tmp_path / "arbot.toml", bybit, sell_venue)
        async with start_daemon(config, *plugins(seller)) as daemon:
            runtime = daemon.runtime
            assert runtime.control.trading and runtime.control.mode == "live"
            open_opportunity(sell_venue, [("65700.0", "5")])
            trade = await next_final_trade(runtime)
        assert trade.state is TradeState.COMPLETED, trade.reason
        assert (trade.buy_exchange, trade.sell_exchange) == ("bybit", seller)
        # 1000 USDT at 65000 on both lot sizes (Bybit 0.000001, OKX 0.00000001, Bitget
        # 0.000001).
        assert trade.quantity == D("0.015384")
        assert fills_of(trade, "bybit") == D("0.015384") == -fills_of(trade, seller)
        bought = bybit.orders["arb1b"]
        assert bought["orderType"] == "Limit" and bought["timeInForce"] == "IOC"
        assert D(bought["price"]) == D("65032.5")  # 65000 widened by 0.05 %, on the tick
        [sell] = placed(sell_venue, "arb1s")
        # 65700 widened by 0.05 %, up to the tick (OKX 0.1, Bitget 0.01).
        if seller == "okx":
            assert sell["ordType"] == "ioc" and D(sell["px"]) == D("65667.2")
        else:
            assert (sell["orderType"], sell["force"]) == ("limit", "ioc")
            assert D(sell["price"]) == D("65667.15")
        assert trade.realized_profit > 0


@pytest.mark.parametrize("seller", SELLERS)
async def test_a_partly_filled_leg_is_completed_at_market(start_daemon, tmp_path, keys,
                                                          monkeypatch, seller: str) -> None:
    async with exchanges(seller) as (bybit, sell_venue):
        config = write_config(tmp_path / "arbot.toml", bybit, sell_venue)
        fake_class = type(sell_venue)
        place = fake_class.place

        def thinner_book_first(self: Seller, body: dict) -> object:
            # Between the quote and the order, most of the best bid went: 0.005 BTC is
            # left at 65700, and the next bid (65600) is below the IOC limit, so the sell
            # leg fills 0.005 and the hedge sells the rest at market.
            if body.get(_CLIENT_ID[seller]) == "arb1s":
                open_opportunity(self, [("65700.0", "0.005"), ("65600.0", "5")])
            return place(self, body)

        monkeypatch.setattr(fake_class, "place", thinner_book_first)
        async with start_daemon(config, *plugins(seller)) as daemon:
            open_opportunity(sell_venue, [("65700.0", "5")])
            trade = await next_final_trade(daemon.runtime)
        assert trade.state is TradeState.COMPLETED, trade.reason
        sells = {o.purpose: o for o in trade.orders if o.exchange == seller}
        assert sells["entry"].filled_quantity < trade.quantity
        assert sells["hedge"].client_order_id == "arb1h"
        assert fills_of(trade, "bybit") == -fills_of(trade, seller) == trade.quantity
        [hedge] = placed(sell_venue, "arb1h")
        assert hedge["ordType" if seller == "okx" else "orderType"] == "market"


REFUSALS = {"okx": ("51008", "Order failed. Insufficient USDT balance in account."),
            "bitget": ("43012", "Insufficient balance")}


@pytest.mark.parametrize("seller", SELLERS)
async def test_a_leg_the_exchange_refuses_is_unwound(start_daemon, tmp_path, keys,
                                                     seller: str) -> None:
    async with exchanges(seller) as (bybit, sell_venue):
        # Without a stop-loss (no risk plugin), a one-legged trade is always unwound.
        config = write_config(tmp_path / "arbot.toml", bybit, sell_venue)
        sell_venue.reject_next = REFUSALS[seller]
        # Bybit holds no BTC but what the buy brings, less its fee (charged in BTC).
        bybit.balances["BTC"] = [D(0), D(0)]
        async with start_daemon(config, *plugins(seller, risk=False)) as daemon:
            open_opportunity(sell_venue, [("65700.0", "5")])
            trade = await next_final_trade(daemon.runtime)
        assert trade.state is TradeState.UNWOUND, trade.reason
        entry_sell = next(o for o in trade.orders if o.client_order_id == "arb1s")
        assert entry_sell.status is arbotd.OrderStatus.REJECTED
        assert REFUSALS[seller][0] in entry_sell.reason
        unwind = bybit.orders["arb1u0"]
        assert unwind["side"] == "Sell" and unwind["orderType"] == "Market"
        # 0.015384 bought, 0.000015384 of it the fee: 0.015368616 arrived, of which the
        # lot size (0.000001) lets 0.015368 be sold back.
        assert D(unwind["qty"]) == D("0.015368")
        assert bybit.balances["BTC"][0] == D("0.000000616")
        assert "0.000000616 BTC below the lot size left on bybit" in trade.reason
        assert fills_of(trade, seller) == 0
        assert trade.realized_profit < 0  # the spread and two fees: the recorded loss


@pytest.mark.parametrize("seller", SELLERS)
async def test_live_refuses_to_start_without_the_passphrase(start_daemon, tmp_path, keys,
                                                            monkeypatch, caplog,
                                                            seller: str) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV[seller])
    async with exchanges(seller) as (bybit, sell_venue):
        config = write_config(tmp_path / "arbot.toml", bybit, sell_venue)
        async with start_daemon(config, *plugins(seller)) as daemon:
            assert not daemon.runtime.control.trading
            assert PASSPHRASE_ENV[seller] in caplog.text
            assert "cannot start trading in live mode" in caplog.text
        assert not bybit.orders and not sell_venue.orders


CRASH_EXTRA = """
[storage]
url = "sqlite:///{db}"
flush_interval_seconds = 0.05

[simulation]
enabled = false

[api]
enabled = false
"""


def db_rows(db: Path, sql: str) -> list[tuple]:
    import sqlite3

    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return []


@pytest.mark.slow
@pytest.mark.parametrize("seller", SELLERS)
async def test_a_live_trade_cut_off_by_sigkill_is_reconciled_with_the_exchanges(
    start_daemon, tmp_path, keys, seller: str
) -> None:
    import os
    import signal
    import subprocess

    import arbotd_api.plugin
    import arbotd_sim.plugin
    import arbotd_sql.plugin

    db = tmp_path / "arbot.db"
    async with exchanges(seller) as (bybit, sell_venue):
        config = write_config(tmp_path / "arbot.toml", bybit, sell_venue,
                              CRASH_EXTRA.format(db=db))
        # The seller takes the sell order (and fills it) but its answer never comes back
        # before the daemon dies.
        sell_venue.stall_orders, sell_venue.stall_seconds = True, 120.0
        log = (tmp_path / "first.log").open("w")
        first = await trio.lowlevel.open_process(
            [sys.executable, "-m", "arbotd", "run", "-c", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=tmp_path,
        )
        try:
            with trio.fail_after(60):
                while not db_rows(db, "select 1 from trades where state = 'submitted'"):
                    await trio.sleep(0.1)
                    if first.poll() is None and "trading started" in \
                            (tmp_path / "first.log").read_text():
                        open_opportunity(sell_venue, [("65700.0", "5")])
                    assert first.poll() is None, (tmp_path / "first.log").read_text()
                while not placed(sell_venue, "arb1s"):
                    await trio.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
            log.close()
        assert db_rows(db, "select state from trades where id = 1") == [("submitted",)]

        sell_venue.stall_orders = False
        async with start_daemon(config, *plugins(seller), ("sql", arbotd_sql.plugin),
                                ("sim", arbotd_sim.plugin), ("api", arbotd_api.plugin)
                                ) as daemon:
            # READY=1 came only after the reconciliation.
            trade = daemon.runtime.control.recent_trades[1]
            assert trade.state is TradeState.COMPLETED, trade.reason
            assert fills_of(trade, "bybit") == -fills_of(trade, seller) == trade.quantity
            # Each leg was placed once: the restart asked for it, it did not resend it.
            assert len(placed(sell_venue, "arb1s")) == 1
            assert list(bybit.orders) == ["arb1b"]
        assert db_rows(db, "select state from trades where id = 1") == [("completed",)]
        assert db_rows(db, "select count(*) from fills") == [(2,)]


async def test_health_reports_the_trading_accounts(start_daemon, tmp_path, keys, monkeypatch
                                                   ) -> None:
    import httpx

    import arbotd_api.plugin
    from arbotd_api.plugin import service_for

    async with exchanges() as (bybit, okx):
        config = write_config(tmp_path / "arbot.toml", bybit, okx, "\n[api]\nport = 0\n")
        with_api = (*plugins(), ("api", arbotd_api.plugin))
        async with start_daemon(config, *with_api) as daemon:
            url = service_for(daemon.runtime).urls[0]
            async with httpx.AsyncClient(base_url=url) as client:
                answer = await client.get("/api/v1/health")
            accounts = answer.json()["checks"]["accounts"]
            assert accounts == {"status": "pass", "ready_count": 2, "total_count": 2,
                                "problems": {}}
            # The OpenAPI document describes exactly these fields.
            from arbotd_api.openapi import openapi_document

            health = openapi_document()["paths"]["/api/v1/health"]["get"]
            schema = health["responses"]["200"]["content"]["application/json"]["schema"]
            described = schema["properties"]["checks"]["properties"]["accounts"]
            assert set(described["required"]) == set(accounts)

        # In live mode an account without its keys makes the daemon unhealthy.
        monkeypatch.delenv("OKX_API_PASSPHRASE")
        async with start_daemon(config, *with_api) as daemon:
            url = service_for(daemon.runtime).urls[0]
            async with httpx.AsyncClient(base_url=url) as client:
                answer = await client.get("/api/v1/health")
            assert answer.status_code == 503
            accounts = answer.json()["checks"]["accounts"]
            assert accounts["status"] == "fail"
            assert accounts["problems"] == {"okx": "API keys are not set"}


# --- a venue quoted in KRW: Upbit ------------------------------------------------------------
# Buy on Bybit (ask 65000 USDT), sell on Upbit in KRW: its bid 90,403,000 KRW is 65,699.85
# USDT at the KRW-USDT ask (1,376) the sale converts at.

UPBIT_CONFIG = """
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

[exchanges.upbit]
enabled = true
ws_url = "{upbit_ws}"
rest_url = "{upbit_rest}"
"""
UPBIT_KEYS = {"UPBIT_ACCESS_KEY": "upbit-live-access-key-0123456789abcdefghij",
              "UPBIT_SECRET_KEY": "upbit-live-secret-key-0123456789abcdefghij"}


@pytest.fixture
def upbit_keys(keys, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in UPBIT_KEYS.items():
        monkeypatch.setenv(name, value)


@asynccontextmanager
async def upbit_exchanges() -> AsyncIterator[tuple[FakeBybit, FakeUpbit]]:
    async with open_fake_bybit(interval=0.05) as bybit, open_fake_upbit(
            UPBIT_KEYS["UPBIT_ACCESS_KEY"], UPBIT_KEYS["UPBIT_SECRET_KEY"],
            interval=0.05) as upbit:
        bybit.set_book("BTCUSDT", [("64990.0", "5")], [("65000.0", "5")])
        # 89,433,000 KRW / 1,376 = 64,994.9 USDT: no opportunity until the test opens one.
        upbit.set_book("KRW-BTC", [("89433000", "5")], [("89450000", "5")])
        yield bybit, upbit


def write_upbit_config(path: Path, bybit: FakeBybit, upbit: FakeUpbit, extra: str = ""
                       ) -> Path:
    path.write_text(UPBIT_CONFIG.format(
        bybit_ws=bybit.ws_url, bybit_rest=bybit.rest_url, upbit_ws=upbit.ws_url,
        upbit_rest=upbit.rest_url) + extra)
    return path


def upbit_plugins(*, risk: bool = True) -> list[tuple[str, object]]:
    chosen = [("live", arbotd_live.plugin), ("xarb", arbotd_xarb.plugin),
              ("bybit", arbotd_bybit.plugin), ("upbit", arbotd_upbit.plugin)]
    return [*chosen, ("risk", arbotd_risk.plugin)] if risk else chosen


def open_upbit_opportunity(upbit: FakeUpbit) -> None:
    upbit.set_book("KRW-BTC", [("90403000", "5")], [("90500000", "5")])


async def test_a_krw_leg_goes_out_in_krw_and_its_fills_are_converted(
    start_daemon, tmp_path, upbit_keys
) -> None:
    async with upbit_exchanges() as (bybit, upbit):
        config = write_upbit_config(tmp_path / "arbot.toml", bybit, upbit)
        async with start_daemon(config, *upbit_plugins()) as daemon:
            open_upbit_opportunity(upbit)
            trade = await next_final_trade(daemon.runtime)
        assert trade.state is TradeState.COMPLETED, trade.reason
        assert (trade.buy_exchange, trade.sell_exchange) == ("bybit", "upbit")
        assert trade.sell_rate == 1376.0
        assert fills_of(trade, "bybit") == D("0.015384") == -fills_of(trade, "upbit")
        # The sell went to Upbit in KRW, on its band's 1,000 KRW tick.
        sent = upbit.orders["arb1s"]
        assert (sent["side"], sent["ord_type"], sent["time_in_force"]) == ("ask", "limit", "ioc")
        assert D(sent["price"]) % 1000 == 0 and D(sent["price"]) <= D(90403000)
        [fill] = [f for f in trade.fills if f.exchange == "upbit"]
        assert (fill.native_price, fill.native_asset) == (D(90403000), "KRW")
        assert fill.price == pytest.approx(D(90403000) / D(1376))
        assert fill.fee_asset == "KRW" and fill.fee_value is not None
        assert trade.realized_profit > 0


async def test_a_krw_leg_upbit_refuses_is_unwound(start_daemon, tmp_path, upbit_keys) -> None:
    async with upbit_exchanges() as (bybit, upbit):
        config = write_upbit_config(tmp_path / "arbot.toml", bybit, upbit)
        upbit.reject_next = "insufficient_funds_ask"
        bybit.balances["BTC"] = [D(0), D(0)]
        async with start_daemon(config, *upbit_plugins(risk=False)) as daemon:
            open_upbit_opportunity(upbit)
            trade = await next_final_trade(daemon.runtime)
        assert trade.state is TradeState.UNWOUND, trade.reason
        entry_sell = next(o for o in trade.orders if o.client_order_id == "arb1s")
        assert entry_sell.status is arbotd.OrderStatus.REJECTED
        assert "insufficient_funds_ask" in entry_sell.reason
        assert bybit.orders["arb1u0"]["side"] == "Sell"
        assert fills_of(trade, "upbit") == 0 and trade.realized_profit < 0


async def test_a_krw_buy_leg_is_unwound_by_a_market_sell_on_upbit(
    start_daemon, tmp_path, upbit_keys
) -> None:
    async with upbit_exchanges() as (bybit, upbit):
        config = write_upbit_config(tmp_path / "arbot.toml", bybit, upbit)
        bybit.reject_next = ("170131", "Insufficient balance.")
        async with start_daemon(config, *upbit_plugins(risk=False)) as daemon:
            # 87,450,000 KRW / 1,375 = 63,600 USDT: buy on Upbit, sell on Bybit.
            upbit.set_book("KRW-BTC", [("87440000", "5")], [("87450000", "5")])
            trade = await next_final_trade(daemon.runtime)
        assert trade.state is TradeState.UNWOUND, trade.reason
        assert (trade.buy_exchange, trade.sell_exchange) == ("upbit", "bybit")
        assert trade.buy_rate == 1375.0
        unwind = upbit.orders["arb1u0"]
        assert (unwind["side"], unwind["ord_type"]) == ("ask", "market")
        assert fills_of(trade, "upbit") == 0


@pytest.mark.slow
async def test_a_krw_trade_cut_off_by_sigkill_is_reconciled_by_identifier(
    start_daemon, tmp_path, upbit_keys
) -> None:
    import os
    import signal
    import subprocess

    import arbotd_api.plugin
    import arbotd_sim.plugin
    import arbotd_sql.plugin

    db = tmp_path / "arbot.db"
    async with upbit_exchanges() as (bybit, upbit):
        config = write_upbit_config(tmp_path / "arbot.toml", bybit, upbit,
                                    CRASH_EXTRA.format(db=db))
        # Upbit takes the sell order (and fills it) but its answer never comes back before
        # the daemon dies.
        upbit.stall_orders, upbit.stall_seconds = True, 120.0
        log = (tmp_path / "first.log").open("w")
        first = await trio.lowlevel.open_process(
            [sys.executable, "-m", "arbotd", "run", "-c", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=tmp_path,
        )
        try:
            with trio.fail_after(60):
                while "arb1s" not in upbit.orders:
                    await trio.sleep(0.1)
                    if first.poll() is None and "trading started" in \
                            (tmp_path / "first.log").read_text():
                        open_upbit_opportunity(upbit)
                    assert first.poll() is None, (tmp_path / "first.log").read_text()
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
            log.close()
        assert db_rows(db, "select state from trades where id = 1") == [("submitted",)]

        upbit.stall_orders = False
        async with start_daemon(config, *upbit_plugins(), ("sql", arbotd_sql.plugin),
                                ("sim", arbotd_sim.plugin), ("api", arbotd_api.plugin)
                                ) as daemon:
            trade = daemon.runtime.control.recent_trades[1]
            assert trade.state is TradeState.COMPLETED, trade.reason
            assert fills_of(trade, "bybit") == -fills_of(trade, "upbit") == trade.quantity
            [fill] = [f for f in trade.fills if f.exchange == "upbit"]
            assert fill.native_asset == "KRW" and fill.native_price == D(90403000)
            # Asked for by its identifier, never sent again.
            assert upbit.arrivals == ["arb1s"]
        assert db_rows(db, "select state from trades where id = 1") == [("completed",)]
