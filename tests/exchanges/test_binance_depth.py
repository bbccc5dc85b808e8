"""Binance order books (``depth`` > 1): the diff-depth stream kept in step with REST
snapshots by Binance's update-id rule.

The parser and the sync rule are checked on Binance's own traffic (the recorded stream
and the snapshots taken with it: every book rebuilt must show the best bid and ask that
Binance's bookTicker stream gave for the same update id; the recording holds one
snapshot per symbol, so no later snapshot exists to compare with), then the whole feed
against fake servers on loopback whose books the client's must equal, with faults: a
skipped update id, a crossed book, stale snapshots, a stalled stream, garbage, a REST API
that fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import tomlkit
import trio
from fake_binance import (
    RECORDED,
    RECORDED_SNAPSHOTS,
    FakeBinance,
    RecordedDepth,
    open_fake_binance,
    recorded_messages,
    recorded_snapshots,
)
from fake_binance_rest import FakeBinanceRest, open_fake_binance_rest
from feedtools import FAST, RecordingSink, wait_for

import arbotd_binance.plugin as binance_plugin
from arbotd import Bus, ConfigError, Engine, Ledger, Quote
from arbotd._config import CORE_SECTIONS, structure_document
from arbotd.exchange import Backoff, BookResync, Connection
from arbotd_binance import BinanceConfig, BinanceFeed, parse_depth_snapshot
from arbotd_binance.depth import StaleSnapshot, SymbolBook, snapshot_limit
from arbotd_binance.rest import depth_weight

# A symbol out of sync again soon after its last sync waits a little (tests stay quick).
FAST_SYNC = Backoff(first=0.05, maximum=0.2, healthy_after=60.0)
LEVELS = 20


class BookSink(RecordingSink):
    """Also notes where, among the quotes, each symbol was forgotten."""

    def __init__(self) -> None:
        super().__init__()
        self.forgotten_at: list[tuple[str, int]] = []

    def forget_symbol(self, exchange: str, symbol: str) -> None:
        super().forget_symbol(exchange, symbol)
        self.forgotten_at.append((symbol, len(self.quotes)))

    def of(self, symbol: str, since: int = 0) -> list[Quote]:
        return [q for q in self.quotes[since:] if q.symbol == symbol]


@pytest.fixture
async def exchange() -> AsyncIterator[tuple[FakeBinance, FakeBinanceRest]]:
    async with open_fake_binance() as ws, open_fake_binance_rest() as rest:
        rest.depth_source = ws
        yield ws, rest


def make_feed(ws: FakeBinance, rest: FakeBinanceRest, **settings: object) -> BinanceFeed:
    config = BinanceConfig(enabled=True, ws_url=ws.url, rest_url=rest.url,
                           **settings)  # type: ignore[arg-type]
    return BinanceFeed(config, backoff=FAST, sync_backoff=FAST_SYNC)


def snapshot_requests(rest: FakeBinanceRest, symbol: str) -> list[dict[str, str]]:
    return [r.params for r in rest.requests
            if r.path == "/api/v3/depth" and r.params.get("symbol") == symbol]


def mismatches(ws: FakeBinance, quotes: list[Quote]) -> tuple[int, list[Quote]]:
    """How many of ``quotes`` show the exchange's book as it was after the event of the
    same time, and those that do not (a quote made right after a snapshot, with no event
    after the snapshot, has no event time: its time is when it was made, and it is not
    counted)."""
    checked, wrong = 0, []
    for quote in quotes:
        if quote.exchange_ts == quote.received_ts:
            continue
        expected = ws.books[quote.symbol].tops.get(round(quote.exchange_ts * 1000))
        if expected is None:
            continue
        checked += 1
        if (quote.bids, quote.asks) != expected:
            wrong.append(quote)
    return checked, wrong


async def wait_in_step(ws: FakeBinance, sink: BookSink, *symbols: str) -> None:
    """Stop the exchange's books, then wait until the last quote of each symbol shows
    the exchange's book as it is."""
    ws.stalled = True

    def in_step() -> bool:
        for symbol in symbols:
            quotes = sink.of(symbol)
            book = ws.books[symbol]
            if not quotes or (quotes[-1].bids, quotes[-1].asks) != book.top(LEVELS):
                return False
        return True

    await wait_for(in_step)


