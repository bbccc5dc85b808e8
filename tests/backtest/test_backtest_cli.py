"""``arbotd backtest`` end to end through the command line: the README's example on the
shipped sample, the report files and the printed summary agreeing, the same trades on
every run, bad rows counted in the summary, and --strict."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from arbotd._cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "contrib" / "data" / "sample-quotes.csv.gz"
SHIPPED_CONFIG = ROOT / "etc" / "arbot.toml"

pytestmark = pytest.mark.usefixtures("isolated_logging")


def epoch(iso_time: str) -> float:
    """A report's ISO 8601 UTC time as epoch seconds."""
    return dt.datetime.fromisoformat(iso_time).timestamp()


def backtest(capsys: pytest.CaptureFixture[str], *args: str, config: Path = SHIPPED_CONFIG
             ) -> tuple[int, str, str]:
    status = main(["-c", str(config), "backtest", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def summary_value(out: str, label: str) -> str:
    match = re.search(rf"^  {label} +(\S+)", out, re.MULTILINE)
    assert match, f"no {label!r} in:\n{out}"
    return match.group(1)


def test_readme_example_on_the_shipped_sample(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert SAMPLE.stat().st_size < 3_000_000
    report = tmp_path / "bt"
    status, out, err = backtest(capsys, "--data", str(SAMPLE), "--report", str(report))
    assert status == 0, err
    assert not out.startswith("\r")  # no progress bar when stdout is not a terminal
    files = {p.name for p in report.iterdir()}
    assert files == {"trades.csv", "fills.csv", "signals.csv", "metrics.json", "equity.png",
                     "report.html", "inventory.json", "drift.csv"}
    assert (report / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((report / "metrics.json").read_text())
    with (report / "trades.csv").open() as stream:
        trades = list(csv.DictReader(stream))
    # The shipped configuration trades on the shipped sample.
    assert metrics["total_trades"] == len(trades) > 0
    assert int(summary_value(out, "trades")) == len(trades)
    net = sum(Decimal(t["net_profit"]) for t in trades)
    fees = sum(Decimal(t["fees"]) for t in trades)
    assert abs(net - Decimal(summary_value(out, "net profit"))) < Decimal("1e-7")
    assert float(summary_value(out, "net profit")) == metrics["net_profit"]
    assert abs(fees - Decimal(summary_value(out, "fees"))) < Decimal("1e-7")
    assert float(summary_value(out, "fees")) == metrics["total_fees"]
    wins = sum(1 for t in trades if Decimal(t["net_profit"]) > 0)
    assert metrics["win_rate"] == round(100 * wins / len(trades), 4)
    assert float(summary_value(out, "win rate")) == metrics["win_rate"]
    assert float(summary_value(out, "gross profit")) == metrics["gross_profit"]
    assert metrics["gross_profit"] == round(metrics["net_profit"] + metrics["total_fees"], 8)
    # Five minutes of data have no daily return: no Sharpe ratio, and the reason.
    assert metrics["sharpe_ratio"] is None and summary_value(out, "Sharpe ratio") == "n/a"
    assert "needs at least 7 daily returns" in metrics["notes"]["sharpe_ratio"] in out
    start = re.search(r"equity ([\d,.]+) -> ([\d,.]+)", out)
    assert start and float(start.group(1).replace(",", "")) == metrics["starting_equity"]
    assert float(summary_value(out, "max drawdown")) == metrics["max_drawdown_percent"]
    for symbol, group in metrics["by_symbol"].items():
        rows = [t for t in trades if t["symbol"] == symbol]
        assert group["trades"] == len(rows)
        assert re.search(rf"^  {symbol} +{len(rows)} +[\d.]+ +{group['net_profit']:.8f}",
                         out, re.MULTILINE)
    assert sum(g["trades"] for g in metrics["by_route"].values()) == len(trades)
    assert metrics["rejections"] and "rejected opportunities: " in out
    assert metrics["quotes"] == 90_000 and metrics["bad_rows"] == {}
    with (report / "signals.csv").open() as stream:
        signals = list(csv.DictReader(stream))
    assert len(signals) == metrics["signals"]
    assert {int(t["signal_id"]) for t in trades} <= {int(s["signal_id"]) for s in signals}


def test_the_same_data_and_config_give_the_same_trades(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for run in range(2):
        status, _, err = backtest(capsys, "--data", str(SAMPLE), "--report",
                                  str(tmp_path / f"run{run}"))
        assert status == 0, err
        outputs.append([(tmp_path / f"run{run}" / name).read_text()
                        for name in ("trades.csv", "signals.csv", "metrics.json")])
    assert outputs[0] == outputs[1]


def test_start_end_and_balance_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = backtest(capsys, "--data", str(SAMPLE), "--report", str(tmp_path),
                              "--start", "2026-11-24T21:19:00Z", "--end", "1795555320",
                              "--balance", "50")
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["start"] >= "2026-11-24T21:19:00" and metrics["end"] < "2026-11-24T21:22:00"
    # 50 USDT and 10,000 USD worth of each of the 5 coins on each of the 3 exchanges
    assert metrics["starting_equity"] == pytest.approx(3 * (50 + 5 * 10_000), rel=1e-6)
    with (tmp_path / "trades.csv").open() as stream:
        first = next(csv.DictReader(stream))
    # the first trade could spend only the 50 USDT (trade_amount_usd is 100)
    assert float(first["quantity"]) * float(first["planned_buy_price"]) <= 50


def test_bad_rows_are_counted_in_the_summary_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "q.csv"
    rows = ["local_ts,exchange_ts,exchange,symbol,bid,ask,bid_size,ask_size",
            "1750000000.0,1750000000.0,ex_a,BTCUSDT,99.9,100.1,1,1",
            "1750000000.5,1750000000.5,ex_b,BTCUSDT,99.95,100.05,1,1",
            "1750000001.0,1750000001.0,ex_a,BTCUSDT,101,100.1,1,1",
            "1750000000.2,1750000000.2,ex_a,BTCUSDT,99.9,100.1,1,1",
            "1750000002.0,1750000002.0,ex_b,BTCUSDT,99.9,100.1,-3,1"]
    path.write_text("\n".join(rows) + "\n")
    status, out, err = backtest(capsys, "--data", str(path))
    assert status == 0, err
    assert "bad rows skipped: crossed book (bid above ask) 1, size negative or not finite 1, " \
           "local_ts earlier than the row before 1" in out
    for line in (4, 5, 6):
        assert f"{path}:{line}: " in err
    assert "2 quotes" in out.splitlines()[0]
    status, out, err = backtest(capsys, "--data", str(path), "--strict")
    assert status == 1 and out == ""
    assert f"arbotd backtest: {path}:4: crossed book: bid 101.0 above ask 100.1" in err


def test_unusable_input_is_an_error_exit(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "wrong.csv").write_text("time,bid,ask\n1,2,3\n")
    status, _, err = backtest(capsys, "--data", str(tmp_path / "wrong.csv"))
    assert status == 1
    assert f"{tmp_path / 'wrong.csv'}:1: unknown column 'time'; missing columns local_ts" in err
    status, _, err = backtest(capsys)
    assert status == 1 and "no data: name recorded files with --data FILE" in err
    status, _, err = backtest(capsys, "--data", str(SAMPLE), "--start", "yesterday")
    assert status == 1 and "--start: expected epoch seconds or an ISO 8601 time" in err
    status, _, err = backtest(capsys, "--data", str(SAMPLE), "--start", "2030-01-01")
    assert status == 1 and "no quotes to replay" in err


def test_several_files_are_merged_in_time_order(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    header = "local_ts,exchange_ts,exchange,symbol,bid,ask,bid_size,ask_size"
    (tmp_path / "a.csv").write_text("\n".join([header] + [
        f"{1750000000 + t}.0,0,ex_a,BTCUSDT,99.9,100.0,5,5" for t in range(0, 20, 2)]) + "\n")
    (tmp_path / "b.csv").write_text("\n".join([header] + [
        f"{1750000000 + t}.0,0,ex_b,BTCUSDT,{101.0 if t == 9 else 99.95},"
        f"{101.1 if t == 9 else 100.05},5,5" for t in range(1, 20, 2)]) + "\n")
    status, out, err = backtest(capsys, "--data", str(tmp_path / "a.csv"),
                                str(tmp_path / "b.csv"), "--report", str(tmp_path / "r"))
    assert status == 0, err
    assert "20 quotes" in out and "bad rows skipped: none" in out
    with (tmp_path / "r" / "signals.csv").open() as stream:
        signals = list(csv.DictReader(stream))
    assert [(s["buy_exchange"], s["sell_exchange"], epoch(s["time"]))
            for s in signals] == [("ex_a", "ex_b", 1750000009.0)]


KRW_SAMPLE = ROOT / "contrib" / "data" / "sample-quotes-krw.csv.gz"


def test_the_krw_sample_trades_across_currencies(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped sample with the simulated KRW venue: its KRW prices are converted at
    its recorded USDTKRW quotes, and its fills are paid in KRW."""
    assert KRW_SAMPLE.stat().st_size < 3_000_000
    report = tmp_path / "bt"
    status, out, err = backtest(capsys, "--data", str(KRW_SAMPLE), "--report", str(report))
    assert status == 0, err
    with (report / "fills.csv").open() as stream:
        fills = list(csv.DictReader(stream))
    won = [f for f in fills if f["exchange"] == "sim_won"]
    assert won and all(f["native_asset"] == "KRW" and f["fee_asset"] == "KRW" for f in won)
    for fill in won:
        # KRW per USDT between 1,200 and 1,500 (the sample's rate), premium included.
        ratio = Decimal(fill["native_price"]) / Decimal(fill["price"])
        assert Decimal(1200) < ratio < Decimal(1500)
    assert all(f["native_price"] == "" for f in fills if f["exchange"] != "sim_won")
    with (report / "signals.csv").open() as stream:
        signals = [s for s in csv.DictReader(stream) if s["buy_exchange"] == "sim_won"]
    assert signals and all(s["buy_rate"] and s["buy_native_price"] for s in signals)
    assert re.search(r"^  BTCUSDT sim_\w+->sim_won ", out, re.MULTILINE)
