"""Every figure a trader reads reconciles to the fills.

Seeded simulation runs through the real daemon and its API, and seeded backtests of the
shipped sample, with partial fills and rejected legs so that hedges and unwinds happen.
Each figure of ``/trades``, ``/trades/{id}``, ``/performance``, the
``symbol_performance`` query, the WebSocket's ``trade_update``s and the backtest's
``trades.csv``/``metrics.json``/summary is computed again here, independently (plain
sums over the stored fills, in this file), and compared to the last unit of the 8th
decimal place."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import arbotd_api.plugin
import arbotd_risk.plugin
import arbotd_sim.plugin
import arbotd_sql.plugin
import arbotd_xarb.plugin
from arbotd._cli import main as cli_main
from arbotd.client import open_subscription
from arbotd_api.plugin import service_for

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "contrib" / "data" / "sample-quotes.csv.gz"

CONFIG = """
[daemon]
mode = "simulation"
autostart = true
state_dir = "{state}"

[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
cooldown_seconds = 0.2

[risk_management]
max_concurrent_trades = 5

[storage]
flush_interval_seconds = 0.05

[api]
port = 0

[simulation]
seed = {seed}
dislocation_per_hour = 3600.0

[simulation.paper]
fill_delay_seconds = 0.05
partial_fill_rate = 0.4
partial_fill_ratio = 0.6
reject_rate = 0.15
"""
BACKTEST = """
[backtest]
seed = {seed}
"""

PLUGINS = (("sim", arbotd_sim.plugin), ("xarb", arbotd_xarb.plugin),
           ("risk", arbotd_risk.plugin), ("sql", arbotd_sql.plugin),
           ("api", arbotd_api.plugin))
COUNTED = ("completed", "unwound", "failed")
FINAL = (*COUNTED, "cancelled")


def q8(value: Decimal) -> float:
    return float(value.quantize(D("1e-8"), rounding=ROUND_HALF_EVEN))


# --- the independent computation -------------------------------------------------------


class Recomputed:
    """One trade's figures from its fills, written out plainly."""

    def __init__(self, planned_buy: Decimal, planned_sell: Decimal, planned_qty: Decimal,
                 fills: Iterable[dict[str, Any]], quote: str, base: str) -> None:
        self.planned_qty = planned_qty
        self.gross = self.fees = D(0)
        bought = sold = buy_cost = sell_value = D(0)
        self.buy_slippage = self.sell_slippage = D(0)
        self.fill_count = 0
        for fill in fills:
            self.fill_count += 1
            price, qty, fee = D(fill["price"]), D(fill["quantity"]), D(fill["fee"])
            if fill["side"] == "buy":
                self.gross -= price * qty
            else:
                self.gross += price * qty
            if fill["fee_asset"] == quote:
                self.fees += fee
            elif fill["fee_asset"] == base:
                self.fees += fee * price
            if fill["purpose"] in ("entry", "hedge"):
                if fill["side"] == "buy":
                    bought += qty
                    buy_cost += price * qty
                    self.buy_slippage += (price - planned_buy) * qty
                else:
                    sold += qty
                    sell_value += price * qty
                    self.sell_slippage += (planned_sell - price) * qty
        self.net = self.gross - self.fees
        self.filled = min(bought, sold)
        self.buy_price = buy_cost / bought if bought else None
        self.sell_price = sell_value / sold if sold else None
        self.slippage = self.buy_slippage + self.sell_slippage


def stored(db: Path) -> tuple[dict[int, dict[str, Any]], dict[int, Recomputed]]:
    """Every trade row and its figures recomputed from the stored fills."""
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        trades = {row["id"]: dict(row) for row in connection.execute("select * from trades")}
        purposes = {row["client_order_id"]: row["purpose"]
                    for row in connection.execute("select * from orders")}
        fills: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in connection.execute("select * from fills order by position"):
            fills[row["trade_id"]].append({**dict(row), "purpose": purposes[row["order_id"]]})
    figures = {
        trade_id: Recomputed(D(row["planned_buy_price"]), D(row["planned_sell_price"]),
                             D(row["quantity"]), fills[trade_id], "USDT",
                             row["symbol"].removesuffix("USDT"))
        for trade_id, row in trades.items()
    }
    return trades, figures


# --- simulation runs through the API ---------------------------------------------------


async def run_and_read(start_daemon, tmp_path: Path, seed: int) -> dict[str, Any]:
    """Run a seeded simulation until enough trades closed; return what the API and the
    WebSocket said, and the database's path."""
    path = tmp_path / f"arbot-{seed}.toml"
    path.write_text(CONFIG.format(state=tmp_path / f"state-{seed}", seed=seed))
    updates: list[dict[str, Any]] = []
    async with start_daemon(path, *PLUGINS) as daemon:
        url = service_for(daemon.runtime).urls[0]
        async with open_subscription(url, channels=["trades"]) as subscription, \
                trio.open_nursery() as nursery:

            async def listen() -> None:
                async for message in subscription:
                    if message["type"] == "trade_update":
                        updates.append(message["data"])

            nursery.start_soon(listen)
            control = daemon.runtime.control
            with trio.fail_after(60):
                while sum(1 for t in control.recent_trades.values()
                          if str(t.state) in ("unwound", "completed")) < 8 or not any(
                        t.state == "unwound" for t in control.recent_trades.values()):
                    await trio.sleep(0.1)
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.post("/api/v1/trading/stop")).status_code == 200
            await control.wait_idle()
            await trio.sleep(0.3)  # the last trade_updates arrive
            nursery.cancel_scope.cancel()
        assert await daemon.runtime.storage.flush(10)
        async with httpx.AsyncClient(base_url=url) as client:
            trades = (await client.get("/api/v1/trades",
                                       params={"limit": 1000})).json()["trades"]
            details = {t["id"]: (await client.get(f"/api/v1/trades/{t['id']}")).json()
                       for t in trades}
            today = dt.datetime.now(dt.UTC).date().isoformat()
            performance = (await client.get("/api/v1/performance", params={
                "start_date": today, "end_date": today})).json()
            symbols = (await client.post("/api/v1/analytics/query", json={
                "query_type": "symbol_performance",
                "parameters": {"start_date": today, "end_date": today}})).json()
    return {"db": tmp_path / f"state-{seed}" / "arbot.db", "trades": trades,
            "details": details, "performance": performance,
            "symbols": symbols["results"], "updates": updates}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 42])