# --- configuration, limits ------------------------------------------------------------


def test_depth_is_read_from_toml_and_bounded() -> None:
    schema = {**CORE_SECTIONS, **binance_plugin.register_config_sections()}
    document = tomlkit.parse("[exchanges.binance]\nenabled = true\n")
    assert structure_document(document, schema, file="t.toml")[
        "exchanges.binance"].depth == 20
    for bad in (0, 101):
        with pytest.raises(ConfigError, match="depth"):
            structure_document(tomlkit.parse(f"[exchanges.binance]\ndepth = {bad}\n"),
                               schema, file="t.toml")


def test_depth_chooses_the_streams() -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    level_one = BinanceFeed(BinanceConfig(depth=1)).connections(symbols)
    books = BinanceFeed(BinanceConfig(depth=20)).connections(symbols)
    assert level_one[0].url.endswith("streams=btcusdt@bookTicker/ethusdt@bookTicker")
    assert books[0].url.endswith("streams=btcusdt@depth@100ms/ethusdt@depth@100ms")
    assert books[0].symbols == {"BTCUSDT": "BTCUSDT", "ETHUSDT": "ETHUSDT"}
    assert not BinanceFeed(BinanceConfig(depth=1)).keeps_books
    assert BinanceFeed(BinanceConfig(depth=2)).keeps_books


def test_snapshots_cover_the_depth_at_the_least_weight() -> None:
    assert [snapshot_limit(d) for d in (2, 20, 21, 100)] == [100, 100, 500, 500]
    assert [depth_weight(n) for n in (100, 500, 1000, 5000)] == [5, 25, 50, 250]
    with pytest.raises(ValueError, match="5000"):
        depth_weight(5001)


def test_the_feed_and_the_account_share_one_weight_budget() -> None:
    class Runtime:
        plugin_state: dict = {}
        strategies: list = []
        clock = None

    runtime = Runtime()
    config = {"exchanges.binance": BinanceConfig(enabled=True)}
    [feed] = binance_plugin.register_exchanges(config=config, runtime=runtime)
    [account] = binance_plugin.register_accounts(config=config, runtime=runtime)
    assert feed._budget is not None and account._budget is feed._budget


# --- the sync rule, message by message --------------------------------------------------


def depth_message(symbol: str, first: int, last: int, bids: list, asks: list,
                  event_ms: int = 1_700_000_000_000) -> bytes:
    return orjson.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": {
        "e": "depthUpdate", "E": event_ms, "s": symbol, "U": first, "u": last,
        "b": bids, "a": asks}})


SNAPSHOT = {"lastUpdateId": 100,
            "bids": [["10.0", "1"], ["9.9", "2"], ["9.8", "3"]],
            "asks": [["10.1", "1"], ["10.2", "2"], ["10.3", "3"]]}


def parser() -> tuple[BinanceFeed, Connection, dict]:
    feed = BinanceFeed(BinanceConfig(depth=LEVELS))
    return feed, Connection("ws://x", {"BTCUSDT": "BTCUSDT"}), {}


