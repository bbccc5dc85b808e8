"""A sweep's parameter sets and ranking, without running anything: ranges in decimal with
STOP included, values typed by their setting, the random draw repeatable, a parameters
file's dotted keys, and the objectives' order."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from arbotd import collect_config_schema, make_plugin_manager
from arbotd_replay.sweepreport import objective_value, rank
from arbotd_replay.sweepspec import (
    SweepSpecError,
    merge_axes,
    parameter_sets,
    parse_axis,
    read_params_file,
)


@pytest.fixture(scope="module")
def schema() -> dict[str, type]:
    return collect_config_schema(make_plugin_manager())


def test_ranges_are_decimal_and_include_stop(schema: dict[str, type]) -> None:
    axis = parse_axis("arbitrage.min_profit_threshold=0.001:0.006:0.001", schema)
    assert axis.values == (0.001, 0.002, 0.003, 0.004, 0.005, 0.006)
    assert parse_axis("arbitrage.max_trades_per_hour=10:30:10", schema).values == (10, 20, 30)
    # A float setting takes whole numbers as floats; a bool and a literal take their text.
    assert parse_axis("arbitrage.cooldown_seconds=10,30", schema).values == (10.0, 30.0)
    assert parse_axis("arbitrage.use_trend_filter=true,false", schema).values == (True, False)
    assert parse_axis("arbitrage.trend_filter_mode=both,disabled", schema).values == (
        "both", "disabled")


@pytest.mark.parametrize(("option", "message"), [
    ("arbitrage.min_profit_threshold", "expected KEY=START:STOP:STEP"),
    ("arbitrage.nope=1,2", "arbitrage.nope: unknown configuration key"),
    ("arbitrage=1,2", "arbitrage: is a table, not a setting"),
    ("arbitrage.max_trades_per_hour=1:2:0.5", "whole-number range"),
    ("arbitrage.cooldown_seconds=5:1:1", "STOP 1 is below START 5"),
    ("arbitrage.cooldown_seconds=0:1:0", "the step must be positive"),
    ("arbitrage.cooldown_seconds=10,10", "the value 10.0 is given twice"),
    ("arbitrage.use_trend_filter=yes", "expected true or false, got 'yes'"),
])
def test_bad_options_name_the_key(schema: dict[str, type], option: str, message: str) -> None:
    with pytest.raises(SweepSpecError, match=message):
        parse_axis(option, schema)


def test_grid_order_and_a_repeatable_random_draw(schema: dict[str, type]) -> None:
    axes = [parse_axis("arbitrage.cooldown_seconds=1,2,3", schema),
            parse_axis("arbitrage.max_trades_per_hour=10,20", schema)]
    every = parameter_sets(axes)
    assert [tuple(p.values()) for p in every] == [
        (1.0, 10), (1.0, 20), (2.0, 10), (2.0, 20), (3.0, 10), (3.0, 20)]
    drawn = parameter_sets(axes, sample=3, seed=7)
    assert drawn == parameter_sets(axes, sample=3, seed=7)
    assert len(drawn) == 3 and all(p in every for p in drawn)
    assert parameter_sets(axes, sample=100) == every


def test_parameters_file(tmp_path: Path, schema: dict[str, type]) -> None:
    path = tmp_path / "grid.toml"
    path.write_text("[grid]\n"
                    "arbitrage.cooldown_seconds = [10, 30]\n"
                    "arbitrage.min_profit_threshold = { start = 0.001, stop = 0.003, "
                    "step = 0.001 }\n"
                    "arbitrage.max_trades_per_hour = \"10:20:10\"\n")
    axes = read_params_file(path, schema)
    assert {a.key: a.values for a in axes} == {
        "arbitrage.cooldown_seconds": (10.0, 30.0),
        "arbitrage.min_profit_threshold": (0.001, 0.002, 0.003),
        "arbitrage.max_trades_per_hour": (10, 20)}
    # --grid replaces a key of the file, in its place.
    merged = merge_axes(axes, [parse_axis("arbitrage.cooldown_seconds=5", schema)])
    assert [a.key for a in merged] == [a.key for a in axes]
    assert merged[0].values == (5.0,)
    path.write_text("[grid]\narbitrage.cooldown_secs = [1]\n")
    with pytest.raises(SweepSpecError, match=r"grid.toml: \[grid\] arbitrage.cooldown_secs"):
        read_params_file(path, schema)


def metrics(net: float, sharpe: float | None, gained: float, drawdown: float) -> dict:
    return {"net_profit": net, "sharpe_ratio": sharpe, "return_percent": gained,
            "max_drawdown_percent": drawdown}


def test_objectives_and_ranking() -> None:
    a = metrics(5.0, None, 0.05, 0.01)
    b = metrics(3.0, 1.5, 0.03, 0.0)
    c = metrics(-1.0, -0.5, -0.01, 0.02)
    assert objective_value(a, "calmar") == 5.0
    assert objective_value(b, "calmar") == math.inf  # a gain without any drawdown
    assert objective_value(c, "calmar") == -0.5
    assert objective_value(a, "sharpe") is None
    sets = [(i, {"k": i}, {"all": {"metrics": m}}) for i, m in enumerate([a, b, c])]
    assert [r.index for r in rank(sets, "net_profit", "all")] == [0, 1, 2]
    assert [r.index for r in rank(sets, "calmar", "all")] == [1, 0, 2]
    # No Sharpe ratio (too short a period), or a failed run: ranked last.
    failed = (3, {"k": 3}, {"all": {"metrics": None, "error": "no quotes"}})
    assert [r.index for r in rank([*sets, failed], "sharpe", "all")] == [1, 2, 0, 3]
    assert [r.rank for r in rank(sets, "sharpe", "all")] == [1, 2, 3]
