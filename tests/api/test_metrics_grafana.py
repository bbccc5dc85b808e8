"""``contrib/grafana/arbotd.json``: a Grafana board over ``/metrics`` that loads, and whose
every query names metrics a real daemon exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from apitools import server_factory

BOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "arbotd.json"
METRIC = re.compile(r"\b((?:arbotd|process)_[a-z0-9_]+)\b")
# What a family of each type writes besides its own name (the text format's suffixes).
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


def board() -> dict[str, Any]:
    return json.loads(BOARD.read_text(encoding="utf-8"))


def queries() -> list[str]:
    """The panels' queries, and the variables' (the daemons to choose from)."""
    loaded = board()
    return [target["expr"] for panel in loaded["panels"]
            for target in panel.get("targets", [])] + [
        variable["definition"] for variable in loaded["templating"]["list"]
        if "definition" in variable]


def exported_names(text: str) -> set[str]:
    """Every sample name the exposition ``text`` can hold, from its ``# TYPE`` lines (a
    family is written even when it has no sample yet)."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.update((name + suffix for suffix in SUFFIXES[kind]) if kind in SUFFIXES
                     else (name,))
    return names


def test_the_board_is_a_grafana_dashboard() -> None:
    loaded = board()
    assert loaded["uid"] == "arbotd" and loaded["title"]
    panels = loaded["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            # Every query follows the board's data source and daemon choices.
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'instance=~"$instance"' in target["expr"], panel["title"]
    variables = {v["name"] for v in loaded["templating"]["list"]}
    assert variables == {"datasource", "instance"}
    assert len(queries()) >= 20


async def test_every_metric_the_board_queries_is_exported(serve_api: Any) -> None:
    async with serve_api() as api, api.client() as client:
        response = await client.get("/metrics")
        assert response.status_code == 200
    exported = exported_names(response.text)
    referenced = {name for expr in queries() for name in METRIC.findall(expr)}
    assert referenced, "the board queries no arbotd metric"
    missing = sorted(referenced - exported)
    assert not missing, f"the board queries metrics /metrics does not export: {missing}"
    # And it shows everything exported about the daemon itself.
    own = {name for name in exported if name.startswith("arbotd_")
           and not name.endswith(("_sum", "_count"))}
    assert own <= referenced, f"not on the board: {sorted(own - referenced)}"
