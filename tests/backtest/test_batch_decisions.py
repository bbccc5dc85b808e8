"""Quiet quotes decided a batch at a time (arbotd.batch): the book each quote meets, the
cross-exchange strategy's answer checked against its own ``evaluate`` quote by quote, and
whole backtests giving the same results with the shortcut and without, and however the
quotes are batched."""

from __future__ import annotations

import itertools
import random
import textwrap
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from support import simulated_quotes

from arbotd import Bus, Engine, Ledger, Quote, make_plugin_manager
from arbotd._engine import Market
from arbotd._runtime import load_with_plugins
from arbotd.batch import QuoteBatch, book_columns
from arbotd_replay import (
    BacktestOptions,
    DataProblems,
    QuoteFileReader,
    QuoteFileWriter,
    run_backtest,
)
from arbotd_replay.parquetfile import ParquetQuoteWriter
from arbotd_replay.sources import file_source
from arbotd_xarb.config import ArbitrageConfig
from arbotd_xarb.strategy import CrossExchangeStrategy

T0 = 1_750_000_000.0

pytestmark = pytest.mark.usefixtures("isolated_logging")


def random_quotes(rng: random.Random, count: int, venues: list[str], symbols: list[str]
                  ) -> list[Quote]:
    """Quotes whose books cross often, some by exactly a round amount."""
    quotes = []
    for index in range(count):
        venue, symbol = rng.choice(venues), rng.choice(symbols)
        mid = 100.0 * (1 + rng.choice([0.0, 0.001, -0.002, 0.003, 0.0045, -0.004])
                       + rng.gauss(0, 0.002))
        half = rng.choice([0.01, 0.02, 0.05, 0.0])
        stamp = T0 + index * 0.01
        quotes.append(Quote(venue, symbol, round(mid - half, 2), round(mid + half, 2),
                            rng.choice([0.5, 2.0]), rng.choice([0.5, 2.0]), stamp, stamp))
    return quotes


def naive_books(batch: list[Quote], book: dict[str, dict[str, Quote]]
                ) -> list[dict[str, Quote]]:
    """The book of each quote's symbol once the quote is in, by replaying them."""
    book = {symbol: dict(quotes) for symbol, quotes in book.items()}
    seen = []
    for quote in batch:
        book.setdefault(quote.symbol, {})[quote.exchange] = quote
        seen.append(dict(book[quote.symbol]))
    return seen


@pytest.mark.parametrize("with_columns", [False, True])
def test_book_columns_are_the_book_each_quote_meets(with_columns: bool) -> None:
    rng = random.Random(7)
    venues, symbols = ["a", "b", "c", "d"], ["X", "Y", "Z"]
    start = {"X": {"d": Quote("d", "X", 99.0, 99.5, 1.0, 1.0, T0 - 1, T0 - 1),
                   "e": Quote("e", "X", 98.0, 98.5, 1.0, 1.0, T0 - 1, T0 - 1)},
             "W": {"a": Quote("a", "W", 5.0, 5.1, 1.0, 1.0, T0 - 1, T0 - 1)}}
    batch: list[Quote] = random_quotes(rng, 500, venues, symbols)
    if with_columns:
        # A reader's dictionaries may repeat a name and hold unused ones.
        exchange_names = ["c", "a", "b", "d", "a", "unused"]
        symbol_names = ["Z", "Y", "X", "Y"]
        batch = QuoteBatch.of(batch, (
            exchange_names, np.array([exchange_names.index(q.exchange) for q in batch]),
            symbol_names, np.array([symbol_names.index(q.symbol) for q in batch]),
            np.array([q.bid for q in batch]), np.array([q.ask for q in batch]),
            np.array([q.received_ts for q in batch])))
    view = book_columns(batch, start)
    for row, (quote, book) in enumerate(zip(batch, naive_books(batch, start), strict=True)):
        assert view.exchanges[view.exchange[row]] == quote.exchange
        assert view.symbols[view.symbol[row]] == quote.symbol
        for column, venue in enumerate(view.exchanges):
            if venue in book:
                assert view.bid[row, column] == book[venue].bid
                assert view.ask[row, column] == book[venue].ask
                assert view.received[row, column] == book[venue].received_ts
            else:
                assert np.isnan(view.bid[row, column]) and np.isnan(view.ask[row, column])
                assert np.isnan(view.received[row, column])
    assert "e" in view.exchanges   # a venue of the book only