def test_events_before_straddling_and_after_the_snapshot() -> None:
    feed, connection, state = parser()
    # Buffered while no snapshot: one wholly before it, one straddling it.
    for message in (depth_message("BTCUSDT", 95, 100, [["9.7", "9"]], []),
                    depth_message("BTCUSDT", 99, 102, [["10.0", "5"]], [["10.1", "0"]])):
        assert feed.parse(message, connection, state, 1.0) is None
    entry: SymbolBook = state["BTCUSDT"]
    quote = entry.install(parse_depth_snapshot(SNAPSHOT), LEVELS, 2.0)
    # 95..100 was in the snapshot already (9.7 never came); 99..102 applied over it.
    assert quote is not None
    assert quote.bids == ((10.0, 5.0), (9.9, 2.0), (9.8, 3.0))
    assert quote.asks == ((10.2, 2.0), (10.3, 3.0))
    assert quote.exchange_ts == 1_700_000_000.0 and quote.received_ts == 2.0
    # After it: each event continues the last; an old one is ignored.
    after = feed.parse(depth_message("BTCUSDT", 103, 104, [], [["10.15", "4"]]),
                       connection, state, 3.0)
    assert after is not None and after.asks[0] == (10.15, 4.0)
    assert feed.parse(depth_message("BTCUSDT", 101, 104, [["1", "1"]], []),
                      connection, state, 4.0) is None
    assert feed.old_updates == 1 and entry.book.update_id == 104


def test_a_snapshot_older_than_the_buffered_events_is_fetched_again() -> None:
    feed, connection, state = parser()
    feed.parse(depth_message("BTCUSDT", 105, 106, [["10.0", "5"]], []), connection, state, 1.0)
    entry: SymbolBook = state["BTCUSDT"]
    with pytest.raises(StaleSnapshot, match="older than the first buffered update"):
        entry.install(parse_depth_snapshot(SNAPSHOT), LEVELS, 2.0)
    assert not entry.book.valid and entry.buffer is not None and len(entry.buffer) == 1
    newer = {**SNAPSHOT, "lastUpdateId": 104}
    quote = entry.install(parse_depth_snapshot(newer), LEVELS, 3.0)
    assert quote is not None and quote.bids[0] == (10.0, 5.0)


def test_a_gap_drops_the_book_and_a_snapshot_older_than_what_came_is_stale() -> None:
    feed, connection, state = parser()
    entry: SymbolBook = state.setdefault("BTCUSDT", SymbolBook("BTCUSDT"))
    entry.install(parse_depth_snapshot(SNAPSHOT), LEVELS, 1.0)
    assert feed.parse(depth_message("BTCUSDT", 101, 101, [["9.95", "1"]], []),
                      connection, state, 2.0) is not None
    with pytest.raises(BookResync, match="update ids 102 to 102 never came") as caught:
        feed.parse(depth_message("BTCUSDT", 103, 104, [["9.9", "7"]], []),
                   connection, state, 3.0)
    assert caught.value.symbol == "BTCUSDT"
    assert not entry.book.valid and entry.book.quote("binance", "BTCUSDT", 5, 0, 0) is None
    # Out of sync: updates are buffered, no quote comes.
    assert feed.parse(depth_message("BTCUSDT", 105, 105, [], []), connection, state, 4.0) is None
    with pytest.raises(StaleSnapshot):
        entry.install(parse_depth_snapshot(SNAPSHOT), LEVELS, 5.0)  # 100 < 101 seen
    fresh = {"lastUpdateId": 103, "bids": [["9.9", "6"]], "asks": [["10.1", "1"]]}
    quote = entry.install(parse_depth_snapshot(fresh), LEVELS, 6.0)
    # 103..104 straddles the snapshot (applied), 105 follows.
    assert quote is not None and quote.bids == ((9.9, 7.0),)


def test_a_crossed_book_is_dropped_and_the_next_snapshot_must_be_newer() -> None:
    feed, connection, state = parser()
    entry: SymbolBook = state.setdefault("BTCUSDT", SymbolBook("BTCUSDT"))
    entry.install(parse_depth_snapshot(SNAPSHOT), LEVELS, 1.0)
    with pytest.raises(BookResync, match="crossed at update 101"):
        feed.parse(depth_message("BTCUSDT", 101, 101, [["10.5", "1"]], []),
                   connection, state, 2.0)
    assert not entry.book.valid
    with pytest.raises(StaleSnapshot, match="older than update 101"):
        entry.install(parse_depth_snapshot(SNAPSHOT), LEVELS, 3.0)
    fresh = {**SNAPSHOT, "lastUpdateId": 101}
    assert entry.install(parse_depth_snapshot(fresh), LEVELS, 4.0) is not None


