"""A seeded market that pushes inventory one way: without skew one direction stops for
lack of balance; with ``inventory_skew`` the thresholds steer trades back and both
directions keep trading. The backtest report carries the drift and the plan."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support import INVENTORY_CONFIG, write_one_way_market

from arbotd._cli import main

pytestmark = pytest.mark.usefixtures("isolated_logging")


def run(tmp_path: Path, data: Path, skew: float) -> tuple[dict, dict, list[dict]]:
    config = tmp_path / f"skew-{skew}.toml"
    config.write_text(INVENTORY_CONFIG.format(skew=skew), encoding="utf-8")
    report = tmp_path / f"report-{skew}"
    assert main(["-c", str(config), "backtest", "--data", str(data),
                 "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    inventory = json.loads((report / "inventory.json").read_text())
    with (report / "drift.csv").open() as stream:
        drift = list(csv.DictReader(stream))
    return metrics, inventory, drift


def mean_btc_drift(rows: list[dict]) -> float:
    values = [abs(float(r["drift"])) for r in rows if r["asset"] == "BTC" and r["exchange"] == "a"]
    return sum(values) / len(values)


def test_skew_keeps_both_directions_trading(tmp_path: Path) -> None:
    data = write_one_way_market(tmp_path / "market.csv", hours=1.0)
    off, off_inventory, off_drift = run(tmp_path, data, 0.0)
    on, on_inventory, on_drift = run(tmp_path, data, 0.8)

    # Off: the paying direction runs out of balance and stays stopped.
    assert off["by_route"]["BTCUSDT a->b"]["trades"] > 0
    assert off["rejections"]["balance"] > 0
    assert "inventory_skew" not in off["rejections"]
    # On: the way back trades at its lowered threshold, so the way out trades again.
    assert on["by_route"]["BTCUSDT b->a"]["trades"] > 5 * max(
        1, off["by_route"].get("BTCUSDT b->a", {"trades": 0})["trades"])
    assert on["completed_trades"] > 3 * off["completed_trades"]
    assert on["net_profit"] > off["net_profit"]
    assert mean_btc_drift(on_drift) < mean_btc_drift(off_drift)

    # The report: drift once a minute for both venues, the plan at the end restoring
    # the targets, the largest drift seen.
    assert {r["exchange"] for r in on_drift} == {"a", "b"}
    assert len(on_drift) >= 4 * 30   # BTC and USDT on two venues, about once a minute
    assert off_inventory["max_drift"]["BTC"]["a"] == pytest.approx(0.5, abs=0.05)
    btc = next(a for a in off_inventory["assets"] if a["asset"] == "BTC")
    [move] = [m for m in off_inventory["plan"] if m["asset"] == "BTC"]
    assert move["from"] == "a" and move["to"] == "b"
    holdings = {v["exchange"]: v["amount"] for v in btc["exchanges"]}
    assert holdings["a"] - move["amount"] == pytest.approx(btc["total"] / 2, abs=1e-8)
    assert on_inventory["inventory_skew"] == 0.8
