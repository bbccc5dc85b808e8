"""The benchmark scripts still run: each with ``--quick`` (tiny sizes, seconds), as a
subprocess, exiting 0 and printing its figure lines. No figure is checked against a
target here: speed is judged by reading the scripts' output, not by the test suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent


def run_script(name: str, *args: str, timeout: float = 180) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / name), "--quick", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_storage_bench_runs() -> None:
    out = run_script("storage.py")
    assert "== sqlite ==" in out
    assert "== postgresql" in out  # measured, or said to be skipped and why
    for line in ("record_signal (1 row each)", "record_trade (5 rows each)",
                 "trades page (ETHUSDT", "as 1h, exchange given", "as 1h, exchange=None",
                 "performance, period=month"):
        assert line in out, out


@pytest.mark.slow
# "auto" is wrk where it is installed and the Python client otherwise: the Python client
# on its own only where the two differ.
@pytest.mark.parametrize("client", ["auto", *(["python"] if shutil.which("wrk") else [])])
def test_api_bench_runs(client: str) -> None:
    out = run_script("api.py", "--client", client)
    assert "load generator:" in out
    assert "150 symbols x 3 venues" in out
    for route in ("trivial route (/ping)", "GET /api/v1/status", "GET /api/v1/prices/current"):
        assert route in out, out
    assert "of the trivial route's rate" in out, out


@pytest.mark.slow
def test_feed_ingest_bench_runs() -> None:
    out = run_script("feed_ingest.py")
    assert "150 symbols x 3 venues" in out
    for line in ("bare trio-websocket client", "BinanceFeed -> Engine (xarb)",
                 "feed/bare rate ratio:", "BinanceFeed depth 20 -> Engine (xarb)",
                 "depth feed/bare rate ratio:"):
        assert line in out, out


@pytest.mark.slow
def test_backtest_bench_runs() -> None:
    out = run_script("backtest.py")
    assert "3 venues x 20 symbols" in out
    for line in ("read + parse only:", "replay, end to end:", "ratio replay/read rate:"):
        assert line in out, out


@pytest.mark.slow
def test_recordings_bench_runs() -> None:
    out = run_script("recordings.py")
    assert "3 venues x 20 symbols" in out
    for line in ("CSV read + decode:", "Parquet read + decode:", "CSV read, no quote:",
                 "Parquet read, no quote:",
                 "Parquet bare loop:",
                 "backtest from Parquet:", "backtest from CSV:", "ratio Parquet/CSV read rate:",
                 "ratio backtest/bare loop rate:"):
        assert line in out, out


@pytest.mark.slow
def test_trade_intent_bench_runs() -> None:
    out = run_script("trade_intent.py", "--no-postgres")
    assert "== sqlite ==" in out
    for line in ("write + fsync of 1 KB", "commit_trade (durable, per trade)",
                 "reserve_ids (16 ids, durable)", "ratio (while committing / alone)"):
        assert line in out, out


@pytest.mark.slow
def test_engine_ingest_bench_runs() -> None:
    out = run_script("engine_ingest.py")
    assert "3 venues x 50 symbols" in out
    for line in ("best level only (level-1 feeds)", "books of 20 levels a side",
                 "engine adds", "depth/level-1 engine cost"):
        assert line in out, out


@pytest.mark.slow
def test_fill_latency_bench_runs() -> None:
    out = run_script("fill_latency.py")
    assert "fill_latency: fill-to-knowledge on the fake exchanges" in out
    for venue in ("binance", "bybit", "okx"):
        assert f"{venue} IOC x" in out, out
    for line in ("private stream", "REST (polled every 0.2 s)", "binance resting x"):
        assert line in out, out


@pytest.mark.slow
def test_inventory_skew_bench_runs() -> None:
    out = run_script("inventory_skew.py")
    assert "inventory_skew" in out and "mean drift" in out
    assert "with skew:" in out, out


@pytest.mark.slow
def test_sweep_bench_runs() -> None:
    out = run_script("sweep.py", timeout=400)
    assert "4 configurations over" in out
    for line in ("plain backtests, 4 configurations:", "sweep, 1 worker:", "sweep, 2 workers:",
                 "speed-up 2 workers / 1:", "sweep overhead per run vs plain backtests"):
        assert line in out, out
