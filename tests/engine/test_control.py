"""The control facade: starting, stopping, the risk gate, and the emergency stop."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
import trio
import trio.testing
from scripted import ScriptedExecutor, funded_ledger

from arbotd import Bus, Control, Engine, Ledger, Signal, TradeState, TradingError

D = Decimal
PRICES = {"a": (99.5, 100.0), "b": (101.0, 101.5)}


def signal(signal_id: int = 1, quantity: float = 1.0) -> Signal:
    return Signal(id=signal_id, symbol="BTCUSDT", buy_exchange="a", sell_exchange="b",
                  buy_price=100.0, sell_price=101.0, buy_size=5, sell_size=5,
                  quantity=quantity, profit=0.749, profit_percent=0.749, spread_percent=1.0,
                  fees=0.201, confidence=0.9, timestamp=1.0, price_tolerance=0.0005)


class Rejecting:
    name = "always_no"

    def check(self, signal: Signal) -> str | None:
        return "max_concurrent_trades"

    def limits(self) -> list:
        return []


async def make_control(nursery: trio.Nursery, executor: ScriptedExecutor | None = None,
                       risk_checks: tuple = (), ledger: Ledger | None = None) -> Control:
    bus = Bus()
    ledger = ledger or funded_ledger()
    engine = Engine(strategies=[], bus=bus, ledger=ledger, clock=lambda: 1.0)
    engine.set_venues({"a": 0.001, "b": 0.001}, {})
    control = Control(engine=engine, ledger=ledger, bus=bus, clock=lambda: 1.0,
                      risk_checks=risk_checks,
                      executors=[executor or ScriptedExecutor({}, PRICES)],
                      symbols=["BTCUSDT", "ETHUSDT"])
    await nursery.start(control.run)
    return control


async def test_signals_are_only_watched_until_trading_starts(nursery: trio.Nursery) -> None:
    control = await make_control(nursery)
    assert control.consider(signal()) == signal()
    assert control.active == {}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("paper",), "VALIDATION_ERROR"),
        (("live",), "TRADING_DISABLED"),
        (("simulation", ["DOGEUSDT"]), "INVALID_SYMBOL"),
        (("simulation", None, ["kraken"]), "EXCHANGE_NOT_AVAILABLE"),
    ],
)
async def test_start_refuses_with_api_error_codes(nursery: trio.Nursery, args: tuple,
                                                  code: str) -> None:
    control = await make_control(nursery)
    with pytest.raises(TradingError) as caught:
        control.start(*args)
    assert caught.value.code == code
    assert not control.trading


async def test_invalid_symbol_lists_the_valid_ones(nursery: trio.Nursery) -> None:
    control = await make_control(nursery)
    with pytest.raises(TradingError) as caught:
        control.start("simulation", ["DOGEUSDT"])
    assert caught.value.details == {"valid_symbols": ["BTCUSDT", "ETHUSDT"],
                                    "provided_symbol": "DOGEUSDT"}


async def test_a_signal_becomes_a_completed_trade(nursery: trio.Nursery) -> None:
    control = await make_control(nursery)
    started = control.start("simulation")
    assert started["symbols_count"] == 2 and started["exchanges_count"] == 2
    with control.bus.subscribe(kinds=["trade"]) as updates:
        executed = control.consider(signal())
        assert executed.executed and executed.reject_reason is None
        await control.wait_idle()
        states = []
        while True:
            with trio.move_on_after(0.01):
                states.append((await updates.receive()).payload.state)
                continue
            break
    assert states == [TradeState.PLANNED, TradeState.SUBMITTED, TradeState.COMPLETED]
    assert control.stats.trades_completed == 1
    assert control.ledger.reserved("a", "USDT") == 0 and control.ledger.reserved("b", "BTC") == 0


async def test_a_signal_s_limit_prices_reach_its_orders(nursery: trio.Nursery) -> None:
    executor = ScriptedExecutor({}, {"a": (99.5, 100.2), "b": (101.0, 101.5)})
    executor.holding = True  # the entry orders wait, so the reservation can be seen
    control = await make_control(nursery, executor)
    control.start("simulation")
    walked = attrs.evolve(signal(), buy_price=100.1, sell_price=101.4, buy_limit=100.2,
                          sell_limit=101.0)
    assert control.consider(walked).executed
    with trio.fail_after(5):
        while len(executor.placed) < 2:
            await trio.sleep(0.01)
    # The buy may spend up to its limit, widened by the tolerance, with its fee.
    assert control.ledger.reserved("a", "USDT") == D("100.2") * D("1.0005") * D("1.001")
    executor.hold.set()
    await control.wait_idle()
    [trade] = control.recent_trades.values()
    assert (trade.planned_buy_price, trade.planned_sell_price) == (D("100.1"), D("101.4"))
    assert (trade.buy_limit, trade.sell_limit) == (D("100.2"), D("101.0"))
    prices = {order.side.value: order.price for order in executor.placed}
    assert prices == {"buy": D("100.2") * D("1.0005"), "sell": D("101.0") * D("0.9995")}


async def test_risk_rejection_carries_its_reason(nursery: trio.Nursery) -> None:
    control = await make_control(nursery, risk_checks=(Rejecting(),))
    control.start("simulation")
    rejected = control.consider(signal())
    assert not rejected.executed
    assert rejected.reject_reason == "max_concurrent_trades"
    assert control.engine.rejection_counts() == {"max_concurrent_trades": 1}


async def test_money_for_trades_in_flight_is_reserved(nursery: trio.Nursery) -> None:
    ledger = Ledger()
    ledger.set_balance("a", "USDT", D("150"))
    ledger.set_balance("b", "BTC", D("10"))
    executor = ScriptedExecutor({}, PRICES)
    executor.holding = True
    control = await make_control(nursery, executor, ledger=ledger)
    control.start("simulation")
    assert control.consider(signal(1)).executed
    # 100.0 * 1.0005 * 1.001 is reserved: the second trade cannot be paid for.
    assert control.consider(signal(2)).reject_reason == "balance"
    executor.hold.set()
    await control.wait_idle()


async def test_stop_lets_running_trades_finish(nursery: trio.Nursery) -> None:
    executor = ScriptedExecutor({}, PRICES)
    executor.holding = True
    control = await make_control(nursery, executor)
    control.start("simulation")
    control.consider(signal())
    stopped = control.stop()
    assert stopped["pending_trades"] == 1 and not control.trading
    assert not control.consider(signal(2)).executed
    executor.hold.set()
    await control.wait_idle()
    assert control.stats.trades_completed == 1


async def test_emergency_stop_leaves_no_open_position(nursery: trio.Nursery) -> None:
    executor = ScriptedExecutor({("sell", "entry"): "reject"}, PRICES)
    executor.holding = True
    control = await make_control(nursery, executor)
    control.start("simulation")
    control.consider(signal())
    await trio.testing.wait_all_tasks_blocked()  # the legs are out
    result: dict = {}

    async def stop() -> None:
        result.update(await control.emergency_stop())

    nursery.start_soon(stop)
    await trio.testing.wait_all_tasks_blocked()
    executor.hold.set()
    await control.wait_idle()
    await trio.testing.wait_all_tasks_blocked()
    assert result["trades_cancelled"] == 1 and result["positions_closed"] == 1
    assert control.emergency and not control.trading
    [trade] = control.recent_trades.values()
    assert trade.state is TradeState.UNWOUND
    for venue in ("a", "b"):
        assert control.ledger.total(venue, "BTC") == D("10")  # flat again
    # Trading stays off until it is started again.
    assert not control.consider(signal(2)).executed
    control.start("simulation")
    assert not control.emergency


async def test_emergency_stop_cancels_a_trade_whose_orders_have_not_left(
    nursery: trio.Nursery,
) -> None:
    executor = ScriptedExecutor({}, PRICES)
    control = await make_control(nursery, executor)
    control.start("simulation")
    assert control.consider(signal()).executed
    # The stop comes before the trade's task ran: nothing is sent.
    result = await control.emergency_stop()
    assert result["trades_cancelled"] == 1 and result["positions_closed"] == 0
    [trade] = control.recent_trades.values()
    assert trade.state is TradeState.CANCELLED and executor.placed == []


async def test_emergency_stop_counts_only_what_it_did(nursery: trio.Nursery) -> None:
    """Both legs out and filling: the stop changes nothing, and says so."""
    executor = ScriptedExecutor({}, PRICES)
    executor.holding = True
    control = await make_control(nursery, executor)
    control.start("simulation")
    control.consider(signal())
    await trio.testing.wait_all_tasks_blocked()
    result: dict = {}

    async def stop() -> None:
        result.update(await control.emergency_stop())

    nursery.start_soon(stop)
    await trio.testing.wait_all_tasks_blocked()
    executor.hold.set()
    await control.wait_idle()
    await trio.testing.wait_all_tasks_blocked()
    assert result["trades_cancelled"] == 0 and result["positions_closed"] == 0
    [trade] = control.recent_trades.values()
    assert trade.state is TradeState.COMPLETED


async def test_a_trade_that_cannot_be_reconciled_keeps_trading_disabled(
    nursery: trio.Nursery,
) -> None:
    control = await make_control(nursery)
    from arbotd import Trade

    stuck = Trade(id=9, signal_id=1, mode="live", symbol="BTCUSDT", buy_exchange="a",
                  sell_exchange="b", quantity=D("1"), planned_buy_price=D("100"),
                  planned_sell_price=D("101"), planned_profit=D("1"), started_at=0.0
                  ).advance(TradeState.SUBMITTED)
    await control.recover([stuck])
    with pytest.raises(TradingError) as caught:
        control.start("simulation")
    assert caught.value.code == "TRADING_DISABLED"
    assert "trades 9 were left unfinished" in str(caught.value)


async def test_a_reconciliation_that_breaks_keeps_trading_disabled_not_the_daemon_down(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture,
) -> None:
    from arbotd import Order, Side, Trade

    class Broken(ScriptedExecutor):
        async def query_order(self, order: Order) -> object:
            raise RuntimeError("the exchange answered something nobody expected")

    executor = Broken({}, {"a": (100.0, 100.1), "b": (100.9, 101.0)}, mode="live")
    control = await make_control(nursery, executor)
    sent = Order("arb9b", 9, "a", "BTCUSDT", Side.BUY, D("100"), D("1"))
    stuck = Trade(id=9, signal_id=1, mode="live", symbol="BTCUSDT", buy_exchange="a",
                  sell_exchange="b", quantity=D("1"), planned_buy_price=D("100"),
                  planned_sell_price=D("101"), planned_profit=D("1"), started_at=0.0
                  ).advance(TradeState.SUBMITTED, orders=(sent,))
    control.engine.market.usable.update({"a": True, "b": True})
    await control.recover([stuck])
    assert "trade 9 could not be reconciled" in caplog.text
    with pytest.raises(TradingError, match="trades 9 were left unfinished"):
        control.start("live")


async def test_an_order_whose_outcome_stays_unknown_stops_trading_and_stays_open(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
) -> None:
    from arbotd import Order, TemporaryExchangeError

    class Silent(ScriptedExecutor):
        """The sell leg's exchange never answers, not even when asked afterwards."""

        async def place_order(self, order: Order) -> object:
            if order.side.value == "sell":
                raise TemporaryExchangeError(order.exchange, "timed out, outcome unknown")
            return await super().place_order(order)

        async def query_order(self, order: Order) -> object:
            raise TemporaryExchangeError(order.exchange, "timed out")

    executor = Silent({}, {"a": (100.0, 100.1), "b": (100.9, 101.0)})
    control = await make_control(nursery, executor)
    control.start("simulation")
    assert control.consider(signal()).executed
    await control.wait_idle()
    [trade] = control.recent_trades.values()
    # Not failed, not forgotten: still open, with the order that may have filled named.
    assert not trade.is_final
    assert "outcome of order arb1s unknown" in trade.reason
    assert not control.trading
    assert not control.consider(signal(2)).executed
    with pytest.raises(TradingError, match="trades 1 were left unfinished"):
        control.start("simulation")