def lazy_batch(quotes: list[Quote], kind: str) -> QuoteBatch:
    """``quotes`` (without levels) as a reader's batch, no quote built yet: its fields
    as lists (``"fields"``); the same with a reader's columns (``"columns"``), whose
    dictionaries repeat a name and hold an unused one; or all of it as arrays
    (``"arrays"``, :meth:`QuoteBatch.coded`), with the same dictionaries."""
    fields = [[getattr(q, field.name) for q in quotes] for field in attrs.fields(Quote)]
    if kind == "fields":
        # Up to received_ts: the other fields take their defaults.
        return QuoteBatch(fields[:8])
    exchange_names = sorted({q.exchange for q in quotes})
    exchange_names = [*exchange_names, exchange_names[0], "unused"]
    symbol_names = sorted({q.symbol for q in quotes})
    symbol_names = [*symbol_names, symbol_names[-1]]
    rng = random.Random(3)

    def code(names: list[str], name: str) -> int:
        return rng.choice([i for i, n in enumerate(names) if n == name])

    columns = (exchange_names,
               np.array([code(exchange_names, q.exchange) for q in quotes], dtype=np.int32),
               symbol_names,
               np.array([code(symbol_names, q.symbol) for q in quotes], dtype=np.int32),
               np.array(fields[2]), np.array(fields[3]), np.array(fields[7]))
    if kind == "columns":
        return QuoteBatch(fields[:8], columns)
    assert kind == "arrays"
    return QuoteBatch.coded(columns, *map(np.array, fields[4:7]))


BATCH_KINDS = ["fields", "columns", "arrays"]


@pytest.mark.parametrize("kind", BATCH_KINDS)
def test_a_readers_batch_builds_the_quotes_it_is_asked_for(kind: str) -> None:
    rng = random.Random(11)
    quotes = random_quotes(rng, 400, ["a", "b", "c"], ["X", "Y", "Z", "W"])
    batch = lazy_batch(quotes, kind)
    assert len(batch) == 400 and batch
    assert batch[7] == quotes[7] and batch[-1] == quotes[-1] and batch[-400] == quotes[0]
    with pytest.raises(IndexError):
        batch[400]
    assert batch[10:50] == quotes[10:50] and batch[390:500] == quotes[390:]
    assert batch[::7] == quotes[::7] and batch[50:10] == []
    assert batch.received == [q.received_ts for q in quotes]
    # Values as the quotes hold them: Python floats and strings, not numpy scalars.
    for built in (batch[5], batch[5:6][0], batch.latest(0, 400)[0], batch.fields[2][0]):
        for value in attrs.astuple(built) if isinstance(built, Quote) else [built]:
            assert type(value) in (str, float, type(None)), type(value)
    assert all(type(stamp) is float for stamp in batch.received)
    for _ in range(200):
        start = rng.randrange(400)
        end = rng.randrange(start, 401)
        book: dict[tuple[str, str], Quote] = {}
        tallies: dict[str, int] = {}
        for quote in quotes[start:end]:
            book[quote.symbol, quote.exchange] = quote
            tallies[quote.exchange] = tallies.get(quote.exchange, 0) + 1
        latest = batch.latest(start, end)
        assert {(q.symbol, q.exchange): q for q in latest} == book
        assert [quotes.index(q, start, end) for q in latest] == sorted(
            quotes.index(q, start, end) for q in latest)
        assert batch.tallies(start, end) == tallies
    assert list(batch) == quotes and batch == quotes and batch == QuoteBatch.of(quotes)
    assert batch[3:9] == quotes[3:9] and batch.latest(0, 400)[-1] == quotes[-1]


@pytest.mark.parametrize("kind", BATCH_KINDS)
def test_a_run_of_quiet_rows_leaves_the_book_and_counts_as_every_quote_would(
        kind: str) -> None:
    rng = random.Random(5)
    quotes = random_quotes(rng, 600, ["a", "b", "c"], ["X", "Y", "Z"])
    # A venue and a symbol the book first meets inside a later run.
    quotes[450:450] = [Quote("d", "X", 99.0, 99.5, 1.0, 1.0, T0 + 4.5, T0 + 4.5),
                       Quote("a", "V", 9.0, 9.5, 1.0, 1.0, T0 + 4.5, T0 + 4.5)]
    runs = [(0, 3), (3, 200), (200, 201), (201, 440), (440, 560), (560, 602)]

    def engine() -> Engine:
        return Engine(strategies=[], bus=Bus(), ledger=Ledger(), clock=lambda: T0)

    each, batched = engine(), engine()
    batch = lazy_batch(quotes, kind)
    for start, end in runs:
        each.on_quiet_quotes(quotes[start:end])
        batched.on_quiet_rows(batch, start, end)
        assert batched.quotes_processed == each.quotes_processed == end
        assert batched.quote_counts == each.quote_counts
        assert list(batched.quote_counts) == list(each.quote_counts)
        assert batched.book == each.book
        assert list(batched.book) == list(each.book)
        assert [list(v) for v in batched.book.values()] == [list(v) for v in each.book.values()]


