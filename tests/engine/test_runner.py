"""Driving two-legged trades to a final state: fills, partial fills, hedges, unwinds."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest
from scripted import FEE, Script, ScriptedExecutor, funded_ledger

from arbotd import (
    ArbotError,
    Fill,
    Ledger,
    Order,
    PermanentExchangeError,
    Side,
    Trade,
    TradeState,
)
from arbotd._execution import TradeRunner
from arbotd.exchange import floor_to
from arbotd.figures import trade_figures

D = Decimal

def planned_trade(quantity: str = "1") -> Trade:
    return Trade(id=7, signal_id=3, mode="simulation", symbol="BTCUSDT", buy_exchange="a",
                 sell_exchange="b", quantity=D(quantity), planned_buy_price=D("100"),
                 planned_sell_price=D("101"), planned_profit=D("0.749"), started_at=0.0)


async def run(script: Script, *, prices: dict[str, tuple[float, float]] | None = None,
              stop_loss: float | None = 0.02, flatten_only: bool = False,
              ) -> tuple[Trade, list[Trade], ScriptedExecutor, Ledger]:
    executor = ScriptedExecutor(script, prices or {"a": (99.5, 100.0), "b": (101.0, 101.5)})
    ledger = funded_ledger()
    reports: list[Trade] = []
    runner = TradeRunner(executor=executor, ledger=ledger, report=reports.append,
                         clock=lambda: 1.0, stop_loss_fraction=lambda: stop_loss)
    if flatten_only:
        # An emergency stop that comes once the entry legs are out.
        place = executor.place_order

        async def place_then_stop(order: Order) -> tuple[Order, list[Fill]]:
            runner.flatten_only = True
            return await place(order)

        executor.place_order = place_then_stop  # type: ignore[method-assign]
    final = await runner.run(planned_trade(), tolerance=0.0005)
    return final, reports, executor, ledger


def states(reports: list[Trade]) -> list[str]:
    seen: list[str] = []
    for trade in reports:
        if not seen or seen[-1] != trade.state:
            seen.append(trade.state.value)
    return seen


def assert_ledger_reconciles(ledger: Ledger, trade: Trade) -> None:
    """For every venue and asset: balance change = fills - fees, exactly."""
    expected: dict[tuple[str, str], Decimal] = {}

    def add(key: tuple[str, str], amount: Decimal) -> None:
        expected[key] = expected.get(key, D(0)) + amount

    for f in trade.fills:
        sign = 1 if f.side is Side.BUY else -1
        add((f.exchange, "BTC"), sign * f.quantity)
        add((f.exchange, "USDT"), -sign * f.price * f.quantity - f.fee)
    for venue in ("a", "b"):
        for asset in ("USDT", "BTC"):
            change = ledger.total(venue, asset) - ledger.starting[(venue, asset)]
            assert change == expected.get((venue, asset), D(0)), (venue, asset)


async def test_both_legs_fill() -> None:
    final, reports, executor, ledger = await run({})
    assert final.state is TradeState.COMPLETED
    assert states(reports) == ["submitted", "completed"]
    buy, sell = sorted(executor.placed, key=lambda o: o.side != Side.BUY)
    assert buy.client_order_id == "arb7b" and sell.client_order_id == "arb7s"
    assert buy.price == D("100") * D("1.0005")  # the limit allows the tolerance
    assert sell.price == D("101") * D("0.9995")
    # 101 - 100 - fees 0.1 and 0.101
    assert final.realized_profit == D("0.799")
    assert final.fees_paid == D("0.201")
    assert_ledger_reconciles(ledger, final)


async def test_entry_orders_go_out_at_the_worst_levels_widened() -> None:
    # A signal that walked the books: VWAPs 100.1 and 101.4, worst levels 100.2 and 101.
    trade = attrs.evolve(planned_trade(), planned_buy_price=D("100.1"),
                         planned_sell_price=D("101.4"), buy_limit=D("100.2"),
                         sell_limit=D("101"))
    executor = ScriptedExecutor({}, {"a": (99.5, 100.2), "b": (101.0, 101.5)})
    runner = TradeRunner(executor=executor, ledger=funded_ledger(), report=lambda t: None,
                         clock=lambda: 1.0)
    final = await runner.run(trade, tolerance=0.0005)
    buy, sell = sorted(executor.placed, key=lambda o: o.side != Side.BUY)
    assert buy.price == D("100.2") * D("1.0005")
    assert sell.price == D("101") * D("0.9995")
    # Slippage is measured against the planned VWAPs: bought at 100.2 (0.1 worse), sold
    # at 101 (0.4 worse).
    assert final.state is TradeState.COMPLETED
    assert trade_figures(final).slippage == D("0.5")


def test_a_trade_without_limits_has_its_planned_prices_as_limits() -> None:
    trade = planned_trade()
    assert (trade.buy_limit, trade.sell_limit) == (D("100"), D("101"))


async def test_nothing_filled_fails() -> None:
    final, _, _, ledger = await run({("buy", "entry"): "reject", ("sell", "entry"): 0})
    assert final.state is TradeState.FAILED
    assert "no leg filled" in final.reason
    assert final.realized_profit == 0
    assert_ledger_reconciles(ledger, final)


async def test_missing_leg_is_hedged_within_the_stop_loss() -> None:
    final, reports, executor, ledger = await run({("sell", "entry"): "reject"})
    assert final.state is TradeState.COMPLETED
    assert states(reports) == ["submitted", "partially_filled", "completed"]
    hedge = executor.placed[-1]
    assert (hedge.purpose, hedge.side, hedge.exchange) == ("hedge", Side.SELL, "b")
    assert final.filled(Side.SELL, "hedge") == D("1")
    assert_ledger_reconciles(ledger, final)


async def test_filled_leg_is_unwound_beyond_the_stop_loss() -> None:
    # b's bid fell to 97: 3.96 % below the planned 101, beyond a 2 % stop-loss.
    final, reports, executor, ledger = await run(
        {("sell", "entry"): "reject"}, prices={"a": (99.5, 100.0), "b": (97.0, 97.5)}
    )
    assert final.state is TradeState.UNWOUND
    assert states(reports) == ["submitted", "partially_filled", "unwinding", "unwound"]
    unwind = executor.placed[-1]
    assert (unwind.purpose, unwind.side, unwind.exchange) == ("unwind", Side.SELL, "a")
    # Bought 1 at 100, sold back at 99.5: -0.5 and two fees (0.1 + 0.0995).
    assert final.realized_profit == D("-0.6995")
    assert_ledger_reconciles(ledger, final)


async def test_partial_fill_is_evened_out() -> None:
    final, _, executor, ledger = await run({("sell", "entry"): D("0.7")})
    assert final.state is TradeState.COMPLETED
    hedge = executor.placed[-1]
    assert (hedge.purpose, hedge.quantity) == ("hedge", D("0.3"))
    assert_ledger_reconciles(ledger, final)


async def test_equal_partial_fills_complete_with_less() -> None:
    final, _, executor, ledger = await run({("buy", "entry"): D("0.5"),
                                            ("sell", "entry"): D("0.5")})
    assert final.state is TradeState.COMPLETED
    assert final.reason == "partially filled: 0.5"
    assert len(executor.placed) == 2
    assert_ledger_reconciles(ledger, final)


async def test_emergency_stop_unwinds_without_hedging() -> None:
    final, _, executor, ledger = await run({("sell", "entry"): "reject"}, flatten_only=True)
    assert final.state is TradeState.UNWOUND
    assert [o.purpose for o in executor.placed] == ["entry", "entry", "unwind"]
    assert_ledger_reconciles(ledger, final)


async def test_emergency_stop_before_the_orders_leave_cancels_the_trade() -> None:
    executor = ScriptedExecutor({}, {"a": (99.5, 100.0), "b": (101.0, 101.5)})
    reports: list[Trade] = []
    runner = TradeRunner(executor=executor, ledger=funded_ledger(), report=reports.append,
                         clock=lambda: 1.0)
    runner.flatten_only = True
    final = await runner.run(planned_trade())
    assert final.state is TradeState.CANCELLED
    assert executor.placed == [] and runner.stop_cancelled == {7}


async def test_every_order_is_committed_before_it_is_sent() -> None:
    """Write-ahead: the entry legs, then each hedge and unwind order, are in what was
    committed before the executor sees them."""
    executor = ScriptedExecutor({("sell", "entry"): D("0.4"), ("sell", "hedge"): "reject"},
                                {"a": (99.5, 100.0), "b": (101.0, 101.5)})
    committed: list[set[str]] = []
    place = executor.place_order

    async def commit(trade: Trade) -> None:
        committed.append({o.client_order_id for o in trade.orders})

    async def place_checked(order: Order) -> tuple[Order, list[Fill]]:
        assert order.client_order_id in committed[-1], (order, committed)
        return await place(order)

    executor.place_order = place_checked  # type: ignore[method-assign]
    runner = TradeRunner(executor=executor, ledger=funded_ledger(), report=lambda t: None,
                         clock=lambda: 1.0, stop_loss_fraction=lambda: 0.02, commit=commit,
                         retry_delay=0.0)
    final = await runner.run(planned_trade())
    assert [o.purpose for o in executor.placed] == ["entry", "entry", "hedge", "unwind"]
    assert committed == [{"arb7b", "arb7s"}, {"arb7b", "arb7s", "arb7h"},
                         {"arb7b", "arb7s", "arb7h", "arb7u0"}]
    assert final.state is TradeState.COMPLETED


async def test_a_trade_that_cannot_be_recorded_sends_nothing() -> None:
    executor = ScriptedExecutor({}, {"a": (99.5, 100.0), "b": (101.0, 101.5)})

    async def commit(trade: Trade) -> None:
        raise ArbotError("database or disk is full")

    runner = TradeRunner(executor=executor, ledger=funded_ledger(), report=lambda t: None,
                         clock=lambda: 1.0, commit=commit)
    final = await runner.run(planned_trade())
    assert final.state is TradeState.FAILED
    assert "could not be recorded" in final.reason and "disk is full" in final.reason
    assert executor.placed == []


async def test_an_unwind_that_cannot_be_recorded_is_not_sent() -> None:
    executor = ScriptedExecutor({("sell", "entry"): "reject"},
                                {"a": (99.5, 100.0), "b": (101.0, 101.5)})
    commits = 0

    async def commit(trade: Trade) -> None:
        nonlocal commits
        commits += 1
        if commits > 1:
            raise ArbotError("database or disk is full")

    runner = TradeRunner(executor=executor, ledger=funded_ledger(), report=lambda t: None,
                         clock=lambda: 1.0, stop_loss_fraction=lambda: None, commit=commit,
                         retry_delay=0.0)
    final = await runner.run(planned_trade())
    assert [o.purpose for o in executor.placed] == ["entry", "entry"]
    assert final.state is TradeState.FAILED and "still open" in final.reason


async def test_recovered_trade_whose_orders_never_left_is_cancelled() -> None:
    """Recorded, then killed before the orders were sent: the exchange knows neither."""
    executor = ScriptedExecutor({}, {"a": (99.5, 100.0), "b": (101.0, 101.5)})
    trade = planned_trade().advance(TradeState.SUBMITTED, orders=(
        Order("arb7b", 7, "a", "BTCUSDT", Side.BUY, D("100"), D("1")),
        Order("arb7s", 7, "b", "BTCUSDT", Side.SELL, D("101"), D("1")),
    ))
    runner = TradeRunner(executor=executor, ledger=funded_ledger(), report=lambda t: None,
                         clock=lambda: 1.0, retry_delay=0.0)
    final = await runner.recover(trade)
    assert final.state is TradeState.CANCELLED
    assert final.reason == "its orders were never placed before a restart"
    assert executor.placed == []


async def test_no_stop_loss_configured_means_unwind() -> None:
    final, _, executor, _ = await run({("buy", "entry"): "reject"}, stop_loss=None)
    assert final.state is TradeState.UNWOUND
    unwind = executor.placed[-1]
    assert (unwind.side, unwind.exchange) == (Side.BUY, "b")  # buy back what was sold


async def test_unknown_outcome_is_asked_of_the_exchange(autojump_clock: object) -> None:
    final, _, _, ledger = await run({("buy", "entry"): "unknown"})
    assert final.state is TradeState.COMPLETED
    assert_ledger_reconciles(ledger, final)


async def test_failed_unwind_is_reported_not_hidden(autojump_clock: object) -> None:
    final, _, executor, ledger = await run(
        {("sell", "entry"): "reject", ("sell", "unwind"): "reject"},
        prices={"a": (99.5, 100.0), "b": (90.0, 90.5)},
    )
    assert final.state is TradeState.FAILED
    assert "unwind incomplete: 1 BTCUSDT still open" in final.reason
    assert [o.purpose for o in executor.placed].count("unwind") == 4
    assert_ledger_reconciles(ledger, final)


def test_state_machine_refuses_illegal_transitions() -> None:
    trade = planned_trade()
    with pytest.raises(ValueError, match="cannot go from planned to completed"):
        trade.advance(TradeState.COMPLETED)
    done = trade.advance(TradeState.SUBMITTED).advance(TradeState.COMPLETED)
    with pytest.raises(ValueError):
        done.advance(TradeState.FAILED)


@pytest.mark.parametrize("make", [lambda t: t.advance(TradeState.CANCELLED)])
def test_final_states(make: Callable[[Trade], Trade]) -> None:
    assert make(planned_trade()).is_final


# --- reconciling trades a crash left unfinished ------------------------------------------


def runner_for(executor: ScriptedExecutor, reports: list[Trade]) -> tuple[TradeRunner, Ledger]:
    ledger = funded_ledger()
    return TradeRunner(executor=executor, ledger=ledger, report=reports.append,
                       clock=lambda: 2.0, stop_loss_fraction=lambda: 0.5), ledger


async def test_a_trade_never_sent_is_cancelled() -> None:
    reports: list[Trade] = []
    runner, _ = runner_for(ScriptedExecutor({}, {"a": (99.5, 100.0), "b": (101.0, 101.5)}),
                           reports)
    final = await runner.recover(planned_trade())
    assert final.state is TradeState.CANCELLED and final.reason == "not sent before a restart"


async def test_orders_with_a_lost_answer_are_asked_for_then_flattened(
    autojump_clock: object,
) -> None:
    executor = ScriptedExecutor({}, {"a": (99.5, 100.0), "b": (101.0, 101.5)})
    # The crash came after both legs were sent: the buy filled (the exchange knows it),
    # the sell never reached the exchange.
    trade = planned_trade()
    buy, sell = (
        Order("arb7b", 7, "a", "BTCUSDT", Side.BUY, D("100"), D("1")),
        Order("arb7s", 7, "b", "BTCUSDT", Side.SELL, D("101"), D("1")),
    )
    trade = trade.advance(TradeState.SUBMITTED, orders=(buy, sell))
    executor.unknown["arb7b"] = executor._fill(buy, 1)
    reports: list[Trade] = []
    runner, ledger = runner_for(executor, reports)
    final = await runner.recover(trade)
    # No hedge after a restart, even within the stop-loss: the bought leg is sold back.
    assert final.state is TradeState.UNWOUND
    assert [o.purpose for o in final.orders] == ["entry", "entry", "unwind"]
    assert final.realized_profit == D("-0.6995")
    assert ledger.total("a", "BTC") == D("10")


async def test_an_unwind_interrupted_by_a_crash_is_finished() -> None:
    executor = ScriptedExecutor({}, {"a": (99.5, 100.0), "b": (101.0, 101.5)})
    reports: list[Trade] = []
    runner, _ = runner_for(executor, [])
    buy = Order("arb7b", 7, "a", "BTCUSDT", Side.BUY, D("100"), D("1"))
    placed, fills = executor._fill(buy, 1)
    trade = (planned_trade().advance(TradeState.SUBMITTED, orders=(placed,))
             .with_fills(*fills).advance(TradeState.PARTIALLY_FILLED)
             .advance(TradeState.UNWINDING))
    runner.report = reports.append
    final = await runner.recover(trade)
    assert final.state is TradeState.UNWOUND
    assert final.orders[-1].purpose == "unwind"


async def test_an_unwind_after_a_restart_never_reuses_a_client_order_id() -> None:
    # Before the crash the first unwind sold half of the position; the rest is still open.
    executor = ScriptedExecutor({}, {"a": (99.5, 100.0), "b": (101.0, 101.5)})
    buy = Order("arb7b", 7, "a", "BTCUSDT", Side.BUY, D("100"), D("1"))
    unwind = Order("arb7u0", 7, "a", "BTCUSDT", Side.SELL, D("0"), D("1"), purpose="unwind")
    bought, buy_fills = executor._fill(buy, 1)
    sold, unwind_fills = executor._fill(unwind, D("0.5"))
    trade = (planned_trade().advance(TradeState.SUBMITTED, orders=(bought,))
             .with_fills(*buy_fills).advance(TradeState.PARTIALLY_FILLED)
             .advance(TradeState.UNWINDING).with_orders(sold).with_fills(*unwind_fills))
    runner, _ = runner_for(executor, [])
    final = await runner.recover(trade)
    # The exchange knows arb7u0: sending it again would be refused as a duplicate (and
    # its fills booked twice) or, on Binance, placed as a second order with that id.
    [resent] = executor.placed
    assert resent.client_order_id == "arb7u1" and resent.quantity == D("0.5")
    assert final.state is TradeState.UNWOUND
    assert [o.client_order_id for o in final.orders] == ["arb7b", "arb7u0", "arb7u1"]


class BaseFeeExecutor(ScriptedExecutor):
    """Venue ``a`` charges a buy's fee in the coin bought (Bybit's and OKX's spot default,
    Binance's without BNB) and holds no BTC besides what the trade bought; quantities are
    rounded down to a 0.001 lot, as the live executor does."""

    def __init__(self, script: Script) -> None:
        super().__init__(script, {"a": (99.5, 100.0), "b": (90.0, 90.5)})
        self.btc_on_a = D(0)

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        order = attrs.evolve(order, quantity=floor_to(order.quantity, D("0.001")))
        if order.exchange == "a" and order.side is Side.SELL and order.quantity > self.btc_on_a:
            self.placed.append(order)
            raise PermanentExchangeError("a", "insufficient balance")
        placed, fills = await super().place_order(order)
        if order.exchange != "a":
            return placed, fills
        charged = []
        for fill in fills:
            if fill.side is Side.BUY:
                fill = attrs.evolve(fill, fee=fill.quantity * FEE, fee_asset="BTC")
                self.btc_on_a += fill.quantity - fill.fee
            else:
                self.btc_on_a -= fill.quantity
            charged.append(fill)
        return placed, charged


async def test_an_unwind_sells_only_what_a_buy_charged_in_base_left(
    autojump_clock: object,
) -> None:
    executor = BaseFeeExecutor({("sell", "entry"): "reject"})
    ledger = funded_ledger()
    ledger.set_balance("a", "BTC", D(0))
    runner = TradeRunner(executor=executor, ledger=ledger, report=lambda t: None,
                         clock=lambda: 1.0)
    final = await runner.run(planned_trade("0.5"))
    # Bought 0.5, of which the fee took 0.0005: 0.4995 arrived, 0.499 is on the lot size.
    unwinds = [o for o in executor.placed if o.purpose == "unwind"]
    assert [o.quantity for o in unwinds] == [D("0.499")]
    assert final.state is TradeState.UNWOUND, final.reason
    assert "0.0005 BTC" in final.reason and "below the lot size" in final.reason
    assert executor.btc_on_a == ledger.total("a", "BTC") == D("0.0005")
