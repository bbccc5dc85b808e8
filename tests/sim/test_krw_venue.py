"""The simulated venue quoted in KRW (``[simulation.krw]``): its quotes are in KRW with a
USDT/KRW rate market of its own, the engine converts them, and paper trades there are
paid in KRW."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from support import simulate
from test_simulation_mode import config_text, run_simulation

from arbotd import FINAL_STATES, Side, split_symbol
from arbotd_sim.config import KrwVenueConfig, SimulationConfig
from arbotd_sim.market import VenueSimulator
from arbotd_sim.won import KrwVenueSimulator

KRW_ON = """
[simulation.krw]
enabled = true
"""


def test_the_krw_venue_quotes_the_true_price_times_premium_and_rate() -> None:
    config = SimulationConfig(krw=KrwVenueConfig(enabled=True, premium_bps_stddev=0.0),
                              dislocation_per_hour=0.0)
    won = KrwVenueSimulator(config, ["BTCUSDT"])
    usd = VenueSimulator(config, "sim_alpha", ["BTCUSDT"])
    won.seek(5_000)
    usd.seek(5_000)
    rate, btc = won.step(1_000.0)
    [reference] = usd.step(1_000.0)
    assert (rate.symbol, rate.exchange) == ("USDTKRW", "sim_won")
    assert rate.bid < rate.ask
    assert 1_200 < rate.mid < 1_500
    # No premium noise, no dislocations: KRW price / rate = true price x 1.02, up to the
    # venues' small spreads and sim_alpha's basis of a few bp.
    assert btc.mid / rate.mid / 1.02 == pytest.approx(reference.mid, rel=2e-3)
    assert round(btc.bid, 2) == btc.bid and btc.bid < btc.ask
    # Seekable: the same tick gives the same quotes.
    again = KrwVenueSimulator(config, ["BTCUSDT"])
    again.seek(5_000)
    assert again.step(1_000.0) == [rate, btc]


async def test_paper_trades_on_the_krw_venue_are_paid_in_krw(
        tmp_path: Path, autojump_clock: object) -> None:
    runtime, quotes = await run_simulation(tmp_path, 240.0, simulation=KRW_ON)
    engine, control, ledger = runtime.engine, runtime.control, runtime.ledger
    assert engine is not None and control is not None
    # The venue's prices reach the book (and the bus) converted at its rate market.
    won = [q for q in quotes if q.exchange == "sim_won"]
    assert won and all(q.rate_bid is not None and q.symbol != "USDTKRW" for q in won)
    book = engine.book["BTCUSDT"]["sim_won"]
    assert book.native_ask is not None and book.rate_bid is not None
    assert book.ask == pytest.approx(book.native_ask / book.rate_bid)
    # The rolling baseline follows the premium, near 2 %.
    assert engine.rolling_premium.status()["sim_won"]["samples"] > 100
    assert 1.0 < engine.market.premium["sim_won"] < 3.0
    # The paper account there holds KRW, not USDT.
    assert ledger.starting[("sim_won", "KRW")] > 10_000_000
    assert ("sim_won", "USDT") not in ledger.starting

    trades = [t for t in control.recent_trades.values() if "sim_won" in
              (t.buy_exchange, t.sell_exchange)]
    assert trades, "no trade on the KRW venue"
    assert all(t.state in FINAL_STATES for t in trades)
    won_fills = [f for t in trades for f in t.fills if f.exchange == "sim_won"]
    assert won_fills and all(f.native_asset == "KRW" and f.fee_asset == "KRW"
                             for f in won_fills)
    for trade in trades:
        leg_rate = trade.buy_rate if trade.buy_exchange == "sim_won" else trade.sell_rate
        assert leg_rate is not None and 1_200 < leg_rate < 1_500
    signals = [s for s in engine.last_signals if s.executed and "sim_won" in
               (s.buy_exchange, s.sell_exchange)]
    signal = signals[0]
    if signal.buy_exchange == "sim_won":
        assert signal.buy_native_price == pytest.approx(signal.buy_price * signal.buy_rate)
    else:
        assert signal.sell_native_price == pytest.approx(signal.sell_price * signal.sell_rate)

    # Every balance moved by exactly its fills: KRW on sim_won, USDT elsewhere.
    expected: dict[tuple[str, str], Decimal] = {}
    for trade in control.recent_trades.values():
        base, quote = split_symbol(trade.symbol)
        for fill in trade.fills:
            sign = 1 if fill.side is Side.BUY else -1
            currency = fill.native_asset or quote
            price = fill.native_price if fill.native_price is not None else fill.price
            for key, amount in (((fill.exchange, base), sign * fill.quantity),
                                ((fill.exchange, currency), -sign * price * fill.quantity),
                                ((fill.exchange, fill.fee_asset), -fill.fee)):
                expected[key] = expected.get(key, Decimal(0)) + amount
    for key, start in ledger.starting.items():
        assert ledger.total(*key) - start == expected.get(key, Decimal(0)), key
    assert all(b.locked == 0 for b in ledger.balances())


async def test_a_restart_keeps_the_rolling_premium_window(
        tmp_path: Path, autojump_clock: object) -> None:
    path = tmp_path / "arbot.toml"
    # A window of 30 days: while the second daemon opens its storage (in a thread) the
    # autojump clock may run far ahead, and the restored samples must still be in it.
    path.write_text(config_text(42, tmp_path / "state",
                                simulation=KRW_ON + "premium_window_seconds = 2592000\n"))
    first, _ = await simulate(path, 30.0)
    assert first.engine is not None
    before = first.engine.rolling_premium.status()["sim_won"]["samples"]
    assert before > 20
    # The same state directory: storage gives the samples back at start.
    second, _ = await simulate(path, 5.0)
    assert second.engine is not None
    after = second.engine.rolling_premium.status()["sim_won"]["samples"]
    assert after >= before + 5