async def test_api_and_websocket_figures_reconcile_to_the_fills(
    start_daemon, tmp_path: Path, seed: int
) -> None:
    seen = await run_and_read(start_daemon, tmp_path, seed)
    rows, figures = stored(seen["db"])
    assert len(seen["trades"]) == len(rows) >= 8

    for summary in seen["trades"]:
        row, f = rows[summary["id"]], figures[summary["id"]]
        final = row["state"] in FINAL
        assert summary["quantity"] == q8(f.filled) and summary["planned_quantity"] == q8(
            f.planned_qty)
        assert summary["fees_paid"] == q8(f.fees)
        assert summary["actual_profit"] == (q8(f.net) if final else None)
        detail = seen["details"][summary["id"]]
        assert detail["actual_profit"] == summary["actual_profit"]
        assert detail["fees_paid"] == summary["fees_paid"]
        assert detail["quantity"] == summary["quantity"]
        assert detail["slippage"] == (q8(f.slippage) if f.fill_count else None)
        assert detail["actual_buy_price"] == (None if f.buy_price is None
                                              else q8(f.buy_price))
        assert detail["actual_sell_price"] == (None if f.sell_price is None
                                               else q8(f.sell_price))
        fills = [fill for leg in detail["legs"] for fill in leg["fills"]]
        assert len(fills) == f.fill_count

    # /performance and the symbol query: the trades that count (final, not cancelled,
    # with at least one fill), all closed today.
    counted = [i for i, row in rows.items() if row["state"] in COUNTED
               and figures[i].fill_count]
    nets = [figures[i].net for i in counted]
    fees = sum((figures[i].fees for i in counted), D(0))
    metrics = seen["performance"]["metrics"]
    assert metrics["total_trades"] == len(counted)
    assert metrics["net_profit"] == q8(sum(nets, D(0)))
    assert metrics["total_fees"] == q8(fees)
    assert metrics["total_profit"] == q8(sum(nets, D(0)) + fees)
    wins = [n for n in nets if n > 0]
    losses = [-n for n in nets if n < 0]
    assert metrics["successful_trades"] == len(wins)
    assert metrics["win_rate"] == round(100 * len(wins) / len(nets), 4)
    assert metrics["max_profit"] == q8(max(wins, default=D(0)))
    assert metrics["max_loss"] == q8(-max(losses, default=D(0)))
    if losses:
        assert metrics["profit_factor"] == round(float(sum(wins) / sum(losses)), 4)
    else:
        assert metrics["profit_factor"] is None
        assert seen["performance"]["notes"]["profit_factor"] == "no losing trades"
    by_symbol: dict[str, list[Decimal]] = defaultdict(list)
    for i in counted:
        by_symbol[rows[i]["symbol"]].append(figures[i].net)
    assert {s: v["profit"] for s, v in seen["symbols"].items()} == {
        s: q8(sum(n, D(0))) for s, n in by_symbol.items()}

    # Each trade's last WebSocket update says what /trades says; none is sent twice in a
    # row, and none claims a profit before the trade is final.
    last: dict[int, dict[str, Any]] = {}
    for update in seen["updates"]:
        assert last.get(update["id"]) != update, update
        if update["status"] not in FINAL:
            assert update["actual_profit"] is None
        last[update["id"]] = update
    for summary in seen["trades"]:
        if summary["id"] in last:
            update = last[summary["id"]]
            for key in ("quantity", "planned_quantity", "planned_profit", "actual_profit",
                        "fees_paid", "status"):
                assert update[key] == summary[key], (key, update, summary)