@pytest.mark.parametrize("data", [
    {"b": [["abc", "1"]], "a": []},
    {"b": [["10.0", "1"], ["nan", "1"]], "a": []},
    {"b": [["10.0", "-1"]], "a": []},
    {"b": [], "a": [["0", "1"]]},
    {"b": {"10.0": "1"}, "a": []},
    {"b": ["10.0"], "a": []},
    {"b": [["10.0"]], "a": []},
    {"U": "101"},
    {"U": 102, "u": 101},
    {"E": None},
    {"s": "ETHUSDT"},
])
def test_garbage_is_refused_before_it_reaches_the_book(data: dict) -> None:
    feed, connection, state = parser()
    entry: SymbolBook = state.setdefault("BTCUSDT", SymbolBook("BTCUSDT"))
    entry.install(parse_depth_snapshot(SNAPSHOT), LEVELS, 1.0)
    before = entry.book.top(LEVELS)
    event = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 101, "u": 101,
             "b": [["9.95", "1"]], "a": [], **data}
    raw = orjson.dumps({"stream": "btcusdt@depth@100ms", "data": event})
    with pytest.raises((ValueError, KeyError, TypeError)):
        feed.parse(raw, connection, state, 2.0)
    assert entry.book.top(LEVELS) == before and entry.book.update_id == 100
    # The next good event follows on.
    good = depth_message("BTCUSDT", 101, 101, [["9.95", "1"]], [])
    assert feed.parse(good, connection, state, 3.0) is not None


# --- Binance's own traffic --------------------------------------------------------------


def _need_recordings() -> None:
    if not (RECORDED.exists() and RECORDED_SNAPSHOTS.exists()):
        pytest.skip("recorded traffic not found (../shared is missing)")


def test_the_recorded_stream_rebuilds_the_books_binance_sent() -> None:
    """The recording's events and snapshots, in the order they came, through the feed's
    parser and sync: at every update id where Binance's bookTicker also spoke, the book's
    best levels are the bookTicker's."""
    _need_recordings()
    snapshots = recorded_snapshots()
    feed = BinanceFeed(BinanceConfig(depth=LEVELS))
    limit = feed.snapshot_limit
    connection = Connection("ws://x", {s: s for s in snapshots})
    state: dict = {}
    pending = sorted((when, symbol) for symbol, (when, _) in snapshots.items())
    best_at: dict[tuple[str, int], tuple[float, ...]] = {}
    tickers: dict[tuple[str, int], tuple[float, ...]] = {}
    quotes = 0
    for when, payload in recorded_messages():
        while pending and pending[0][0] <= when:  # the snapshot answered by then
            _, symbol = pending.pop(0)
            body = snapshots[symbol][1]
            body = {**body, "bids": body["bids"][:limit], "asks": body["asks"][:limit]}
            state[symbol].install(parse_depth_snapshot(body), LEVELS, when)
        message = orjson.loads(payload)
        data = message["data"]
        if message["stream"].endswith("@bookTicker"):
            tickers[data["s"], data["u"]] = tuple(float(data[k]) for k in "bBaA")
        elif message["stream"].endswith("@depth@100ms"):
            quote = feed.parse(payload, connection, state, when)
            if quote is not None:
                quotes += 1
                assert quote.bid < quote.ask and len(quote.bids) <= LEVELS
                book = state[data["s"]].book
                best_at[data["s"], book.update_id] = (
                    quote.bid, quote.bid_size, quote.ask, quote.ask_size)
    assert not pending and quotes > 150
    assert feed.skipped_messages == 0 and feed.old_updates == 1  # LRCBTC's, after its snapshot
    compared = {key: best_at[key] for key in tickers if key in best_at}
    assert len(compared) >= 25
    assert compared == {key: tickers[key] for key in compared}
    assert {symbol for symbol, _ in compared} >= {"NKNUSDT", "LRCBTC", "BLZETH"}


