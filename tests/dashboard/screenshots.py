"""Regenerate the dashboard's screenshots shown in the README:

    .venv/bin/python tests/dashboard/screenshots.py [--output contrib/screenshots]

Runs a daemon on the simulated venues (many dislocations, so that trades come quickly,
quotes recorded for a backtest) on a free loopback port, lets it trade for a while, runs a
backtest over what it recorded, and saves the main views as PNG files through headless
Chromium (Debian's chromium and chromium-driver). Takes about a minute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
from dashtools import Browser, DaemonProcess, browser, missing_browser

ROOT = Path(__file__).resolve().parents[2]
TRADING_SECONDS = 40
RECORDING = """
[storage]
record_quotes = true
"""


def _backtest(daemon: DaemonProcess) -> None:
    now = time.time()
    started = httpx.post(f"{daemon.url}/api/v1/trading/start", timeout=30, json={
        "mode": "backtest", "start_time": now - TRADING_SECONDS + 5, "end_time": now})
    started.raise_for_status()
    backtest_id = started.json()["backtest_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{daemon.url}/api/v1/backtests/{backtest_id}", timeout=30).json()
        if job["status"] != "running":
            return
        time.sleep(0.5)
    raise SystemExit("the backtest did not finish within 2 minutes")


def _save(b: Browser, path: Path) -> None:
    b.driver.save_screenshot(str(path))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def take(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="arbotd-screenshots-") as directory, \
            DaemonProcess(Path(directory), extra=RECORDING, cooldown_seconds=20.0,
                          dislocations_per_hour=300.0) as daemon, \
            browser(1400, 900) as b:
        b.driver.get(daemon.url + "/")
        print(f"trading on the simulated venues for {TRADING_SECONDS} s ...")
        time.sleep(TRADING_SECONDS)
        _backtest(daemon)

        b.show("overview")
        b.wait_for(lambda: int(b.js("return document.getElementById('pnl-chart')"
                                    ".dataset.points || 0")) >= 3, "the realised P&L chart")
        time.sleep(1)
        _save(b, output / "overview.png")

        b.show("market")
        b.wait_for(lambda: b.count('#prices tr[data-hot="true"]') >= 1,
                   "a route above the threshold", timeout=60)
        time.sleep(0.5)
        _save(b, output / "market.png")

        b.driver.set_window_size(1400, 1300)
        b.show("activity")
        b.wait_for(lambda: b.count('#trades tr[data-status="completed"]') >= 1, "a trade")
        b.click_row('#trades tr[data-status="completed"]')
        b.wait_for(lambda: b.count("[data-trade-detail] tr.fill") >= 2, "its fills")
        b.js("document.querySelector('#trade-detail').scrollIntoView({block: 'end'})")
        time.sleep(0.5)
        _save(b, output / "activity.png")

        b.driver.set_window_size(1400, 900)
        b.show("backtests")
        b.wait_for(lambda: b.count('#backtests tr[data-status="completed"]') >= 1,
                   "the backtest")
        b.click_row('#backtests tr[data-status="completed"]')
        b.wait_for(lambda: b.count('[data-chart="backtest-equity"]') == 1, "its equity chart")
        time.sleep(0.5)
        _save(b, output / "backtests.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "contrib" / "screenshots",
                        help="where to write the PNG files (default: contrib/screenshots)")
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    take(args.output.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
