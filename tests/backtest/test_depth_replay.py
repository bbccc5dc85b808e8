"""Backtests over recordings that carry the top levels of each book: the replayed quotes
keep their levels, and paper fills walk the book as it was at their replayed moment, so
a simulation in depth, recorded and replayed, gives its signals and fills again."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
import trio
from support import VIRTUAL_EPOCH, RecordingNotifier

from arbotd import Quote
from arbotd._cli import main
from arbotd._daemon import Daemon
from arbotd_replay import QuoteFileWriter
from arbotd_replay.runner import RECORDING_KEY
from arbotd_replay.stores import RecordingStore

T0 = 1_750_000_000.0

CONFIG = """
[arbitrage]
symbols = ["BTCUSDT"]
min_profit_threshold = 0.002
trade_amount_usd = 1000.0
slippage_tolerance = 0.0005
cooldown_seconds = 30.0

[simulation]
enabled = false

[simulation.paper]
fill_delay_seconds = 0.1
reject_rate = 0.0
partial_fill_rate = 0.0

[api]
enabled = false
"""

pytestmark = pytest.mark.usefixtures("isolated_logging")

Levels = tuple[tuple[float, float], ...]


def book(t: float, exchange: str, bids: Levels, asks: Levels) -> Quote:
    return Quote(exchange, "BTCUSDT", bids[0][0], asks[0][0], bids[0][1], asks[0][1],
                 T0 + t, T0 + t, bids, asks)


def backtest(tmp_path: Path, capsys: pytest.CaptureFixture[str], quotes: list[Quote]
             ) -> tuple[dict, list[dict], list[dict]]:
    data = tmp_path / "depth.csv.gz"
    writer = QuoteFileWriter(data, reorder_seconds=0, levels=True)
    writer.write_all(quotes)
    writer.close()
    config = tmp_path / "arbot.toml"
    config.write_text(textwrap.dedent(CONFIG))
    report = tmp_path / "report"
    status = main(["-c", str(config), "backtest", "--data", str(data), "--report",
                   str(report), "--strict"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    with (report / "trades.csv").open() as stream:
        trades = list(csv.DictReader(stream))
    with (report / "fills.csv").open() as stream:
        fills = list(csv.DictReader(stream))
    return json.loads((report / "metrics.json").read_text()), trades, fills


def test_a_backtest_fills_beyond_the_best_level_of_the_recorded_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quotes = [
        # ex_b bids 1 % above ex_a's ask, 1 BTC on each best level: a signal for 1 BTC
        book(0.0, "ex_a", ((99.95, 1.0),), ((100.0, 1.0),)),
        book(0.5, "ex_b", ((101.0, 1.0),), ((101.1, 1.0),)),
        # before the orders fill (0.1 s later) the best levels shrink, with more behind
        # them within the orders' limits (100.05 to buy, 100.9495 to sell) and beyond
        book(0.55, "ex_a", ((99.95, 1.0),), ((100.0, 0.4), (100.02, 3.0), (100.06, 9.0))),
        book(0.56, "ex_b", ((101.0, 0.3), (100.98, 3.0), (100.9, 9.0)), ((101.1, 1.0),)),
        book(1.0, "ex_a", ((99.95, 1.0),), ((100.0, 1.0),)),
        book(2.0, "ex_b", ((99.96, 1.0),), ((100.01, 1.0),)),
    ]
    metrics, [trade], fills = backtest(tmp_path, capsys, quotes)
    assert trade["state"] == "completed" and trade["reason"] == ""
    assert Decimal(trade["planned_quantity"]) == Decimal(trade["quantity"]) == 1
    # each leg took its best level, then the rest from the second
    assert [(f["side"], f["price"], f["quantity"]) for f in fills] == [
        ("buy", "100.0", "0.4"), ("buy", "100.02", "0.6"),
        ("sell", "101.0", "0.3"), ("sell", "100.98", "0.7")]
    assert Decimal(trade["buy_price"]) == Decimal("100.012")  # volume-weighted
    assert Decimal(trade["sell_price"]) == Decimal("100.986")
    # 100.986 - 100.012, less 0.1 % of each leg's notional in fees
    assert Decimal(trade["net_profit"]) == Decimal("0.773002")
    assert metrics["bad_rows"] == {}


SIMULATION = """
[daemon]
mode = "simulation"
autostart = true
state_dir = "{state_dir}"