async def test_the_recorded_stream_over_loopback_rebuilds_the_same_books(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    """The same, through the whole feed: the fake sends the recorded events one after
    the other and answers the recorded snapshots."""
    _need_recordings()
    ws, rest = exchange
    ws.stalled = True  # only what the test sends
    rest.depth_source = RecordedDepth()
    symbols = sorted(recorded_snapshots())
    messages = [orjson.loads(p) for _, p in recorded_messages()]
    tickers = {(m["data"]["s"], m["data"]["u"]): tuple(float(m["data"][k]) for k in "bBaA")
               for m in messages if m["stream"].endswith("@bookTicker")}
    feed = make_feed(ws, rest)
    sink = BookSink()
    compared = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, symbols, sink)
        for message in messages:
            if not message["stream"].endswith("@depth@100ms"):
                continue
            data = message["data"]
            ws.inject(orjson.dumps(message))
            ticker = tickers.get((data["s"], data["u"]))
            if ticker is None:
                continue
            # The quote of the book at this event: its own, or the one made when the
            # snapshot came, if the event was buffered until then.
            await wait_for(lambda d=data: any(
                q.symbol == d["s"] and round(q.exchange_ts * 1000) == d["E"]
                for q in sink.quotes), timeout=10)
            at_event = [q for q in sink.quotes if q.symbol == data["s"]
                        and round(q.exchange_ts * 1000) == data["E"]]
            quote = at_event[-1]
            assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == ticker
            compared += 1
        nursery.cancel_scope.cancel()
    assert compared >= 25
    assert feed.book_resyncs == 0 and feed.skipped_messages == 0 and feed.sync_failures == 0
    assert sorted(r["symbol"] for r in (req.params for req in rest.requests)) == symbols
    assert {req.params["limit"] for req in rest.requests} == {"100"}


# --- against the fake exchange's books ---------------------------------------------------


async def test_books_follow_the_exchange(exchange: tuple[FakeBinance, FakeBinanceRest]
                                         ) -> None:
    ws, rest = exchange
    feed = make_feed(ws, rest)
    sink = BookSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        assert ws.requested == [["btcusdt@depth@100ms", "ethusdt@depth@100ms"]]
        await wait_for(lambda: len(sink.of("BTCUSDT")) > 20 and len(sink.of("ETHUSDT")) > 20)
        assert feed.feed_status().connected
        assert feed.feed_status().latency_ms is not None  # depth events carry their time
        await wait_in_step(ws, sink, "BTCUSDT", "ETHUSDT")
        nursery.cancel_scope.cancel()
    checked, wrong = mismatches(ws, sink.quotes)
    assert checked >= 38 and wrong == []
    assert all(len(q.bids) == len(q.asks) == LEVELS for q in sink.quotes)
    assert all(q.bids[0] == (q.bid, q.bid_size) for q in sink.quotes)
    assert [r["limit"] for r in snapshot_requests(rest, "BTCUSDT")] == ["100"]
    assert len(snapshot_requests(rest, "ETHUSDT")) == 1
    assert feed.book_resyncs == 0 and sink.forgotten == [] and sink.usable_flips() == [True]


