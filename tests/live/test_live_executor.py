"""Live mode through a running daemon, on in-memory exchanges: starting is refused
without keys or accounts, signals are sized to both exchanges' rules or rejected with
``filters``, orders are rounded, and the ledger shows the exchanges' balances."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import attrs
import pytest
import trio
from memory_exchange import MemoryAccount, MemoryExchangesPlugin, quote

import arbotd
import arbotd_live.plugin
import arbotd_risk.plugin
import arbotd_xarb.plugin
from arbotd import TradeState
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


def rules(step: str = "0.001", tick: str = "0.01", min_notional: str = "5") -> SymbolRules:
    return SymbolRules("BTCUSDT", tick_size=D(tick), step_size=D(step), min_qty=D(step),
                       min_notional=D(min_notional))


def accounts(**overrides: object) -> tuple[MemoryAccount, MemoryAccount]:
    cheap = MemoryAccount("cheap", {"BTCUSDT": rules("0.001")},
                          {"USDT": D("1000"), "BTC": D("0")})
    dear = MemoryAccount("dear", {"BTCUSDT": rules("0.0004")},
                         {"USDT": D("0"), "BTC": D("5")})
    for key, value in overrides.items():
        name, attribute = key.split("__")
        setattr(cheap if name == "cheap" else dear, attribute, value)
    return cheap, dear


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "arbot.toml"
    path.write_text(CONFIG)
    return path


def plugins(*extra: tuple[str, object]) -> list[tuple[str, object]]:
    return [("live", arbotd_live.plugin), ("xarb", arbotd_xarb.plugin),
            ("risk", arbotd_risk.plugin), *extra]


def executor_of(runtime: arbotd.Runtime) -> arbotd_live.LiveExecutor:
    assert runtime.control is not None
    return runtime.control.executors["live"]  # type: ignore[return-value]


async def test_hook_register_accounts(start_daemon, config_path: Path) -> None:
    cheap, dear = accounts()
    async with start_daemon(config_path, *plugins(("mem", MemoryExchangesPlugin([cheap, dear])))
                            ) as daemon:
        executor = executor_of(daemon.runtime)
        assert executor.accounts == {"cheap": cheap, "dear": dear}
        # The service opened both accounts (rules, clock) before the daemon was ready.
        assert cheap.opened == dear.opened == 1
        assert executor.account_status()["cheap"] == {"credentials": True, "ready": True,
                                              "last_error": None}
    assert cheap.closed and dear.closed


async def test_live_start_names_the_missing_keys(start_daemon, config_path: Path) -> None:
    cheap, dear = accounts(dear__credentials=False)
    async with start_daemon(config_path, *plugins(("mem", MemoryExchangesPlugin([cheap, dear])))
                            ) as daemon:
        control = daemon.runtime.control
        with pytest.raises(arbotd.TradingError) as caught:
            control.start("live")
        assert caught.value.code == "TRADING_DISABLED"
        assert "DEAR_API_KEY" in str(caught.value) and "DEAR_API_SECRET" in str(caught.value)
        assert "cheap" not in str(caught.value)
        assert not control.trading
        # The exchanges with keys may still be traded on their own... but a trade needs two.
        with pytest.raises(arbotd.TradingError):
            control.start("live", exchanges=["cheap", "dear"])


async def test_live_start_refuses_venues_without_an_account(start_daemon, config_path: Path
                                                            ) -> None:
    cheap, dear = accounts()
    plugin = MemoryExchangesPlugin([cheap, dear], venues=["cheap", "dear", "sim_paper"])
    async with start_daemon(config_path, *plugins(("mem", plugin))) as daemon:
        control = daemon.runtime.control
        with pytest.raises(arbotd.TradingError, match="sim_paper has none"):
            control.start("live")
        control.start("live", exchanges=["cheap", "dear"])
        assert control.trading


async def test_live_start_waits_for_an_exchange_that_does_not_answer(
    start_daemon, config_path: Path
) -> None:
    config_path.write_text(CONFIG + "connect_timeout_seconds = 0.5\n")
    cheap, dear = accounts(dear__fail_open="HTTP 503")
    async with start_daemon(config_path, *plugins(("mem", MemoryExchangesPlugin([cheap, dear])))
                            ) as daemon:
        with pytest.raises(arbotd.TradingError) as caught:
            daemon.runtime.control.start("live")
        assert caught.value.code == "EXCHANGE_NOT_AVAILABLE"
        assert "dear: dear: HTTP 503" in str(caught.value)


async def test_a_live_trade_is_sized_and_rounded_to_both_exchanges_rules(
    start_daemon, config_path: Path
) -> None:
    cheap, dear = accounts()
    cheap.book["BTCUSDT"] = (D("99.99"), D("100.00"), D("50"))
    dear.book["BTCUSDT"] = (D("101.00"), D("101.01"), D("50"))
    async with start_daemon(config_path, *plugins(("mem", MemoryExchangesPlugin([cheap, dear])))
                            ) as daemon:
        runtime = daemon.runtime
        control = runtime.control
        control.start("live")
        # The ledger shows what the exchanges hold.
        assert runtime.ledger.total("cheap", "USDT") == D("1000")
        assert runtime.ledger.total("dear", "BTC") == D("5")
        trades: list[arbotd.Trade] = []
        subscription = runtime.bus.subscribe(kinds=["trade"])
        runtime.engine.on_quote(quote("cheap", "99.99", "100.00"))
        runtime.engine.on_quote(quote("dear", "101.00", "101.01"))
        with trio.fail_after(10):
            async for event in subscription:
                trades.append(event.payload)
                if event.payload.is_final:
                    break
        trade = trades[-1]
        assert trade.state is TradeState.COMPLETED, trade.reason
        # 99.9 USDT at 100 is 0.999 BTC: the lot sizes 0.001 and 0.0004 both accept 0.998.
        assert trade.quantity == D("0.998")
        buy, sell = cheap.orders[0], dear.orders[0]
        assert buy.quantity == sell.quantity == D("0.998")
        # Limit prices widened by the slippage tolerance (0.0005), then put on the tick
        # grid without crossing it: a buy rounds down, a sell up.
        assert buy.price == D("100.05") and sell.price == D("100.95")
        assert (buy.client_order_id, sell.client_order_id) == ("arb1b", "arb1s")


async def test_a_signal_the_rules_cannot_take_is_rejected_as_filters(
    start_daemon, config_path: Path
) -> None:
    cheap, dear = accounts()
    cheap.rules_by_symbol["BTCUSDT"] = rules("0.001", min_notional="500")
    async with start_daemon(config_path, *plugins(("mem", MemoryExchangesPlugin([cheap, dear])))
                            ) as daemon:
        runtime = daemon.runtime
        runtime.control.start("live")
        runtime.engine.on_quote(quote("cheap", "99.99", "100.00"))
        runtime.engine.on_quote(quote("dear", "101.00", "101.01"))
        assert runtime.engine.rejection_counts().get("filters") == 1
        assert executor_of(runtime).filter_rejections == 1
        assert not runtime.control.active and cheap.orders == [] and dear.orders == []


async def test_an_order_below_the_minimum_is_refused_without_a_request(
    start_daemon, config_path: Path
) -> None:
    cheap, dear = accounts()
    cheap.book["BTCUSDT"] = (D("99.99"), D("100.00"), D("50"))
    async with start_daemon(config_path, *plugins(("mem", MemoryExchangesPlugin([cheap, dear])))
                            ) as daemon:
        executor = executor_of(daemon.runtime)
        order = arbotd.Order("arb9u0", 9, "cheap", "BTCUSDT", arbotd.Side.SELL, D(0),
                             D("0.0009"), purpose="unwind")
        placed, fills = await executor.place_order(order)
        assert placed.status is arbotd.OrderStatus.REJECTED and fills == []
        assert "not sent: quantity rounds to 0" in placed.reason
        assert cheap.orders == []


async def test_balances_are_refreshed_after_a_reload_keeps_the_accounts(
    start_daemon, config_path: Path
) -> None:
    cheap, dear = accounts()
    async with start_daemon(config_path, *plugins(("mem", MemoryExchangesPlugin([cheap, dear])))
                            ) as daemon:
        runtime = daemon.runtime
        runtime.control.start("live")
        cheap.holdings["USDT"] = D("750")
        config_path.write_text(CONFIG.replace("balance_refresh_seconds = 5.0",
                                              "balance_refresh_seconds = 6.0"))
        outcome = await runtime.reload()
        assert outcome.ok and "live" in outcome.changed
        executor = executor_of(runtime)
        assert executor.settings.balance_refresh_seconds == 6.0
        with trio.fail_after(10):
            while runtime.ledger.total("cheap", "USDT") != D("750"):
                await trio.sleep(0.05)
        assert cheap.opened == 1  # same account object: not opened again


async def test_an_account_replaced_by_a_reload_is_closed(start_daemon, config_path: Path
                                                         ) -> None:
    cheap, dear = accounts()
    plugin = MemoryExchangesPlugin([cheap, dear])
    async with start_daemon(config_path, *plugins(("mem", plugin))) as daemon:
        replacement = MemoryAccount("dear", dear.rules_by_symbol, dict(dear.holdings))
        plugin.accounts = [cheap, replacement]
        assert (await daemon.runtime.reload()).ok
        with trio.fail_after(10):
            while not dear.closed:
                await trio.sleep(0.02)
        assert not cheap.closed and executor_of(daemon.runtime).accounts["dear"] is replacement


@attrs.define(eq=False)
class SlowBalances(MemoryAccount):
    """An account whose balance answer, once ``gate`` is set, is read at once but
    arrives only when the gate opens."""

    gate: trio.Event | None = None
    fetching: trio.Event = attrs.field(factory=trio.Event)

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        snapshot = await super().balances()
        if self.gate is not None:
            self.fetching.set()
            await self.gate.wait()
        return snapshot


async def test_balances_read_before_a_trade_never_undo_its_fills(
    start_daemon, config_path: Path
) -> None:
    cheap, dear = accounts()
    cheap = SlowBalances(cheap.name, cheap.rules_by_symbol, cheap.holdings)
    cheap.book["BTCUSDT"] = (D("99.99"), D("100.00"), D("50"))
    dear.book["BTCUSDT"] = (D("101.00"), D("101.01"), D("50"))
    async with start_daemon(config_path, *plugins(("mem", MemoryExchangesPlugin([cheap, dear])))
                            ) as daemon:
        runtime = daemon.runtime
        runtime.control.start("live")
        cheap.gate = trio.Event()
        # A refresh reads the balances (no BTC on cheap yet), and its answer is slow.
        config_path.write_text(CONFIG.replace("balance_refresh_seconds = 5.0",
                                              "balance_refresh_seconds = 6.0"))
        assert (await runtime.reload()).ok
        with trio.fail_after(10):
            await cheap.fetching.wait()
        subscription = runtime.bus.subscribe(kinds=["trade"])
        runtime.engine.on_quote(quote("cheap", "99.99", "100.00"))
        runtime.engine.on_quote(quote("dear", "101.00", "101.01"))
        with trio.fail_after(10):
            async for event in subscription:
                if event.payload.is_final:
                    break
        assert runtime.ledger.total("cheap", "BTC") == D("0.998")
        shown: list[Decimal] = []
        set_balance = runtime.ledger.set_balance

        def spy(exchange: str, asset: str, total: Decimal) -> None:
            if (exchange, asset) == ("cheap", "BTC"):
                shown.append(total)
            set_balance(exchange, asset, total)

        runtime.ledger.set_balance = spy  # type: ignore[method-assign]
        cheap.gate.set()
        cheap.gate = None
        with trio.fail_after(10):
            while not shown:  # the refresh the trade asked for
                await trio.sleep(0.05)
        # The answer read before the trade (0 BTC) was not put in the ledger.
        assert shown == [D("0.998")]
        assert runtime.ledger.total("cheap", "BTC") == D("0.998")


class RecordingStream:
    """Stands in for an exchange's private order stream: records being run and stopped."""

    def __init__(self) -> None:
        self.running = False
        self.runs = 0
        self.stopped = 0

    async def run(self) -> None:
        self.running = True
        self.runs += 1
        try:
            await trio.sleep_forever()
        finally:
            self.running = False
            self.stopped += 1

    def describe(self) -> str:
        return "connected" if self.running else "connecting"


