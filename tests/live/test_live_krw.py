"""Live trading on a venue quoted in KRW, through a running daemon on in-memory exchanges:
orders reach its account priced in KRW on its KRW tick, its fills come back in KRW and
are booked in KRW, priced in USDT at the order's rate, and a trade reconciled after a
restart keeps the rates it was sent with.

``won`` quotes BTC in KRW with a USDTKRW rate market at 1,350 / 1,351: its ask of 135,000
KRW is 100 USDT (135,000 / 1,350), its bid of 134,900 KRW 99.85 USDT (/ 1,351). ``dear``
bids 101 USDT."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import trio
from memory_exchange import MemoryAccount, MemoryExchangesPlugin, quote

import arbotd
import arbotd_live.plugin
import arbotd_risk.plugin
import arbotd_sql.plugin
import arbotd_xarb.plugin
from arbotd import Order, OrderStatus, Side, Trade, TradeState
from arbotd.exchange import SymbolRules

D = Decimal

CONFIG = """
[daemon]
mode = "live"
autostart = false

[arbitrage]
symbols = ["BTCUSDT"]
min_profit_threshold = 0.001
trade_amount_usd = 99.9
max_position_size = 1000.0
cooldown_seconds = 0.0

[live]
balance_refresh_seconds = 5.0
"""

STORAGE = """
[storage]
url = "sqlite:///{db}"
flush_interval_seconds = 0.05
"""

KRW = D("200000")


def won_account() -> MemoryAccount:
    # The venue states its rules in KRW: a tick of 1 KRW, a minimum of 5,000 KRW.
    rules = SymbolRules("BTCUSDT", tick_size=D("1"), step_size=D("0.001"),
                        min_qty=D("0.001"), min_notional=D("5000"))
    account = MemoryAccount("won", {"BTCUSDT": rules}, {"KRW": KRW, "BTC": D("0")},
                            currency="KRW")
    account.book["BTCUSDT"] = (D("134900"), D("135000"), D("50"))
    return account


def dear_account() -> MemoryAccount:
    rules = SymbolRules("BTCUSDT", tick_size=D("0.01"), step_size=D("0.0004"),
                        min_qty=D("0.0004"), min_notional=D("5"))
    account = MemoryAccount("dear", {"BTCUSDT": rules}, {"USDT": D("0"), "BTC": D("5")})
    account.book["BTCUSDT"] = (D("101.00"), D("101.01"), D("50"))
    return account


def plugins(won: MemoryAccount, dear: MemoryAccount, *extra: tuple[str, object],
            opening: dict | None = None) -> list[tuple[str, object]]:
    exchanges = MemoryExchangesPlugin([won, dear], currencies={"won": "KRW"},
                                      opening=opening)
    return [("live", arbotd_live.plugin), ("xarb", arbotd_xarb.plugin),
            ("risk", arbotd_risk.plugin), ("mem", exchanges), *extra]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "arbot.toml"
    path.write_text(CONFIG)
    return path


def open_opportunity(runtime: arbotd.Runtime) -> None:
    engine = runtime.engine
    engine.on_quote(quote("won", "1350", "1351", symbol="USDTKRW"))
    engine.on_quote(quote("won", "134900", "135000"))
    engine.on_quote(quote("dear", "101.00", "101.01"))


async def final_trade(runtime: arbotd.Runtime) -> Trade:
    subscription = runtime.bus.subscribe(kinds=["trade"])
    open_opportunity(runtime)
    with trio.fail_after(10):
        async for event in subscription:
            if event.payload.is_final:
                return event.payload
    raise AssertionError("the bus closed")


def order_of(trade: Trade, exchange: str, purpose: str) -> Order:
    [order] = [o for o in trade.orders if o.exchange == exchange and o.purpose == purpose]
    return order


async def test_a_trade_on_a_krw_venue_goes_out_in_krw_and_books_krw(
    start_daemon, config_path: Path
) -> None:
    won, dear = won_account(), dear_account()
    async with start_daemon(config_path, *plugins(won, dear)) as daemon:
        runtime = daemon.runtime
        runtime.control.start("live")
        assert runtime.ledger.total("won", "KRW") == KRW
        trade = await final_trade(runtime)
        assert trade.state is TradeState.COMPLETED, trade.reason
        assert trade.quantity == D("0.998")
        # The limit of 100 USDT widened by the tolerance (0.0005) is 100.05 USDT, at the
        # rate bid the ask was divided by 135,067.5 KRW: rounded down to the KRW tick.
        [sent] = won.orders
        assert (sent.side, sent.price, sent.quantity) == (Side.BUY, D("135067"), D("0.998"))
        assert dear.orders[0].price == D("100.95")
        buy = order_of(trade, "won", "entry")
        assert (buy.rate, buy.native_price) == (D("1350"), D("135067"))
        assert buy.price == pytest.approx(D("135067") / D("1350"), abs=D("1e-12"))
        # The fill as the venue charged it (KRW), priced in USDT at the order's rate.
        [fill] = [f for f in trade.fills if f.exchange == "won"]
        assert (fill.native_price, fill.native_asset, fill.price) == (
            D("135000"), "KRW", D("100"))
        assert (fill.fee, fill.fee_asset, fill.fee_value) == (D("134.73"), "KRW", D("0.0998"))
        # The ledger moved KRW, as the account did; USDT on won never existed.
        spent = D("135000") * D("0.998") + D("134.73")
        assert runtime.ledger.total("won", "KRW") == KRW - spent == won.holdings["KRW"]
        assert runtime.ledger.total("won", "USDT") == 0
        assert runtime.ledger.total("won", "BTC") == D("0.998")
        # P&L in USDT from the fills: sold 0.998 at 101 (fee 0.1 %), bought at 100 with
        # a fee of 134.73 KRW = 0.0998 USDT.
        assert trade.realized_profit == D("100.798") - D("0.100798") - D("99.8") - D("0.0998")


async def test_a_refused_leg_is_unwound_on_the_krw_venue_at_the_live_rate(
    start_daemon, config_path: Path
) -> None:
    won, dear = won_account(), dear_account()
    dear.refuse = "insufficient balance"
    async with start_daemon(config_path, *plugins(won, dear)) as daemon:
        runtime = daemon.runtime
        runtime.control.start("live")
        trade = await final_trade(runtime)
    assert trade.state is TradeState.UNWOUND, trade.reason
    # Sold back at market (no limit), at the live rate's ask: what its KRW is worth.
    unwind = order_of(trade, "won", "unwind")
    assert won.orders[-1].client_order_id == unwind.client_order_id
    assert (won.orders[-1].side, won.orders[-1].price) == (Side.SELL, D(0))
    assert unwind.rate == D("1351") and unwind.status is OrderStatus.FILLED
    [back] = [f for f in trade.fills if f.order_id == unwind.client_order_id]
    assert back.native_price == D("134900") and back.native_asset == "KRW"
    assert back.price == pytest.approx(D("134900") / D("1351"), abs=D("1e-12"))
    # The loss in USDT is what the KRW fills were worth at their orders' rates.
    fee_in = D("135000") * D("0.998") * D("0.001")
    fee_out = D("134900") * D("0.998") * D("0.001")
    expected = (D("134900") * D("0.998") - fee_out) / D("1351") \
        - (D("135000") * D("0.998") + fee_in) / D("1350")
    assert trade.realized_profit == pytest.approx(expected, abs=D("1e-12"))
    assert trade.realized_profit < 0
    assert won.holdings["KRW"] == KRW - D("135000") * D("0.998") - fee_in \
        + D("134900") * D("0.998") - fee_out
    assert won.holdings["BTC"] == 0


async def test_a_trade_reconciled_after_a_restart_keeps_its_rate(
    start_daemon, tmp_path: Path, config_path: Path
) -> None:
    config_path.write_text(CONFIG + STORAGE.format(db=tmp_path / "arbot.db"))
    won, dear = won_account(), dear_account()
    # Recorded (write-ahead) and sent when the daemon died: both legs NEW, the buy on won
    # priced at the signal's rate of 1,350.
    buy = Order("arb1b", 1, "won", "BTCUSDT", Side.BUY, D("100.05"), D("0.998"),
                rate=D("1350"))
    sell = Order("arb1s", 1, "dear", "BTCUSDT", Side.SELL, D("100.95"), D("0.998"))
    trade = Trade(1, 1, "live", "BTCUSDT", "won", "dear", D("0.998"), D("100"), D("101"),
                  D("0.79"), 0.0, buy_native_price=D("135000"), buy_rate=D("1350"))
    trade = trade.advance(TradeState.SUBMITTED, orders=(buy, sell))
    async with start_daemon(config_path, *plugins(won, dear, ("sql", arbotd_sql.plugin))
                            ) as daemon:
        await daemon.runtime.storage.commit_trade(trade)
    # The exchanges filled both orders (the KRW one at 135,000 KRW) before the restart.
    won.answered["arb1b"] = won.fill(arbotd.Order(
        "arb1b", 1, "won", "BTCUSDT", Side.BUY, D("135067"), D("0.998")))
    dear.answered["arb1s"] = dear.fill(sell)
    # The rate has moved to 1,400 since: the fills are still worth what they were at
    # the rate the order was sent with.
    opening = {"won": (("USDTKRW", "1400", "1401"), ("BTCUSDT", "139900", "140000")),
               "dear": (("BTCUSDT", "101.00", "101.01"),)}
    async with start_daemon(config_path, *plugins(won, dear, ("sql", arbotd_sql.plugin),
                                                  opening=opening)) as daemon:
        runtime = daemon.runtime
        final = runtime.control.recent_trades[1]
        stored = await runtime.storage.trade(1)
    assert final.state is TradeState.COMPLETED, final.reason
    [fill] = [f for f in final.fills if f.exchange == "won"]
    assert (fill.native_price, fill.price) == (D("135000"), D("100"))
    assert fill.fee_value == D("0.0998")
    assert final.realized_profit == D("100.798") - D("0.100798") - D("99.8") - D("0.0998")
    assert stored is not None and stored["status"] == "completed"
    [leg] = [leg for leg in stored["legs"] if leg["exchange"] == "won"]
    assert leg["rate"] == 1350.0
    assert [f["native_price"] for f in leg["fills"]] == [135000.0]
