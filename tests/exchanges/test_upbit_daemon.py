"""Upbit through the whole daemon in simulation mode: a fake Upbit (KRW books and its own
KRW-USDT book) and a fake OKX on loopback, the engine converting Upbit's KRW prices, and
paper trades on Upbit paid and charged in KRW."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import trio
from exchanges.fake_okx import open_fake_okx
from exchanges.fake_upbit import open_fake_upbit

import arbotd
import arbotd_okx.plugin
import arbotd_sim.plugin
import arbotd_upbit.plugin
import arbotd_xarb.plugin

CONFIG = """
[daemon]
mode = "simulation"
autostart = true

[arbitrage]
symbols = ["BTCUSDT"]
min_profit_threshold = 0.001
trade_amount_usd = 1000.0
cooldown_seconds = 3600.0

[simulation]
enabled = false

[simulation.paper]
fill_delay_seconds = 0.0
partial_fill_rate = 0.0
reject_rate = 0.0
balances = {{ USDT = 100000.0, BTC = 1.0 }}

[exchanges.okx]
enabled = true
ws_url = "{okx_ws}"
rest_url = "{okx_rest}"

[exchanges.upbit]
enabled = true
ws_url = "{upbit_ws}"
rest_url = "{upbit_rest}"
"""


@pytest.mark.slow
async def test_upbit_is_converted_and_paper_traded_in_krw(start_daemon, tmp_path: Path) -> None:
    async with open_fake_okx(interval=0.05) as okx, open_fake_upbit(interval=0.05) as upbit:
        okx.set_book("BTC-USDT", [("99990.0", "5")], [("100000.0", "5")])
        # No opportunity yet: 137,490,000 KRW / 1,375 = 99,992.7 USDT.
        upbit.set_book("KRW-BTC", [("137480000", "5")], [("137490000", "5")])
        path = tmp_path / "arbot.toml"
        path.write_text(CONFIG.format(okx_ws=okx.ws_url, okx_rest=okx.rest_url,
                                      upbit_ws=upbit.ws_url, upbit_rest=upbit.rest_url))
        plugins = [("sim", arbotd_sim.plugin), ("xarb", arbotd_xarb.plugin),
                   ("okx", arbotd_okx.plugin), ("upbit", arbotd_upbit.plugin)]
        async with start_daemon(path, *plugins) as daemon:
            runtime = daemon.runtime
            engine = runtime.engine
            assert engine is not None
            with trio.fail_after(20):
                while "upbit" not in engine.book.get("BTCUSDT", {}):
                    await trio.sleep(0.02)
            converted = engine.book["BTCUSDT"]["upbit"]
            assert converted.ask == pytest.approx(137_490_000 / 1_375)
            assert converted.bid == pytest.approx(137_480_000 / 1_376)
            # 134,750,000 KRW / 1,375 = 98,000 USDT: 2 % under OKX's bid.
            upbit.set_book("KRW-BTC", [("134740000", "5")], [("134750000", "5")])
            subscription = runtime.bus.subscribe(kinds=["trade"])
            with trio.fail_after(20):
                async for event in subscription:
                    if event.payload.is_final:
                        trade = event.payload
                        break
        assert trade.state is arbotd.TradeState.COMPLETED, trade.reason
        assert (trade.buy_exchange, trade.sell_exchange) == ("upbit", "okx")
        assert trade.buy_rate == 1375.0 and trade.sell_rate is None
        assert trade.buy_native_price == pytest.approx(134_750_000)
        [fill] = [f for f in trade.fills if f.exchange == "upbit"]
        assert (fill.native_asset, fill.fee_asset) == ("KRW", "KRW")
        assert fill.native_price == Decimal("134750000")
        assert trade.realized_profit > 0