[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT"]
cooldown_seconds = 10.0
# Trades large beside the best levels (1,000 to 20,000 USDT): by the time an order
# fills, the best level has often become too small for it and it walks the book.
trade_amount_usd = 50000.0
max_position_size = 50000.0

[risk_management]
max_position_size = 50000.0
daily_loss_limit = 100000.0

[simulation]
seed = 42
depth_levels = 5
dislocation_per_hour = 60.0

[simulation.paper]
# Off the venues' tick grid, so that in the live run a fill never lands on the instant
# of a quote (where trio's scheduling order would decide which comes first).
fill_delay_seconds = 0.2123
balances = {{ USDT = 1000000.0 }}
coin_balance_usd = 1000000.0

[api]
enabled = false

[backtest]
seed = 42
balance = 1000000.0
coin_balance_usd = 1000000.0
"""


@pytest.mark.slow
async def test_a_simulation_recorded_in_depth_replays_to_its_signals_and_trades(
    tmp_path: Path, autojump_clock: object
) -> None:
    config = tmp_path / "arbot.toml"
    config.write_text(SIMULATION.format(state_dir=tmp_path / "state"))
    recording = tmp_path / "depth.csv.gz"
    notifier = RecordingNotifier()
    daemon = Daemon(config, notifier=notifier)
    runtime = daemon.prepare()
    # Every quote the engine sees goes to the recording (as `arbotd record` writes it).
    runtime.plugin_state[RECORDING_KEY] = RecordingStore(recording)
    runtime.use_virtual_clock(VIRTUAL_EPOCH - trio.current_time())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        await notifier.wait_for("READY=1")
        await trio.sleep(90.0)
        stopped_at = runtime.clock()
        runtime.shutdown_requested.set()

    live_trades = [t for t in runtime.control.recent_trades.values()
                   if t.completed_at is not None and t.completed_at < stopped_at]
    walked = [t for t in live_trades
              if len({f.price for f in t.fills if f.side.value == "buy"}) > 1]
    assert len(live_trades) >= 3 and walked, "expected trades filled over several levels"

    report = tmp_path / "report"
    result = await trio.to_thread.run_sync(lambda: subprocess.run(
        [sys.executable, "-m", "arbotd", "-c", str(config), "backtest", "--data",
         str(recording), "--end", repr(stopped_at), "--report", str(report), "--strict"],
        capture_output=True, text=True, check=False))
    assert result.returncode == 0, result.stderr

    live_signals = [s for s in runtime.engine.last_signals if s.timestamp < stopped_at]
    with (report / "signals.csv").open() as stream:
        replayed = list(csv.DictReader(stream))
    assert [(int(r["signal_id"]), r["buy_exchange"], r["sell_exchange"],
             float(r["buy_price"]), float(r["quantity"]), r["executed"] == "True")
            for r in replayed] == [
        (s.id, s.buy_exchange, s.sell_exchange, s.buy_price, s.quantity, s.executed)
        for s in live_signals]
    with (report / "fills.csv").open() as stream:
        replayed_fills: dict[int, list[tuple[Decimal, Decimal]]] = {}
        for r in csv.DictReader(stream):
            replayed_fills.setdefault(int(r["trade_id"]), []).append(
                (Decimal(r["price"]), Decimal(r["quantity"])))
    for trade in live_trades:
        assert replayed_fills[trade.id] == [(f.price, f.quantity) for f in trade.fills]