async def test_a_skipped_update_id_resyncs_that_symbol_only(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    ws, rest = exchange
    feed = make_feed(ws, rest)
    sink = BookSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        await wait_for(lambda: len(sink.of("BTCUSDT")) > 5 and len(sink.of("ETHUSDT")) > 5)
        # The snapshot takes a while to come: the other symbol goes on meanwhile.
        rest.fault, rest.stall_seconds = "stall", 0.5
        ws.skip_update("BTCUSDT")
        await wait_for(lambda: sink.forgotten == [("binance", "BTCUSDT")])
        rest.fault = None
        forgotten_at = sink.forgotten_at[0][1]
        await wait_for(lambda: len(sink.of("BTCUSDT", forgotten_at)) > 5)
        await wait_in_step(ws, sink, "BTCUSDT", "ETHUSDT")
        nursery.cancel_scope.cancel()
    after = sink.quotes[forgotten_at:]
    first_btc = next(i for i, q in enumerate(after) if q.symbol == "BTCUSDT")
    assert any(q.symbol == "ETHUSDT" for q in after[:first_btc])
    checked, wrong = mismatches(ws, sink.quotes)
    assert checked >= 12 and wrong == []
    assert feed.book_resyncs == 1
    assert len(snapshot_requests(rest, "BTCUSDT")) == 2
    assert len(snapshot_requests(rest, "ETHUSDT")) == 1
    # The connection stayed up: the venue was never unusable.
    assert len(ws.connections) == 1 and sink.usable_flips() == [True]


async def test_a_crossed_book_resyncs_that_symbol(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    ws, rest = exchange
    feed = make_feed(ws, rest)
    sink = BookSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 5)
        ws.send_crossing("BTCUSDT")
        await wait_for(lambda: sink.forgotten == [("binance", "BTCUSDT")])
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 5)
        await wait_in_step(ws, sink, "BTCUSDT")
        nursery.cancel_scope.cancel()
    assert all(q.bid < q.ask for q in sink.quotes)
    checked, wrong = mismatches(ws, sink.quotes)
    assert checked >= 8 and wrong == []
    assert feed.book_resyncs == 1 and len(snapshot_requests(rest, "BTCUSDT")) == 2
    assert len(ws.connections) == 1


async def test_a_stale_snapshot_is_fetched_again(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    ws, rest = exchange
    ws.stale_snapshots = 1  # the first sync gets an old snapshot
    feed = make_feed(ws, rest)
    sink = BookSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 5)
        assert feed.sync_failures == 1 and len(snapshot_requests(rest, "BTCUSDT")) == 2
        # And after a gap, when the stream has gone past the snapshot.
        ws.stale_snapshots = 1
        ws.skip_update("BTCUSDT")
        await wait_for(lambda: len(sink.forgotten) == 1)
        forgotten_at = sink.forgotten_at[0][1]
        await wait_for(lambda: len(sink.of("BTCUSDT", forgotten_at)) > 5)
        await wait_in_step(ws, sink, "BTCUSDT")
        nursery.cancel_scope.cancel()
    checked, wrong = mismatches(ws, sink.quotes)
    assert checked >= 8 and wrong == []
    assert feed.sync_failures == 2 and len(snapshot_requests(rest, "BTCUSDT")) == 4
    assert sink.usable_flips() == [True]