# --- backtests -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backtest_report_figures_reconcile_to_its_fills(
    tmp_path: Path, seed: int, capsys: pytest.CaptureFixture[str], isolated_logging: None
) -> None:
    config = tmp_path / "arbot.toml"
    config.write_text(CONFIG.format(state=tmp_path / "state", seed=seed)
                      + BACKTEST.format(seed=seed))
    report = tmp_path / "report"
    status = cli_main(["-c", str(config), "backtest", "--data", str(SAMPLE),
                       "--report", str(report)])
    out = capsys.readouterr().out
    assert status == 0
    metrics = json.loads((report / "metrics.json").read_text())
    with (report / "trades.csv").open() as stream:
        trades = list(csv.DictReader(stream))
    with (report / "fills.csv").open() as stream:
        fills: dict[int, list[dict[str, str]]] = defaultdict(list)
        for fill in csv.DictReader(stream):
            fills[int(fill["trade_id"])].append(fill)
    assert trades
    nets, fees_total = [], D(0)
    for row in trades:
        f = Recomputed(D(row["planned_buy_price"]), D(row["planned_sell_price"]),
                       D(row["planned_quantity"]), fills[int(row["trade_id"])], "USDT",
                       row["symbol"].removesuffix("USDT"))
        assert float(row["gross_profit"]) == q8(f.gross)
        assert float(row["fees"]) == q8(f.fees)
        assert float(row["net_profit"]) == q8(f.net)
        assert float(row["slippage"]) == q8(f.slippage)
        assert float(row["quantity"]) == q8(f.filled)
        nets.append(f.net)
        fees_total += f.fees
    assert metrics["net_profit"] == q8(sum(nets, D(0)))
    assert metrics["total_fees"] == q8(fees_total)
    assert metrics["gross_profit"] == q8(sum(nets, D(0)) + fees_total)
    wins = [n for n in nets if n > 0]
    assert metrics["winning_trades"] == len(wins)
    assert metrics["win_rate"] == round(100 * len(wins) / len(nets), 4)
    assert metrics["winning_total"] == q8(sum(wins, D(0)))
    assert metrics["losing_total"] == q8(-sum((n for n in nets if n < 0), D(0)))
    # The summary prints the same figures to the same precision.
    for label, key in (("net profit", "net_profit"), ("fees", "total_fees"),
                       ("gross profit", "gross_profit")):
        assert f"  {label:<15}{metrics[key]:.8f}" in out, (label, out)
