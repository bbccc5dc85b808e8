"""Where a backtest's quotes come from: a storage's recorded quotes are read in the
backtest's own thread, and that reading is ended there however the backtest ends, so a
cancelled or failed backtest leaves no database connection behind."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from arbotd import Quote, make_plugin_manager
from arbotd._runtime import load_with_plugins
from arbotd_replay import BacktestOptions, DataProblems, run_backtest
from arbotd_replay.session import BacktestCancelled
from arbotd_replay.sources import storage_source

T0 = 1_750_000_000.0

CONFIG = """
[arbitrage]
symbols = ["BTCUSDT"]

[simulation]
enabled = false

[api]
enabled = false
"""


class RecordedQuotes:
    """A storage's ``recorded_quotes``, noting in which thread its reading began and
    ended (a real storage holds a connection of that thread meanwhile)."""

    display = "test.db"

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.opened_in: int | None = None
        self.closed_in: int | None = None

    def recorded_quotes(self, start: float, end: float, *, symbols: object = None,
                        exchanges: object = None) -> Iterator[list[Quote]]:
        self.opened_in = threading.get_ident()
        try:
            for page in range(self.pages):
                yield [Quote(exchange, "BTCUSDT", 99.9, 100.1, 1.0, 1.0, t, t)
                       for i in range(100)
                       for t in [T0 + page * 100 + i]
                       for exchange in ("ex_a", "ex_b")]
        finally:
            self.closed_in = threading.get_ident()


def backtest(tmp_path: Path, storage: RecordedQuotes, cancel: threading.Event) -> None:
    path = tmp_path / "arbot.toml"
    path.write_text(textwrap.dedent(CONFIG))
    pm = make_plugin_manager()
    config = load_with_plugins(path, pm)
    problems = DataProblems()
    batches, progress = storage_source(storage, problems, start=T0, end=T0 + 10_000)

    def cancel_after_the_first_batch(quotes: int, fraction: float) -> None:
        cancel.set()

    run_backtest(pm, config, batches, options=BacktestOptions(), problems=problems,
                 progress=cancel_after_the_first_batch, source_progress=progress,
                 cancel=cancel)


@pytest.mark.usefixtures("isolated_logging")
def test_a_cancelled_backtest_ends_reading_the_storage_in_its_thread(tmp_path: Path) -> None:
    storage = RecordedQuotes(pages=50)
    thread_errors: list[BaseException] = []

    def run() -> None:
        try:
            backtest(tmp_path, storage, threading.Event())
        except BaseException as error:  # looked at below
            thread_errors.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert [type(e) for e in thread_errors] == [BacktestCancelled]
    assert storage.opened_in == worker.ident
    assert storage.closed_in == worker.ident