def market(fees: dict[str, float], premium: dict[str, float]) -> Market:
    view = Market(Ledger())
    view.fees, view.premium = fees, premium
    view.usable = dict.fromkeys(fees, True)
    view.trading = False
    return view


@pytest.mark.parametrize("settings", [
    {},
    {"inventory_skew": 0.5},
    {"slippage_tolerance": 0.0, "min_profit_threshold": 0.0},
    {"min_profit_threshold": 0.004, "max_spread_threshold": 0.005},
    {"premium": {"b": 0.3, "c": -0.2}},
    {"symbols": ["XUSDT"]},
    {"fees": {"a": 0.0, "b": 0.002, "c": 0.0005}},
    {"max_spread_age_seconds": 0.05},
    {"cooldown_seconds": 3.0},
    {"usable": {"c": False}},
])
def test_a_quiet_quote_is_one_evaluate_turns_down_whatever_happens_in_between(
        settings: dict[str, Any]) -> None:
    plain = not settings
    settings = dict(settings)
    fees = settings.pop("fees", {"a": 0.001, "b": 0.001, "c": 0.001})
    premium = settings.pop("premium", {})
    usable = settings.pop("usable", {})
    config = ArbitrageConfig(**{"symbols": ["XUSDT", "YUSDT"], "min_profit_threshold": 0.002,
                                "max_spread_age_seconds": 3600.0, **settings})
    strategy = CrossExchangeStrategy(config)
    view_market = market(fees, premium)
    view_market.usable.update({"d": True, **usable})
    rng = random.Random(11)
    # "d" has no configured fee: the strategy's default terms.
    quotes = random_quotes(rng, 6000, ["a", "b", "c", "d"], ["XUSDT", "YUSDT", "ZUSDT"])
    book: dict[str, dict[str, Quote]] = {}
    quiet_count = 0
    told: dict[str, int] = {}
    # Batch by batch, as a replay goes: each answer given with the book, cool-downs and
    # signals the quotes before left.
    for batch in (quotes[:1000], quotes[1000:2500], quotes[2500:]):
        answer = strategy.quiet(book_columns(batch, book), view_market)
        for row, quote in enumerate(batch):
            book.setdefault(quote.symbol, {})[quote.exchange] = quote
            before = dict(view_market.rejections)
            view_market.now = quote.received_ts
            signals = strategy.evaluate(quote, book[quote.symbol], view_market)
            counted = {reason: view_market.rejections[reason] - before.get(reason, 0)
                       for reason in view_market.rejections}
            counted = {reason: n for reason, n in counted.items() if n}
            if answer.rows[row]:
                quiet_count += 1
                expected = {reason: int(per_row[row])
                            for reason, per_row in answer.rejections.items()}
                assert signals == [], row
                assert counted == {r: n for r, n in expected.items() if n}, row
                for reason, n in expected.items():
                    told[reason] = told.get(reason, 0) + n
    assert 0.2 * len(quotes) < quiet_count < len(quotes)
    assert told.get("below_threshold")
    if "max_spread_age_seconds" in settings:
        assert told.get("stale")
    if plain:
        assert told.get("cooldown")


