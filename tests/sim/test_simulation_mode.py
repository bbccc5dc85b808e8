"""Simulation mode end to end: the builtin plugins, the simulated venues and paper fills,
run in virtual time. The same seed gives the same quotes, signals and trades, and the paper
ledger reconciles to the last digit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import trio
from support import VIRTUAL_EPOCH, RecordingNotifier, simulate

from arbotd import FINAL_STATES, Quote, Runtime, Side, TradeState
from arbotd._daemon import Daemon

EPOCH = 1_750_000_000.0

CONFIG = """
[daemon]
mode = "simulation"
autostart = true
state_dir = "{state_dir}"

[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
cooldown_seconds = 10.0
{arbitrage}

[simulation]
seed = {seed}
{simulation}

[api]
port = 0

[simulation.paper]
# Off the venues' tick grid, so a fill never lands on the instant of a quote.
fill_delay_seconds = 0.2123
{paper}
"""


def config_text(seed: int, state_dir: Path, *, arbitrage: str = "", simulation: str = "",
                paper: str = "") -> str:
    return CONFIG.format(seed=seed, state_dir=state_dir, arbitrage=arbitrage,
                         simulation=simulation, paper=paper)


async def run_simulation(tmp_path: Path, seconds: float, seed: int = 42, *,
                         arbitrage: str = "", simulation: str = "", paper: str = "",
                         extra: str = "") -> tuple[Runtime, list[Quote]]:
    """``arbitrage``, ``simulation`` and ``paper`` are added to their tables, ``extra``
    to the file."""
    # A state directory of its own: a run must not resume another run's database.
    run = len(list(tmp_path.glob("arbot-*.toml")))
    path = tmp_path / f"arbot-{seed}-{run}.toml"
    path.write_text(config_text(seed, tmp_path / f"state-{run}", arbitrage=arbitrage,
                                simulation=simulation, paper=paper) + extra)
    return await simulate(path, seconds)


def outcome(runtime: Runtime) -> tuple[list, list]:
    assert runtime.engine is not None and runtime.control is not None
    signals = [
        (s.id, s.symbol, s.buy_exchange, s.sell_exchange, s.buy_price, s.sell_price,
         s.quantity, s.executed, s.reject_reason)
        for s in runtime.engine.last_signals
    ]
    trades = [
        (t.id, t.state, t.quantity, t.realized_profit, tuple(f.price for f in t.fills))
        for t in runtime.control.recent_trades.values()
    ]
    return signals, trades


# The autojump clock must be requested by the test itself (pytest-trio picks the clock
# before async fixtures run), so each test runs its own three virtual minutes.


async def test_signals_become_paper_trades(tmp_path: Path, autojump_clock: object) -> None:
    runtime, quotes = await run_simulation(tmp_path, 180.0)
    assert runtime.control is not None and runtime.engine is not None
    assert len(quotes) > 1000
    trades = list(runtime.control.recent_trades.values())
    assert len(trades) >= 5
    assert all(t.state in FINAL_STATES for t in trades)  # shutdown waited for them
    completed = [t for t in trades if t.state is TradeState.COMPLETED]
    assert completed and sum(t.realized_profit for t in completed) > 0
    assert runtime.engine.rejection_counts().get("cooldown", 0) > 0


async def test_paper_ledger_reconciles_exactly(tmp_path: Path, autojump_clock: object) -> None:
    runtime, _ = await run_simulation(tmp_path, 180.0)
    assert_ledger_reconciles(runtime)


def assert_ledger_reconciles(runtime: Runtime) -> None:
    assert runtime.control is not None
    expected: dict[tuple[str, str], Decimal] = {}
    for trade in runtime.control.recent_trades.values():
        base = trade.symbol.removesuffix("USDT")
        for fill in trade.fills:
            sign = 1 if fill.side is Side.BUY else -1
            key_base, key_quote = (fill.exchange, base), (fill.exchange, "USDT")
            expected[key_base] = expected.get(key_base, Decimal(0)) + sign * fill.quantity
            expected[key_quote] = (expected.get(key_quote, Decimal(0))
                                   - sign * fill.price * fill.quantity - fill.fee)
    ledger = runtime.ledger
    for key, start in ledger.starting.items():
        assert ledger.total(*key) - start == expected.get(key, Decimal(0)), key
    assert all(b.locked == 0 for b in ledger.balances())  # no reservation left behind


async def test_same_seed_same_quotes_signals_and_trades(
    tmp_path: Path, autojump_clock: object
) -> None:
    first, first_quotes = await run_simulation(tmp_path, 90.0)
    second, second_quotes = await run_simulation(tmp_path, 90.0)
    assert relative(first_quotes[:5000]) == relative(second_quotes[:5000])
    assert outcome(first) == outcome(second)
    assert outcome(first)[1], "expected some trades to compare"
    _, other_quotes = await run_simulation(tmp_path, 90.0, seed=7)
    assert relative(other_quotes[:5000]) != relative(first_quotes[:5000])


# Trades large beside the books' best levels (1,000 to 20,000 USDT), so that by the time
# an order fills the best level has often become too small for it.
LARGE_TRADES = "trade_amount_usd = 50000.0\nmax_position_size = 50000.0"
LARGE_RISK = """
[risk_management]
max_position_size = 50000.0
daily_loss_limit = 100000.0
"""


async def test_paper_trades_on_books_in_depth_fill_across_levels(
    tmp_path: Path, autojump_clock: object
) -> None:
    runtime, quotes = await run_simulation(
        tmp_path, 90.0, arbitrage=LARGE_TRADES, simulation="depth_levels = 5",
        paper="balances = { USDT = 1000000.0 }\ncoin_balance_usd = 1000000.0",
        extra=LARGE_RISK)
    assert quotes and all(len(q.bids) == len(q.asks) == 5 for q in quotes)
    assert runtime.control is not None
    trades = list(runtime.control.recent_trades.values())
    assert len(trades) >= 5
    walked = [o for t in trades for o in t.orders
              if len({f.price for f in t.fills if f.order_id == o.client_order_id}) > 1]
    assert walked, "expected an order filled over more than one level"
    assert_ledger_reconciles(runtime)


def relative(quotes: list[Quote]) -> list[tuple]:
    """Quotes with times counted from the run's first quote: a run's virtual start depends
    on how long opening storage (in a thread) took."""
    start = quotes[0].received_ts
    return [(q.exchange, q.symbol, q.bid, q.ask, q.bid_size, q.ask_size,
             round(q.received_ts - start, 6)) for q in quotes]


async def test_a_summary_is_logged_and_sent_to_systemd_every_minute(
    tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    path = tmp_path / "arbot.toml"
    path.write_text(config_text(42, tmp_path / "state"))
    notifier = RecordingNotifier()
    await simulate(path, 125.0, notifier=notifier)
    statuses = [f for fields in notifier.sent for f in fields if f.startswith("STATUS=running")]
    assert len(statuses) >= 3  # READY, then the summaries
    assert any("trading on, feeds 3/3 up" in s and "trades today" in s for s in statuses)
    summaries = [r.getMessage() for r in caplog.records if "quotes processed" in r.getMessage()]
    assert len(summaries) >= 2
    assert any("rejected: " in s and "cooldown" in s for s in summaries)


async def test_equity_snapshots_pause_while_a_held_asset_has_no_valid_price(
    tmp_path: Path, autojump_clock: object
) -> None:
    path = tmp_path / "arbot.toml"
    config = config_text(42, tmp_path / "state")
    path.write_text(config.replace("[simulation]\n", "[simulation]\nupdates_per_second = 2.0\n"))
    notifier = RecordingNotifier()
    daemon = Daemon(path, notifier=notifier)
    runtime = daemon.prepare()
    runtime.use_virtual_clock(VIRTUAL_EPOCH - trio.current_time())
    snapshots: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        await notifier.wait_for("READY=1")
        engine, storage = runtime.engine, runtime.storage
        record_equity = storage.record_equity

        def record(timestamp: float, equity_usd: float, balances: object) -> None:
            snapshots.append(equity_usd)
            record_equity(timestamp, equity_usd, balances)

        storage.record_equity = record
        await trio.sleep(125)
        assert len(snapshots) >= 2
        # Every venue's feed goes down: no coin held has a valid price any more.
        venues = sorted(engine.market.fees)
        for venue in venues:
            engine.on_feed_state(venue, False, "connection closed")
        assert engine.price_usd("BTC") is None
        during = len(snapshots)
        await trio.sleep(185)
        assert len(snapshots) == during
        # Back, with fresh quotes: the snapshots resume.
        for venue in venues:
            engine.on_feed_state(venue, True)
        await trio.sleep(65)
        assert len(snapshots) > during
        runtime.shutdown_requested.set()
    # Never a snapshot that left the coins out (they are most of the paper accounts).
    assert min(snapshots) > 0.9 * max(snapshots)
