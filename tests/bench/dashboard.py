"""Benchmark: the dashboard with 150 symbols x 3 venues streaming, in headless Chromium.

A real daemon (``python -m arbotd run``) quotes 150 simulated symbols on 3 venues; the
page shows the market view, whose table has a row per symbol. For ``--seconds`` the page
is measured from the inside: price messages received, table renders (at most 4 a second
by design) and what each cost, animation frames, how late a 100 ms timer fires (the main
thread's lag), and how long clicks wait before their handler runs (selenium clicks the
table's header; ``performance.now() - event.timeStamp`` in a capturing listener).

    .venv/bin/python tests/bench/dashboard.py [--seconds 20] [--updates 5] [--quick]

Needs Debian's chromium and chromium-driver. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "dashboard"))
from _benchtools import percentile, print_table
from dashtools import DaemonProcess, browser, many_symbols, missing_browser

SYMBOLS = 150

PROBE = """
const probe = window.benchProbe = {lags: [], clicks: [], frames: 0, started: performance.now(),
  base: Object.assign({}, window.arbotdDashboard.stats())};
(function tick() {
  const planned = performance.now() + 100;
  setTimeout(() => { probe.lags.push(performance.now() - planned); tick(); }, 100);
})();
(function frame() { probe.frames += 1; requestAnimationFrame(frame); })();
document.addEventListener("click", (e) => probe.clicks.push(performance.now() - e.timeStamp),
                          true);
"""


def run(seconds: float, updates: float) -> None:
    with tempfile.TemporaryDirectory(prefix="arbotd-bench-dashboard-") as directory, \
            DaemonProcess(Path(directory), symbols=many_symbols(SYMBOLS),
                          updates_per_second=updates, dislocations_per_hour=20.0) as daemon, \
            browser(1400, 900) as b:
        b.driver.get(daemon.url + "/#market")
        b.wait_for(lambda: b.count("#prices tbody tr") == SYMBOLS, "a row per symbol", 60)
        b.wait_for(lambda: b.stats().get("messages", 0) > 5000, "the stream to fill", 60)
        b.js(PROBE)
        header = b.find("#prices thead th")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            header.click()
            time.sleep(0.25)
        figures = b.js("""
            const p = window.benchProbe, now = window.arbotdDashboard.stats();
            return {elapsed: (performance.now() - p.started) / 1000, frames: p.frames,
                    lags: p.lags, clicks: p.clicks, messages: now.messages - p.base.messages,
                    renders: now.renders - p.base.renders,
                    applied: now.applied - p.base.applied, maxRenderMs: now.maxRenderMs,
                    lastRenderMs: now.lastRenderMs, symbols: now.symbols};""")
    elapsed = figures["elapsed"]
    lags, clicks = figures["lags"], figures["clicks"]
    print(f"dashboard, {SYMBOLS} symbols x 3 venues, {updates:g} updates/s per venue and "
          f"symbol ({SYMBOLS * 3 * updates:,.0f} quotes/s made), market view, "
          f"{elapsed:.1f} s measured")
    print_table(["figure", "value"], [
        ["price messages received/s", f"{figures['messages'] / elapsed:,.0f}"],
        ["table renders/s (at most 4)", f"{figures['renders'] / elapsed:.2f}"],
        ["cells updated per render", f"{figures['applied'] / max(1, figures['renders']):,.0f}"],
        ["render cost, last / max (ms)",
         f"{figures['lastRenderMs']:.1f} / {figures['maxRenderMs']:.1f}"],
        ["animation frames/s", f"{figures['frames'] / elapsed:.1f}"],
        ["timer lag p50 / p99 / max (ms)",
         f"{percentile(lags, 0.5):.1f} / {percentile(lags, 0.99):.1f} / {max(lags):.1f}"],
        [f"click to handler p50 / max (ms, {len(clicks)} clicks)",
         f"{percentile(clicks, 0.5):.1f} / {max(clicks):.1f}"],
        ["symbols shown", str(figures["symbols"])],
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--updates", type=float, default=5.0,
                        help="quote updates per second per venue and symbol")
    parser.add_argument("--quick", action="store_true", help="5 seconds")
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        print(f"skipped: {reason}")
        return 0
    run(5.0 if args.quick else args.seconds, args.updates)
    return 0


if __name__ == "__main__":
    sys.exit(main())