def test_a_cool_down_quiets_only_its_own_route_and_only_past_the_checks_before_it() -> None:
    config = ArbitrageConfig(symbols=["XUSDT"], min_profit_threshold=0.002,
                             max_spread_threshold=0.01, max_spread_age_seconds=3600.0,
                             cooldown_seconds=60.0)
    strategy = CrossExchangeStrategy(config)
    view_market = market({"a": 0.001, "b": 0.001}, {})
    a0 = Quote("a", "XUSDT", 99.9, 100.0, 5.0, 5.0, T0, T0)
    b0 = Quote("b", "XUSDT", 100.6, 100.7, 5.0, 5.0, T0, T0)
    view_market.now = T0
    assert strategy.evaluate(a0, {"a": a0}, view_market) == []
    assert len(strategy.evaluate(b0, {"a": a0, "b": b0}, view_market)) == 1   # a -> b
    book = {"XUSDT": {"a": a0, "b": b0}}
    t = T0 + 1

    def answer(*quotes: Quote) -> tuple[list[bool], list[int]]:
        found = strategy.quiet(book_columns(list(quotes), book), view_market)
        return found.rows.tolist(), found.rejections["cooldown"].tolist()

    # a -> b crosses past the threshold again in its cool-down: quiet; b -> a does not
    # cool down (0.25 % past the fees).
    assert answer(Quote("b", "XUSDT", 100.6, 100.7, 5.0, 5.0, t, t),
                  Quote("a", "XUSDT", 101.2, 101.3, 5.0, 5.0, t, t)) == ([True, False], [1, 0])
    # A spread past max_spread_threshold is an anomaly before any cool-down.
    assert answer(Quote("b", "XUSDT", 101.5, 101.6, 5.0, 5.0, t, t)) == ([False], [0])
    # So is a venue whose feed is down.
    view_market.usable["b"] = False
    assert answer(Quote("b", "XUSDT", 100.6, 100.7, 5.0, 5.0, t, t)) == ([False], [0])


def test_a_crossing_exactly_at_the_threshold_is_not_quiet() -> None:
    config = ArbitrageConfig(symbols=["XUSDT"], min_profit_threshold=0.01,
                             slippage_tolerance=0.0)
    strategy = CrossExchangeStrategy(config)
    view_market = market({"a": 0.0, "b": 0.0}, {})
    batch = [Quote("a", "XUSDT", 99.0, 100.0, 1.0, 1.0, T0, T0),
             # (101 - 100) / 100 is 0.01 exactly: the threshold reached.
             Quote("b", "XUSDT", 101.0, 102.0, 1.0, 1.0, T0, T0),
             # The same route, seen from the buying venue's quote.
             Quote("a", "XUSDT", 99.0, 100.0, 1.0, 1.0, T0, T0),
             Quote("b", "XUSDT", 100.5, 102.0, 1.0, 1.0, T0, T0)]
    answer = strategy.quiet(book_columns(batch, {}), view_market)
    assert answer.rows.tolist() == [True, False, False, True]
    assert answer.rejections["below_threshold"].tolist() == [0, 0, 0, 1]


SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
PRICES = {"BTCUSDT": 65_000.0, "ETHUSDT": 3_500.0, "SOLUSDT": 150.0}


def simulated(count: int, depth: int = 1) -> list[Quote]:
    return simulated_quotes(count, PRICES, depth=depth, start=T0)


BASE = """
[arbitrage]
symbols = {symbols}
min_profit_threshold = 0.001
cooldown_seconds = 2.0
max_trades_per_hour = 100000
{extra}

[simulation]
enabled = false

[api]
enabled = false
"""

CASES = {
    "plain": {},
    "skew": {"arbitrage": "inventory_skew = 0.6"},
    "trend": {"arbitrage": "use_trend_filter = true\nmoving_average_periods = 4\n"
                           "trend_confirmation_threshold = 0.0"},
    "trend buy low": {"arbitrage": "use_trend_filter = true\nmoving_average_periods = 6\n"
                                   "trend_confirmation_threshold = 0.0002\n"
                                   "trend_filter_mode = \"uptrend_buy_low\""},
    # The data's sim_beta as okx, whose table gives it a fee and a premium baseline.
    "premium": {"tables": "[exchanges.okx]\ntaker_fee = 0.0008\npremium_baseline = 0.05",
                "rename": {"sim_beta": "okx"}},
    "one symbol": {"symbols": ["BTCUSDT"]},
    "depth": {"depth": 3},
}


def backtest(tmp_path: Path, case: dict[str, Any], batches: Any,
             monkeypatch: pytest.MonkeyPatch, decisions: bool) -> tuple[Any, int]:
    config_path = tmp_path / "arbot.toml"
    config_path.write_text(textwrap.dedent(BASE).format(
        symbols=case.get("symbols", SYMBOLS), extra=case.get("arbitrage", ""))
        + case.get("tables", ""))
    monkeypatch.setattr(Engine, "batch_decisions", decisions)
    stored = 0
    original_quotes, original_rows = Engine.on_quiet_quotes, Engine.on_quiet_rows
    inside = False

    def counting(self: Engine, quotes: Any) -> None:
        nonlocal stored
        quotes = list(quotes)
        if not inside:
            stored += len(quotes)
        original_quotes(self, quotes)

    def counting_rows(self: Engine, batch: Any, start: int, end: int) -> None:
        nonlocal stored, inside
        stored += end - start
        inside = True
        try:
            original_rows(self, batch, start, end)
        finally:
            inside = False

    monkeypatch.setattr(Engine, "on_quiet_quotes", counting)
    monkeypatch.setattr(Engine, "on_quiet_rows", counting_rows)
    pm = make_plugin_manager()
    config = load_with_plugins(config_path, pm)
    problems = DataProblems()
    result = run_backtest(pm, config, batches, options=BacktestOptions(), problems=problems)
    return result, stored