async def test_a_stalled_stream_reconnects_and_syncs_every_book_again(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    ws, rest = exchange
    feed = make_feed(ws, rest, stale_after_seconds=0.5)
    sink = BookSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        await wait_for(lambda: len(sink.of("BTCUSDT")) > 3 and len(sink.of("ETHUSDT")) > 3)
        ws.stalled = True
        await wait_for(lambda: sink.usable_flips() == [True, False])
        count = len(sink.quotes)
        ws.stalled = False
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        await wait_for(lambda: len(sink.of("BTCUSDT", count)) > 3
                       and len(sink.of("ETHUSDT", count)) > 3)
        await wait_in_step(ws, sink, "BTCUSDT", "ETHUSDT")
        nursery.cancel_scope.cancel()
    checked, wrong = mismatches(ws, sink.quotes)
    assert checked >= 10 and wrong == []
    assert len(snapshot_requests(rest, "BTCUSDT")) == 2
    assert len(snapshot_requests(rest, "ETHUSDT")) == 2
    assert feed.book_resyncs == 0  # a new connection syncs its books, nothing was out of step


async def test_garbage_is_skipped_and_counted_and_the_book_stays_right(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    ws, rest = exchange
    feed = make_feed(ws, rest)
    sink = BookSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 5)
        book = ws.books["BTCUSDT"]
        # With the id the exchange's next event takes: were any of it applied, the
        # book would be wrong; were its id taken, the next event would be a gap.
        next_id = book.update_id + 1
        ws.inject(b"\x00garbage{")
        ws.inject(depth_message("BTCUSDT", next_id, next_id, [["abc", "1"]], []))
        ws.inject(depth_message("BTCUSDT", next_id, next_id, [["10.0", "1"]], "x"))  # type: ignore[arg-type]
        ws.inject(b'{"stream": "btcusdt@depth@100ms", "data": {"s": "BTCUSDT"}}')
        await wait_for(lambda: feed.skipped_messages == 4)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 5)
        await wait_in_step(ws, sink, "BTCUSDT")
        nursery.cancel_scope.cancel()
    checked, wrong = mismatches(ws, sink.quotes)
    assert checked >= 8 and wrong == []
    assert feed.book_resyncs == 0 and sink.forgotten == [] and len(ws.connections) == 1


async def test_a_failing_snapshot_endpoint_is_retried_with_backoff(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    ws, rest = exchange
    rest.fault = "500"
    feed = make_feed(ws, rest)
    sink = BookSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: feed.sync_failures >= 2)
        assert sink.quotes == [] and not feed.feed_status().connected
        rest.fault = None
        await wait_for(lambda: len(sink.quotes) > 5)
        await wait_in_step(ws, sink, "BTCUSDT")
        nursery.cancel_scope.cancel()
    checked, wrong = mismatches(ws, sink.quotes)
    assert checked >= 4 and wrong == []
    assert len(ws.connections) == 1 and sink.usable_flips() == [True]


async def test_an_unknown_symbol_has_no_book_and_the_others_go_on(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    ws, rest = exchange

    class Listed:
        """Binance lists BTCUSDT only."""

        def depth_snapshot(self, symbol: str, limit: int) -> dict | None:
            return ws.depth_snapshot(symbol, limit) if symbol == "BTCUSDT" else None

    rest.depth_source = Listed()
    feed = make_feed(ws, rest)
    sink = BookSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "NOPEUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 5 and feed.sync_failures >= 2)
        nursery.cancel_scope.cancel()
    assert {q.symbol for q in sink.quotes} == {"BTCUSDT"}


async def test_the_engine_trades_on_no_book_out_of_sync(
    exchange: tuple[FakeBinance, FakeBinanceRest],
) -> None:
    ws, rest = exchange
    engine = Engine(strategies=[], bus=Bus(), ledger=Ledger())
    engine.set_venues({"binance": 0.001}, {})
    feed = make_feed(ws, rest)
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], engine)
        await wait_for(lambda: engine.fresh_quote("binance", "BTCUSDT", 60) is not None
                       and engine.fresh_quote("binance", "ETHUSDT", 60) is not None)
        rest.fault, rest.stall_seconds = "stall", 1.0  # the new snapshot takes a while
        ws.skip_update("BTCUSDT")
        await wait_for(lambda: feed.book_resyncs == 1)
        assert engine.fresh_quote("binance", "BTCUSDT", 60) is None
        assert engine.fresh_quote("binance", "ETHUSDT", 60) is not None
        assert engine.is_usable("binance")
        rest.fault = None
        await wait_for(lambda: engine.fresh_quote("binance", "BTCUSDT", 60) is not None)
        quote = engine.fresh_quote("binance", "BTCUSDT", 60)
        assert quote is not None and len(quote.bids or ()) == LEVELS
        nursery.cancel_scope.cancel()
