"""Benchmark: what inventory skew changes, in the same seeded 6-hour market.

A market whose dislocations mostly pay one way (``support.write_one_way_market``),
replayed by ``arbotd backtest`` with ``inventory_skew`` 0 and 0.8: completed trades per
direction, net profit, the mean and largest BTC drift, and the opportunities turned down
for balance and for the skew.

    .venv/bin/python tests/bench/inventory_skew.py [--hours 6] [--skew 0.8] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support import INVENTORY_CONFIG, write_one_way_market

from arbotd._cli import main


def replay(data: Path, skew: float, work: Path) -> dict:
    config = work / f"skew-{skew}.toml"
    config.write_text(INVENTORY_CONFIG.format(skew=skew), encoding="utf-8")
    report = work / f"report-{skew}"
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(["-c", str(config), "--log-level", "error", "backtest", "--data",
                       str(data), "--report", str(report)])
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"backtest with inventory_skew = {skew} failed ({status})")
    metrics = json.loads((report / "metrics.json").read_text())
    with (report / "drift.csv").open() as stream:
        drifts = [abs(float(r["drift"])) for r in csv.DictReader(stream)
                  if r["asset"] == "BTC" and r["exchange"] == "a"]
    return {"metrics": metrics, "elapsed": elapsed,
            "mean_drift": sum(drifts) / len(drifts) if drifts else 0.0,
            "max_drift": max(drifts, default=0.0)}


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--skew", type=float, default=0.8)
    parser.add_argument("--quick", action="store_true", help="a quarter of an hour")
    args = parser.parse_args()
    hours = 0.25 if args.quick else args.hours
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = write_one_way_market(work / "market.csv", hours=hours)
        runs = {skew: replay(data, skew, work) for skew in (0.0, args.skew)}
    print(f"seeded one-way market: {hours:g} h of BTCUSDT on a and b, one quote a second "
          "each; min_profit_threshold 0.3 %, trades of 1,000 USDT, 5,000 USDT and "
          "5,000 USDT of BTC per venue")
    print(f"{'inventory_skew':>15}{'completed':>11}{'a->b':>7}{'b->a':>7}{'net profit':>13}"
          f"{'mean drift':>12}{'max drift':>11}{'balance rej.':>14}{'skew rej.':>11}"
          f"{'replay s':>10}")
    for skew, run in runs.items():
        m = run["metrics"]
        routes = m["by_route"]
        print(f"{skew:>15g}{m['completed_trades']:>11}"
              f"{routes.get('BTCUSDT a->b', {}).get('trades', 0):>7}"
              f"{routes.get('BTCUSDT b->a', {}).get('trades', 0):>7}"
              f"{m['net_profit']:>13,.2f}{run['mean_drift'] * 100:>11.1f}%"
              f"{run['max_drift'] * 100:>10.1f}%{m['rejections'].get('balance', 0):>14,}"
              f"{m['rejections'].get('inventory_skew', 0):>11,}{run['elapsed']:>10.2f}")
    off, on = runs[0.0]["metrics"], runs[args.skew]["metrics"]
    print(f"with skew: {on['completed_trades'] / max(1, off['completed_trades']):.1f}x the "
          f"completed trades, net profit {on['net_profit'] - off['net_profit']:+,.2f}")


if __name__ == "__main__":
    main_()