@pytest.mark.parametrize("name", list(CASES))
def test_a_backtest_decides_the_same_with_quiet_batches_and_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    case = CASES[name]
    quotes = simulated(24_000, depth=case.get("depth", 1))
    rename = case.get("rename", {})
    quotes = [attrs.evolve(q, exchange=rename.get(q.exchange, q.exchange)) for q in quotes]
    data = tmp_path / "quotes.parquet"
    writer = ParquetQuoteWriter(data, reorder_seconds=0.0, levels=case.get("depth", 1) > 1)
    writer.write_all(quotes)
    writer.close()

    def from_file() -> Any:
        return file_source([data], DataProblems())[0]

    def in_memory() -> Any:
        return iter([quotes[i:i + 3000] for i in range(0, len(quotes), 3000)])

    off, none_stored = backtest(tmp_path, case, from_file(), monkeypatch, False)
    assert none_stored == 0
    assert off.metrics["total_trades"] > 0
    # The inventory watch samples once a minute of replayed time from the first quote,
    # whatever the batches (the file's and the lists' below differ).
    times = sorted({sample[0] for sample in off.inventory["history"]})
    # (and once at the end).
    assert len(times) >= 3
    assert [t - T0 for t in times[:-1]] == [60.0 * (n + 1) for n in range(len(times) - 1)]
    for source in (from_file, in_memory):
        on, stored = backtest(tmp_path, case, source(), monkeypatch, True)
        assert on.metrics == off.metrics
        assert on.trades == off.trades
        assert on.signals == off.signals
        assert on.inventory == off.inventory
        assert stored > len(quotes) / 2, source.__name__


def test_a_csv_and_a_parquet_recording_decide_alike(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    quotes = simulated(12_000)
    csv_path, parquet = tmp_path / "q.csv.gz", tmp_path / "q.parquet"
    writer = QuoteFileWriter(csv_path, reorder_seconds=0.0)
    for quote in quotes:
        writer.write(quote)
    writer.close()
    parquet_writer = ParquetQuoteWriter(parquet, reorder_seconds=0.0)
    for batch in QuoteFileReader(csv_path, DataProblems()).batches():
        parquet_writer.write_all(batch)
    parquet_writer.close()
    results = [backtest(tmp_path, {}, file_source([path], DataProblems())[0], monkeypatch,
                        True)[0] for path in (csv_path, parquet)]
    assert results[0].metrics == results[1].metrics
    assert results[0].trades == results[1].trades


@pytest.mark.parametrize("kind", [*BATCH_KINDS, "list"])
def test_a_trend_note_of_rows_samples_as_the_note_of_each_quote(kind: str) -> None:
    from arbotd_xarb import TrendTracker
    from arbotd_xarb.batch import trend_note, trend_note_rows

    rng = random.Random(8)
    quotes = random_quotes(rng, 3000, ["a", "b", "c"], ["X", "Y", "Z"])
    # Ticks faster and slower than the trend's one-second samples.
    stamp = T0
    for index, quote in enumerate(quotes):
        stamp += rng.choice([0.0, 0.05, 0.3, 1.2])
        quotes[index] = attrs.evolve(quote, exchange_ts=stamp, received_ts=stamp)
    traded = frozenset({"X", "Z"})
    one, many = TrendTracker(3, 0.001), TrendTracker(3, 0.001)
    note = trend_note(one.update, traded)
    note_rows = trend_note_rows(many.update, many.update_many, traded)
    view = market({}, {})
    for quote in quotes:
        view.now = quote.received_ts
        note(quote, view)
    batch = quotes if kind == "list" else lazy_batch(quotes, kind)
    # Runs short (quote by quote) and long (grouped).
    cuts = sorted(rng.sample(range(1, 3000), 30))
    for start, end in itertools.pairwise([0, *cuts, 3000]):
        note_rows(batch, start, end)
    assert {key: list(w.samples) for key, w in many._windows.items()} == {
        key: list(w.samples) for key, w in one._windows.items()}
    assert {key for key, _ in one._windows} == traded