@attrs.define(eq=False)
class StreamingAccount(MemoryAccount):
    order_stream: RecordingStream = attrs.field(factory=RecordingStream)


async def test_order_streams_run_while_their_account_is_in_use(
    start_daemon, config_path: Path
) -> None:
    cheap, dear = accounts()
    streaming = StreamingAccount("cheap", cheap.rules_by_symbol, cheap.holdings)
    async with start_daemon(config_path, *plugins(
            ("mem", MemoryExchangesPlugin([streaming, dear])))) as daemon:
        executor = executor_of(daemon.runtime)
        with trio.fail_after(10):
            while not streaming.order_stream.running:
                await trio.sleep(0.01)
        assert executor.account_status()["cheap"]["order_stream"] == "connected"
        assert "order_stream" not in executor.account_status()["dear"]  # it has none
        # A reload that replaces the account stops its stream and runs the new one's.
        replacement = StreamingAccount("cheap", cheap.rules_by_symbol, cheap.holdings)
        executor.set_accounts([replacement, dear])
        with trio.fail_after(10):
            while streaming.order_stream.running or not replacement.order_stream.running:
                await trio.sleep(0.01)
        assert streaming.order_stream.stopped == 1 and streaming.closed
    assert replacement.order_stream.stopped == 1 and replacement.order_stream.runs == 1
