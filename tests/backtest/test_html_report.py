"""``report.html``, written beside ``equity.png``: one self-contained page (no script,
style, image or link from anywhere else, so it opens from the disk without a network)
holding the figures of ``metrics.json`` to the digit, the per-route and per-symbol tables,
and the equity and drawdown charts."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from arbotd._cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "contrib" / "data" / "sample-quotes.csv.gz"
SHIPPED_CONFIG = ROOT / "etc" / "arbot.toml"

pytestmark = pytest.mark.usefixtures("isolated_logging")


class Page(HTMLParser):
    """What the report's markup holds: its tags with their attributes, the figures by
    ``data-metric``, and the rows of the route and symbol tables."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.metrics: dict[str, str] = {}
        self.rows: dict[tuple[str, str], list[str]] = {}
        self._metric: str | None = None
        self._row: tuple[str, str] | None = None
        self._cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if "data-metric" in found:
            self._metric = found["data-metric"]
            self.metrics[self._metric] = ""
        for kind in ("route", "symbol"):
            if tag == "tr" and f"data-{kind}" in found:
                self._row = (kind, str(found[f"data-{kind}"]))
                self.rows[self._row] = []
        if tag == "td" and self._row is not None:
            self._cell = True
            self.rows[self._row].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._metric = None
            self._cell = False
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._metric is not None:
            self.metrics[self._metric] += data
        if self._cell and self._row is not None:
            self.rows[self._row][-1] += data


def test_the_report_page_is_self_contained_and_holds_the_figures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "bt"
    status = main(["-c", str(SHIPPED_CONFIG), "backtest", "--data", str(SAMPLE),
                   "--report", str(report)])
    assert status == 0, capsys.readouterr().err
    page_path = report / "report.html"
    assert page_path.is_file() and (report / "equity.png").is_file()
    text = page_path.read_text(encoding="utf-8")
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))

    # Self-contained: nothing that a browser would fetch, no address of anywhere.
    assert not re.search(r"https?:|//[a-z0-9]", text, re.IGNORECASE)
    page = Page()
    page.feed(text)
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "img", "iframe", "object"), (tag, attrs)
        assert not {"src", "href"} & set(attrs), (tag, attrs)
    assert [tag for tag, _ in page.tags].count("svg") == 2  # equity and drawdown
    assert text.count("<path ") >= 3

    # Every figure of the summary, as metrics.json holds it.
    scalars = {name: value for name, value in metrics.items()
               if not isinstance(value, dict | list)}
    assert set(scalars) <= set(page.metrics), set(scalars) - set(page.metrics)
    for name, value in scalars.items():
        assert page.metrics[name] == ("n/a" if value is None else json.dumps(value)), name
    assert metrics["total_trades"] > 0

    for kind, groups in (("route", metrics["by_route"]), ("symbol", metrics["by_symbol"])):
        assert groups
        for name, group in groups.items():
            cells = page.rows[(kind, name)]
            assert cells == [name, *(json.dumps(group[key]) for key in (
                "trades", "winning_trades", "win_rate", "net_profit", "total_fees"))]
