"""A simulated run recorded through storage (``[storage] record_quotes = true``) and
replayed with the same configuration and seed gives the signals the run found (ids,
prices, routes, quantities) and the trades it made (states, fills, results)."""

from __future__ import annotations

import csv
import datetime as dt
import math
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio
from support import VIRTUAL_EPOCH, RecordingNotifier

from arbotd._daemon import Daemon
from arbotd_replay import QuoteFileWriter
from arbotd_sql import SqlStorage, StorageConfig

CONFIG = """
[daemon]
mode = "simulation"
autostart = true
state_dir = "{state_dir}"

[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
cooldown_seconds = 10.0

[simulation]
seed = 42
# More dislocations than the default: more signals and trades to compare.
dislocation_per_hour = 60.0

[simulation.paper]
# Off the venues' tick grid, so that in the live run a fill never lands on the instant
# of a quote (where trio's scheduling order would decide which comes first).
fill_delay_seconds = 0.2123

[storage]
record_quotes = true

[api]
enabled = false

[backtest]
seed = 42
"""


async def simulate_and_stop(config_path: Path, seconds: float) -> tuple[Any, float]:
    """Run the daemon in virtual time for ``seconds`` after READY; return the stopped
    runtime and the (virtual) wall time at which stopping was asked."""
    notifier = RecordingNotifier()
    daemon = Daemon(config_path, notifier=notifier)
    runtime = daemon.prepare()
    runtime.use_virtual_clock(VIRTUAL_EPOCH - trio.current_time())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        await notifier.wait_for("READY=1")
        await trio.sleep(seconds)
        stopped_at = runtime.clock()
        runtime.shutdown_requested.set()
    return runtime, stopped_at


async def export_recorded_quotes(state_dir: Path, out: Path) -> int:
    storage = SqlStorage(StorageConfig(), state_dir=state_dir)
    await storage.open()
    try:
        quotes = await trio.to_thread.run_sync(
            lambda: [q for batch in storage.recorded_quotes(0.0, math.inf) for q in batch])
        assert storage.dropped_quotes == 0
    finally:
        await storage.close()
    writer = QuoteFileWriter(out, reorder_seconds=0)
    writer.write_all(quotes)
    writer.close()
    return len(quotes)


async def test_replay_of_a_recorded_simulation_gives_its_signals_and_trades(
    tmp_path: Path, autojump_clock: object
) -> None:
    config = tmp_path / "arbot.toml"
    config.write_text(CONFIG.format(state_dir=tmp_path / "state"))
    runtime, stopped_at = await simulate_and_stop(config, 150.0)
    recording = tmp_path / "recorded.csv.gz"
    count = await export_recorded_quotes(tmp_path / "state", recording)
    assert count > 20_000

    report = tmp_path / "report"
    result = await trio.to_thread.run_sync(lambda: subprocess.run(
        [sys.executable, "-m", "arbotd", "-c", str(config), "backtest", "--data",
         str(recording), "--end", repr(stopped_at), "--report", str(report)],
        capture_output=True, text=True, check=False))
    assert result.returncode == 0, result.stderr

    live_signals = [s for s in runtime.engine.last_signals if s.timestamp < stopped_at]
    assert len(live_signals) >= 10 and any(s.executed for s in live_signals)
    with (report / "signals.csv").open() as stream:
        replayed = list(csv.DictReader(stream))
    assert [(int(r["signal_id"]), r["symbol"], r["buy_exchange"], r["sell_exchange"],
             float(r["buy_price"]), float(r["sell_price"]), float(r["quantity"]),
             r["executed"] == "True", r["reject_reason"] or None) for r in replayed] == [
        (s.id, s.symbol, s.buy_exchange, s.sell_exchange, s.buy_price, s.sell_price,
         s.quantity, s.executed, s.reject_reason) for s in live_signals]
    # signal times agree to the float rounding of two ways of adding the same seconds
    assert all(abs(dt.datetime.fromisoformat(r["time"]).timestamp() - s.timestamp) < 1e-5
               for r, s in zip(replayed, live_signals, strict=True))

    live_trades = [t for t in runtime.control.recent_trades.values()
                   if t.completed_at is not None and t.completed_at < stopped_at]
    assert len(live_trades) >= 5
    with (report / "trades.csv").open() as stream:
        replayed_trades = {int(r["trade_id"]): r for r in csv.DictReader(stream)}
    for trade in live_trades:
        row = replayed_trades[trade.id]
        assert (row["symbol"], row["buy_exchange"], row["sell_exchange"], row["state"]) == (
            trade.symbol, trade.buy_exchange, trade.sell_exchange, str(trade.state))
        assert Decimal(row["net_profit"]) == trade.realized_profit.quantize(Decimal("1e-8"))
        assert Decimal(row["planned_quantity"]) == trade.quantity

    # The same quotes replayed straight from the storage (--stored) give the same run.
    stored_report = tmp_path / "stored-report"
    result = await trio.to_thread.run_sync(lambda: subprocess.run(
        [sys.executable, "-m", "arbotd", "-c", str(config), "backtest", "--stored",
         "--end", repr(stopped_at), "--report", str(stored_report)],
        capture_output=True, text=True, check=False))
    assert result.returncode == 0, result.stderr
    for name in ("signals.csv", "trades.csv"):
        assert (stored_report / name).read_text() == (report / name).read_text(), name


def test_stored_and_files_do_not_mix(tmp_path: Path) -> None:
    config = tmp_path / "arbot.toml"
    config.write_text(CONFIG.format(state_dir=tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "arbotd", "-c", str(config), "backtest", "--stored",
         "--data", "x.csv.gz"], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "--stored replays the storage's quotes: leave out --data" in result.stderr


def test_stored_without_recorded_quotes_says_so(tmp_path: Path) -> None:
    config = tmp_path / "arbot.toml"
    config.write_text(CONFIG.format(state_dir=tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "arbotd", "-c", str(config), "backtest", "--stored"],
        capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "no recorded quotes between" in result.stderr, result.stderr
    assert "record_quotes" in result.stderr
