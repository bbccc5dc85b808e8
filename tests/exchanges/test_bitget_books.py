"""Bitget order books of several levels: the checksum against the examples of Bitget's
documentation, the merging and seq rules on hand-made pushes, ``books15``, and the feed
against the fake Bitget pushing its own books with faults, resubscribing the symbol
whose book broke."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import tomlkit
import trio
from exchanges.fake_bitget import FakeBitget, open_fake_bitget
from feedtools import FAST, RecordingSink, wait_for

import arbotd_bitget.plugin as bitget_plugin
from arbotd import ConfigError, Quote
from arbotd._config import CORE_SECTIONS, structure_document
from arbotd.exchange import Connection, Resync, ResyncSymbol
from arbotd_bitget import BitgetConfig, BitgetFeed, checksum_of
from arbotd_bitget.books import channel_for
from arbotd_bitget.stream import RESUBSCRIPTIONS_PER_HOUR

NAMES = {"BTCUSDT": "BTCUSDT", "ETHUSDT": "ETHUSDT"}


def books_feed(depth: int = 20, **settings: Any) -> tuple[BitgetFeed, Connection]:
    return BitgetFeed(BitgetConfig(depth=depth, **settings)), Connection("ws://x", NAMES)


# --- the checksum ---------------------------------------------------------------------


def test_the_checksum_examples_of_bitgets_documentation() -> None:
    """Bitget's worked examples: ``43231.1:4:43232.8:9:43231:6:43232.9:8`` for as many
    bids as asks (a negative CRC32: the signed reading), and
    ``3366.1:7:3366.8:9:3368:8:3372:8`` where the bids run out first."""
    assert checksum_of([["43231.1", "4"], ["43231", "6"]],
                       [["43232.8", "9"], ["43232.9", "8"]]) == -1504501796
    assert checksum_of([["3366.1", "7"]],
                       [["3366.8", "9"], ["3368", "8"], ["3372", "8"]]) == 831078360


def test_the_checksum_takes_25_levels_and_the_strings_as_written() -> None:
    bids = [[f"{100 - i}", "1"] for i in range(30)]
    asks = [[f"{200 + i}", "1"] for i in range(30)]
    assert checksum_of(bids, asks) == checksum_of(bids[:25], asks[:25])
    assert checksum_of([["1.50", "2"]], [["2", "1"]]) != checksum_of([["1.5", "2"]], [["2", "1"]])


# --- hand-made pushes: merging, seq, crossed, garbage -----------------------------------


def books(action: str, seq: int, bids: list[list[str]], asks: list[list[str]],
          checksum: int | None = 0, symbol: str = "BTCUSDT") -> bytes:
    """A books push; ``checksum=None`` computes the right one of ``bids``/``asks``."""
    if checksum is None:
        checksum = checksum_of(bids, asks)
    return orjson.dumps({"action": action, "arg": {"instType": "SPOT", "channel": "books",
                                                   "instId": symbol},
                         "data": [{"asks": asks, "bids": bids, "checksum": checksum,
                                   "seq": seq, "ts": "1700000000000"}], "ts": 1700000000001})


SNAPSHOT = books("snapshot", 10, [["100", "1"], ["99", "2"]], [["101", "1"], ["102", "2"]],
                 checksum=None)


def test_updates_merge_into_the_snapshot_and_their_checksums_pass() -> None:
    feed, connection = books_feed(depth=16)
    state: dict[str, Any] = {}
    quote = feed.parse(SNAPSHOT, connection, state, 5.0)
    assert quote is not None
    assert (quote.bids, quote.asks) == (((100.0, 1.0), (99.0, 2.0)), ((101.0, 1.0), (102.0, 2.0)))
    # A new price is inserted in order, size "0" removes a level, another size replaces.
    after = ([["100.5", "3"], ["100", "1"]], [["101", "0.5"], ["102", "2"], ["103", "4"]])
    quote = feed.parse(books("update", 17, [["100.5", "3"], ["99", "0"]],
                             [["101", "0.5"], ["103", "4"]], checksum=checksum_of(*after)),
                       connection, state, 5.0)
    assert quote is not None
    assert quote.bids == ((100.5, 3.0), (100.0, 1.0))
    assert quote.asks == ((101.0, 0.5), (102.0, 2.0), (103.0, 4.0))
    assert feed.book_resyncs == 0


def test_seq_rules_of_the_books_channel() -> None:
    feed, connection = books_feed(depth=16)
    state: dict[str, Any] = {}

    def parse(raw: bytes) -> Quote | None:
        return feed.parse(raw, connection, state, 5.0)

    assert parse(SNAPSHOT) is not None
    # seq grows by any step: nothing says by one.
    assert parse(books("update", 40, [], [["101", "0.5"]])) is not None
    # An update that changes nothing may repeat the last seq.
    assert parse(books("update", 40, [], [])) is not None
    # One that changes something under the same seq, or a seq going back, is out of order.
    with pytest.raises(ResyncSymbol, match="seq 40 is not above the last seq 40"):
        parse(books("update", 40, [["99", "5"]], []))
    assert parse(books("update", 41, [], [])) is None  # in flight: dropped
    assert parse(SNAPSHOT) is not None
    with pytest.raises(ResyncSymbol, match="seq 3 is not above the last seq 10"):
        parse(books("update", 3, [], []))
    assert feed.book_resyncs == 2 and feed.dropped_while_resyncing == 1


def test_a_checksum_that_does_not_match_resubscribes_that_symbol() -> None:
    feed, connection = books_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, connection, state, 1.0)
    feed.parse(books("snapshot", 5, [["10", "1"]], [["11", "1"]], symbol="ETHUSDT"),
               connection, state, 1.0)
    with pytest.raises(ResyncSymbol) as caught:
        feed.parse(books("update", 11, [["99", "3"]], [], checksum=12345), connection, state,
                   1.0)
    assert caught.value.symbol == "BTCUSDT" and "checksum 12345 does not match" in str(
        caught.value)
    arg = {"instType": "SPOT", "channel": "books", "instId": "BTCUSDT"}
    assert [orjson.loads(m) for m in caught.value.messages] == [
        {"op": "unsubscribe", "args": [arg]}, {"op": "subscribe", "args": [arg]}]
    assert not state["BTCUSDT"].valid and feed.book_resyncs == 1
    # The other symbol's book carries on; the fresh snapshot makes this one valid again.
    assert feed.parse(books("update", 6, [["10.5", "1"]], [], symbol="ETHUSDT"), connection,
                      state, 1.0) is not None
    assert feed.parse(SNAPSHOT, connection, state, 1.0) is not None
    assert state["BTCUSDT"].valid


def test_a_snapshot_checksum_is_checked_and_zero_means_none() -> None:
    feed, connection = books_feed()
    bad = books("snapshot", 10, [["100", "1"]], [["101", "1"]], checksum=12345)
    with pytest.raises(ResyncSymbol, match="checksum 12345 does not match"):
        feed.parse(bad, connection, {}, 1.0)
    assert feed.parse(books("snapshot", 10, [["100", "1"]], [["101", "1"]], checksum=0),
                      connection, {}, 1.0) is not None


def test_a_crossed_book_and_an_update_before_any_snapshot_resubscribe() -> None:
    feed, connection = books_feed()
    state: dict[str, Any] = {}
    with pytest.raises(ResyncSymbol, match="before any snapshot"):
        feed.parse(books("update", 11, [], []), connection, state, 1.0)
    feed.parse(SNAPSHOT, connection, state, 1.0)
    with pytest.raises(ResyncSymbol, match="crossed"):
        feed.parse(books("update", 11, [["101", "1"]], []), connection, state, 1.0)
    assert not state["BTCUSDT"].valid


def test_garbled_levels_of_a_book_resubscribe_and_count_as_skipped() -> None:
    feed, connection = books_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, connection, state, 1.0)
    with pytest.raises(ResyncSymbol, match="not understood"):
        feed.parse(books("update", 11, [], [["101", "x"]]), connection, state, 1.0)
    assert feed.skipped_messages == 1 and not state["BTCUSDT"].valid


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"something": "else"}',
    b'{"arg":{"channel":"books15","instId":"BTCUSDT"},"action":"snapshot","data":[]}',
    b'{"arg":{"channel":"books","instId":"DOGEUSDT"},"action":"snapshot","data":[]}',
    b'{"arg":{"channel":"books","instId":"BTCUSDT"},"action":"partial","data":[{"ts":"1"}]}',
])
def test_what_names_no_book_of_ours_is_garbage(raw: bytes) -> None:
    feed, connection = books_feed()
    with pytest.raises((ValueError, KeyError, TypeError, IndexError)):
        feed.parse(raw, connection, {}, 1.0)


def test_a_resubscription_whose_snapshot_never_comes_reconnects() -> None:
    feed, connection = books_feed(stale_after_seconds=5)
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, connection, state, 100.0)
    with pytest.raises(ResyncSymbol):
        feed.parse(books("update", 12, [["99", "1"]], [], checksum=1), connection, state, 100.0)
    assert feed.parse("pong", connection, state, 104.0) is None
    with pytest.raises(Resync, match="no fresh snapshot of BTCUSDT within 5 s"):
        feed.parse(books("update", 13, [], []), connection, state, 105.5)


def test_resubscriptions_stay_within_bitgets_subscribe_limit() -> None:
    """240 subscribe requests an hour per connection: a book that keeps breaking is
    resubscribed (two requests) at most RESUBSCRIPTIONS_PER_HOUR times, then the
    connection starts afresh."""
    assert 2 * RESUBSCRIPTIONS_PER_HOUR < 240
    feed, connection = books_feed()
    state: dict[str, Any] = {}
    for i in range(RESUBSCRIPTIONS_PER_HOUR + 1):
        feed.parse("pong", connection, state, float(i))
        feed.parse(SNAPSHOT, connection, state, float(i))
        with pytest.raises(Resync) as caught:
            feed.parse(books("update", 11, [["99", "3"]], [], checksum=1), connection, state,
                       float(i))
    assert not isinstance(caught.value, ResyncSymbol)
    assert "reconnecting instead" in str(caught.value)


# --- books15 and configuration -----------------------------------------------------------


def books15(seq: int, bids: list[str], asks: list[str]) -> bytes:
    return orjson.dumps({"action": "snapshot", "arg": {"instType": "SPOT", "channel": "books15",
                                                       "instId": "BTCUSDT"},
                         "data": [{"asks": [[p, "1"] for p in asks],
                                   "bids": [[p, "2"] for p in bids],
                                   "checksum": 0, "seq": seq, "ts": "1700000000000"}]})


def test_books15_snapshots_give_their_levels_up_to_the_depth() -> None:
    feed, connection = books_feed(depth=3)
    assert feed.channel == "books15"
    state: dict[str, Any] = {}
    quote = feed.parse(books15(7, ["10", "9", "8", "7"], ["11", "12", "13", "14"]),
                       connection, state, 1700000000.5)
    assert quote == Quote("bitget", "BTCUSDT", 10.0, 11.0, 2.0, 1.0, 1700000000.0,
                          1700000000.5, ((10.0, 2.0), (9.0, 2.0), (8.0, 2.0)),
                          ((11.0, 1.0), (12.0, 1.0), (13.0, 1.0)))
    assert feed.parse(books15(6, ["10"], ["11"]), connection, state, 1.0) is None  # older
    assert feed.dropped_out_of_order == 1
    with pytest.raises(ResyncSymbol, match="crossed snapshot"):
        feed.parse(books15(8, ["11.5"], ["11"]), connection, state, 1.0)
    assert feed.parse(books15(9, ["10"], ["11"]), connection, state, 1.0) is not None


def test_the_depth_picks_the_channel() -> None:
    assert [channel_for(d) for d in (1, 2, 15, 16, 20, 400)] == [
        "books1", "books15", "books15", "books", "books", "books"]
    assert BitgetConfig().depth == 20
    plan = BitgetFeed(BitgetConfig()).connections([f"C{i}USDT" for i in range(90)])
    assert [len(c.symbols) for c in plan] == [40, 40, 10]  # Bitget advises under 50
    assert orjson.loads(plan[0].subscribe[0])["args"][0] == {
        "instType": "SPOT", "channel": "books", "instId": "C0USDT"}


@pytest.mark.parametrize("depth", [0, 401, -1])
def test_the_depth_is_bounded(depth: int) -> None:
    schema = {**CORE_SECTIONS, **bitget_plugin.register_config_sections()}
    document = tomlkit.parse(f"[exchanges.bitget]\ndepth = {depth}\n")
    with pytest.raises(ConfigError, match=r"exchanges\.bitget\.depth"):
        structure_document(document, schema, file="arbot.toml")


# --- against the fake server -----------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeBitget]:
    async with open_fake_bitget() as server:
        server.set_book("BTCUSDT", bids=[("100.0", "1"), ("99.5", "2"), ("99.0", "3")],
                        asks=[("100.5", "1.5"), ("101.0", "2.5")])
        server.set_book("ETHUSDT", bids=[("2050.1", "3.5")], asks=[("2050.2", "1.25")])
        yield server


def make_feed(fake: FakeBitget, depth: int = 20, **settings: object) -> BitgetFeed:
    config = BitgetConfig(enabled=True, ws_url=fake.ws_url, depth=depth,
                          **settings)  # type: ignore[arg-type]
    return BitgetFeed(config, backoff=FAST)


def last_quote(sink: RecordingSink, symbol: str) -> Quote:
    return [q for q in sink.quotes if q.symbol == symbol][-1]


async def test_books_reach_the_sink_and_follow_the_fakes_book(fake: FakeBitget) -> None:
    feed = make_feed(fake, depth=16)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        btc = last_quote(sink, "BTCUSDT")
        assert btc.bids == ((100.0, 1.0), (99.5, 2.0), (99.0, 3.0))
        assert btc.asks == ((100.5, 1.5), (101.0, 2.5))
        # The fake's book changes: the feed follows through updates (checksums pass).
        fake.set_book("BTCUSDT", bids=[("100.2", "4"), ("99.5", "2")], asks=[("101.0", "1")])
        await wait_for(lambda: last_quote(sink, "BTCUSDT").bids[0] == (100.2, 4.0))
        assert last_quote(sink, "BTCUSDT").asks == ((101.0, 1.0),)
        assert feed.book_resyncs == 0 and feed.skipped_messages == 0
        assert feed.feed_status().connected and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("fault", "reason"), [
    ("checksum", "does not match the book's"),
    ("gap", "does not match the book's"),  # a lost update shows in the checksum
    ("backwards", "is not above the last seq"),
    ("crossed", "crossed book"),
])
async def test_a_broken_book_is_forgotten_and_resubscribed_alone(
    fake: FakeBitget, fault: str, reason: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        fake.fault_next_push("BTCUSDT", fault)
        await wait_for(lambda: sink.forgotten == [("bitget", "BTCUSDT")])
        await wait_for(lambda: len(fake.subscribe_requests) == 2)
        arg = {"instType": "SPOT", "channel": "books", "instId": "BTCUSDT"}
        assert fake.unsubscribe_requests == [{"op": "unsubscribe", "args": [arg]}]
        assert fake.subscribe_requests[1] == {"op": "subscribe", "args": [arg]}
        count = len(sink.quotes)
        await wait_for(lambda: len([q for q in sink.quotes[count:] if q.symbol == "BTCUSDT"]) > 3)
        assert all(q.bid < q.ask for q in sink.quotes)
        # One connection throughout, never unusable: ETHUSDT went on.
        assert feed.book_resyncs == 1 and feed.resyncs == 0
        assert len(fake.connections) == 1 and sink.usable_flips() == [True]
        assert "resubscribing BTCUSDT: " in caplog.text and reason in caplog.text
        nursery.cancel_scope.cancel()


async def test_garbage_is_skipped_and_counted_on_the_books_channel(fake: FakeBitget) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(b"\x00garbage{")
        fake.inject('{"arg":{"channel":"books","instId":"NOPEUSDT"},"action":"update"}')
        await wait_for(lambda: feed.skipped_messages == 2)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert feed.book_resyncs == 0 and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()


async def test_books15_and_a_crossed_snapshot(fake: FakeBitget) -> None:
    feed = make_feed(fake, depth=5)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        assert fake.subscribe_requests[0]["args"] == [
            {"instType": "SPOT", "channel": "books15", "instId": "BTCUSDT"}]
        assert last_quote(sink, "BTCUSDT").bids == ((100.0, 1.0), (99.5, 2.0), (99.0, 3.0))
        fake.fault_next_push("BTCUSDT", "crossed")
        await wait_for(lambda: sink.forgotten == [("bitget", "BTCUSDT")])
        await wait_for(lambda: len(fake.subscribe_requests) == 2)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert all(q.bid < q.ask for q in sink.quotes) and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()
