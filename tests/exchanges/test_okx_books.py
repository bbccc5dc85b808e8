"""OKX order books of several levels: the recorded ``books`` channel replayed through the
real parser (every checksum passes on the rebuilt book), the seqId and checksum rules on
hand-made pushes, ``books5``, and the feed against the fake OKX pushing its own books with
faults, resubscribing the symbol whose book broke."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
import tomlkit
import trio
from fake_okx import RECORDED, FakeOkx, open_fake_okx, recorded_messages
from feedtools import FAST, RecordingSink, wait_for

import arbotd_okx.plugin as okx_plugin
from arbotd import ConfigError, Quote
from arbotd._config import CORE_SECTIONS, structure_document
from arbotd.exchange import Connection, Resubscriptions, Resync, ResyncSymbol
from arbotd_okx import OkxConfig, OkxFeed
from arbotd_okx.books import checksum_of
from arbotd_okx.stream import channel_for

NAMES = {"BTC-USDT": "BTCUSDT", "BTC-USD-220527": "BTCUSD220527",
         "UNI-USD-SWAP": "UNIUSDSWAP"}


def books_feed(depth: int = 20) -> tuple[OkxFeed, Connection]:
    feed = OkxFeed(OkxConfig(depth=depth))
    return feed, Connection("ws://x/ws/v5/public", NAMES)


def recorded_books() -> list[str]:
    if not RECORDED.exists():
        pytest.skip(f"recorded traffic not found at {RECORDED} (../shared is missing)")
    return [raw for raw in recorded_messages() if '"channel":"books"' in raw
            and '"data"' in raw]


class Rebuilt:
    """A book rebuilt from the recording with decimals, independently of the feed."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def take(self, data: dict[str, Any], snapshot: bool) -> None:
        if snapshot:
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, data["bids"]), (self.asks, data["asks"])):
            for price, size, *_ in levels:
                if Decimal(size) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(size)

    def top(self, depth: int) -> tuple[tuple[tuple[float, float], ...], ...]:
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return (tuple((float(p), float(s)) for p, s in bids),
                tuple((float(p), float(s)) for p, s in asks))


# --- the recording ---------------------------------------------------------------------


def test_the_recorded_books_rebuild_with_every_checksum_passing() -> None:
    """Real OKX traffic (May 2022): three instruments' ``books`` channel, a 400-level
    snapshot then updates each carrying the checksum of the book after it. Every push
    goes through the feed's parser without a resync, and each quote carries the top 20
    levels of the book rebuilt independently."""
    feed, connection = books_feed(depth=20)
    state: dict[str, Any] = {}
    rebuilt: dict[str, Rebuilt] = {}
    quotes = 0
    for raw in recorded_books():
        message = orjson.loads(raw)
        inst_id = message["arg"]["instId"]
        data = message["data"][0]
        assert data["checksum"] != 0  # the recording predates OKX's deprecation
        rebuilt.setdefault(inst_id, Rebuilt()).take(data, message["action"] == "snapshot")
        quote = feed.parse(raw, connection, state, 1652459300.0)
        assert quote is not None and quote.symbol == NAMES[inst_id]
        assert (quote.bids, quote.asks) == rebuilt[inst_id].top(20)
        assert (quote.bid, quote.bid_size) == quote.bids[0]
        assert (quote.ask, quote.ask_size) == quote.asks[0]
        assert quote.exchange_ts == int(data["ts"]) / 1000
        quotes += 1
    assert quotes > 250 and {q for q in NAMES.values()} <= set(state)
    assert feed.book_resyncs == 0 and feed.skipped_messages == 0


def test_an_altered_recorded_update_fails_its_checksum_and_resubscribes() -> None:
    feed, connection = books_feed()
    state: dict[str, Any] = {}
    messages = [raw for raw in recorded_books() if '"instId":"BTC-USDT"' in raw]
    snapshot, updates = messages[0], messages[1:]
    assert feed.parse(snapshot, connection, state, 1.0) is not None
    for raw in updates[:5]:
        assert feed.parse(raw, connection, state, 1.0) is not None
    # One size of the next update changed by one satoshi: the book no longer matches the
    # checksum OKX computed.
    altered = orjson.loads(updates[5])
    price, size, *rest = altered["data"][0]["asks"][0]
    altered["data"][0]["asks"][0] = [price, str(Decimal(size) + Decimal("0.00000001")), *rest]
    with pytest.raises(ResyncSymbol) as caught:
        feed.parse(orjson.dumps(altered), connection, state, 1.0)
    assert caught.value.symbol == "BTCUSDT" and "checksum" in str(caught.value)
    assert [orjson.loads(m) for m in caught.value.messages] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]},
        {"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}]
    assert not state["BTCUSDT"].valid and feed.book_resyncs == 1
    # The updates still in flight are dropped, not taken for another gap; the other
    # instruments' books carry on.
    for raw in updates[6:9]:
        assert feed.parse(raw, connection, state, 1.0) is None
    assert feed.dropped_while_resyncing == 3
    # The fresh snapshot of the resubscription makes the book valid again.
    assert feed.parse(snapshot, connection, state, 1.0) is not None
    assert state["BTCUSDT"].valid


def test_the_checksum_rule_on_a_short_book() -> None:
    """Bid and ask alternate; a side that runs out is left out; signed 32-bit."""
    import zlib

    bids = [["3366.1", "7", "0", "1"], ["3366", "6", "0", "3"]]
    asks = [["3366.8", "9", "10", "3"]]
    expected = zlib.crc32(b"3366.1:7:3366.8:9:3366:6")
    expected = expected - (1 << 32) if expected >= 1 << 31 else expected
    assert checksum_of(bids, asks) == expected


def test_the_checksum_examples_of_okxs_documentation() -> None:
    """OKX's own worked examples of its checksum: as many bids as asks (a negative
    checksum: the signed reading), then more asks than bids."""
    assert checksum_of([["3366.1", "7"], ["3366", "6"]],
                       [["3366.8", "9"], ["3368", "8"]]) == -1881014294
    assert checksum_of([["3366.1", "7"]],
                       [["3366.8", "9"], ["3368", "8"], ["3372", "8"]]) == 831078360


# --- hand-made pushes: seqId, crossed, garbage -----------------------------------------


def books(action: str, seq: int, prev: int, bids: list[list[str]], asks: list[list[str]],
          checksum: int | None = 0, inst_id: str = "BTC-USDT") -> bytes:
    """A books push; ``checksum=None`` computes the right one for a snapshot."""
    if checksum is None:
        checksum = checksum_of(bids, asks)
    return orjson.dumps({"arg": {"channel": "books", "instId": inst_id}, "action": action,
                         "data": [{"asks": [[*a, "0", "1"] for a in asks],
                                   "bids": [[*b, "0", "1"] for b in bids],
                                   "ts": "1700000000000", "checksum": checksum,
                                   "prevSeqId": prev, "seqId": seq}]})


SNAPSHOT = books("snapshot", 10, -1, [["100", "1"], ["99", "2"]], [["101", "1"], ["102", "2"]])


def test_seq_id_rules_of_the_books_channel() -> None:
    feed, connection = books_feed(depth=6)
    state: dict[str, Any] = {}

    def parse(raw: bytes) -> Quote | None:
        return feed.parse(raw, connection, state, 5.0)

    quote = parse(SNAPSHOT)
    assert quote is not None
    assert (quote.bids, quote.asks) == (((100.0, 1.0), (99.0, 2.0)), ((101.0, 1.0), (102.0, 2.0)))
    quote = parse(books("update", 11, 10, [["100.5", "3"], ["99", "0"]], []))
    assert quote is not None and quote.bids == ((100.5, 3.0), (100.0, 1.0))
    assert quote.asks == ((101.0, 1.0), (102.0, 2.0))
    # The keep-alive update after a quiet minute: no levels, prevSeqId == seqId.
    assert parse(books("update", 11, 11, [], [])) is not None
    # The documented maintenance reset: seqId below prevSeqId, prevSeqId still the last.
    assert parse(books("update", 3, 11, [], [["101", "0"]])).ask == 102.0  # type: ignore[union-attr]
    assert parse(books("update", 4, 3, [], [])) is not None
    # A prevSeqId that is not the last seqId: an update was missed.
    with pytest.raises(ResyncSymbol, match="prevSeqId 5 is not the last seqId 4"):
        parse(books("update", 6, 5, [], []))
    assert parse(books("update", 7, 6, [], [])) is None  # in flight: dropped
    assert parse(SNAPSHOT) is not None
    assert feed.book_resyncs == 1 and feed.dropped_while_resyncing == 1


def test_a_crossed_book_resubscribes() -> None:
    feed, connection = books_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, connection, state, 1.0)
    with pytest.raises(ResyncSymbol, match="crossed"):
        feed.parse(books("update", 11, 10, [["101", "1"]], []), connection, state, 1.0)
    assert not state["BTCUSDT"].valid


def test_an_update_before_any_snapshot_resubscribes() -> None:
    feed, connection = books_feed()
    with pytest.raises(ResyncSymbol, match="before any snapshot"):
        feed.parse(books("update", 11, 10, [], []), connection, {}, 1.0)


def test_a_snapshot_checksum_is_checked_and_zero_means_none() -> None:
    feed, connection = books_feed()
    good = books("snapshot", 10, -1, [["100", "1"]], [["101", "1"]], checksum=None)
    assert feed.parse(good, connection, {}, 1.0) is not None
    bad = books("snapshot", 10, -1, [["100", "1"]], [["101", "1"]], checksum=12345)
    with pytest.raises(ResyncSymbol, match="checksum 12345 does not match"):
        feed.parse(bad, connection, {}, 1.0)
    # OKX's checksum is 0 since its 2026 deprecation: the seqIds alone guard the book.
    assert feed.parse(books("snapshot", 10, -1, [["100", "1"]], [["101", "1"]], checksum=0),
                      connection, {}, 1.0) is not None


def test_garbled_levels_of_a_book_resubscribe_and_count_as_skipped() -> None:
    feed, connection = books_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, connection, state, 1.0)
    garbled = orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"},
                            "action": "update", "data": [{"asks": [["101", "x"]], "bids": [],
                                                           "ts": "1", "prevSeqId": 10,
                                                           "seqId": 11}]})
    with pytest.raises(ResyncSymbol, match="not understood"):
        feed.parse(garbled, connection, state, 1.0)
    assert feed.skipped_messages == 1 and not state["BTCUSDT"].valid


@pytest.mark.parametrize("raw", [
    b"not json",
    b"[]",
    b'{"something": "else"}',
    b'{"arg":{"channel":"books5","instId":"BTC-USDT"},"data":[]}',
    b'{"arg":{"channel":"books","instId":"ETH-USDT"},"action":"snapshot","data":[]}',
    b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"partial","data":[{}]}',
])
def test_what_names_no_book_of_ours_is_garbage(raw: bytes) -> None:
    feed, connection = books_feed()
    with pytest.raises((ValueError, KeyError, TypeError, IndexError)):
        feed.parse(raw, connection, {}, 1.0)


def test_acks_pongs_and_events_on_a_depth_feed() -> None:
    feed, connection = books_feed()
    assert feed.parse("pong", connection, {}, 1.0) is None
    ack = '{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a"}'
    assert feed.parse(ack, connection, {}, 1.0) is None
    with pytest.raises(Resync, match="60012"):
        feed.parse('{"event":"error","code":"60012","msg":"Invalid request"}', connection,
                   {}, 1.0)


def test_a_resubscription_whose_snapshot_never_comes_reconnects() -> None:
    feed = OkxFeed(OkxConfig(depth=20, stale_after_seconds=5))
    connection = Connection("ws://x", NAMES)
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, connection, state, 100.0)
    with pytest.raises(ResyncSymbol):
        feed.parse(books("update", 12, 11, [], []), connection, state, 100.0)
    assert feed.parse("pong", connection, state, 104.0) is None
    with pytest.raises(Resync, match="no fresh snapshot of BTCUSDT within 5 s"):
        feed.parse("pong", connection, state, 105.5)


def test_resubscriptions_have_an_hourly_budget_then_reconnect() -> None:
    pending = Resubscriptions(timeout=10.0, per_hour=2)
    for now in (0.0, 1.0):
        with pytest.raises(ResyncSymbol):
            pending.resync("BTCUSDT", "gap", ["u", "s"], now)
        pending.arrived("BTCUSDT")
    assert pending.deadline == float("inf")
    with pytest.raises(Resync, match="2 resubscriptions on this connection within the hour") \
            as caught:
        pending.resync("BTCUSDT", "gap", ["u", "s"], 2.0)
    assert not isinstance(caught.value, ResyncSymbol)
    # An hour after the first, there is room again.
    with pytest.raises(ResyncSymbol):
        pending.resync("BTCUSDT", "gap", ["u", "s"], 3600.5)


# --- books5 ----------------------------------------------------------------------------


def books5(seq: int, bids: list[str], asks: list[str]) -> bytes:
    return orjson.dumps({"arg": {"channel": "books5", "instId": "BTC-USDT"}, "data": [{
        "asks": [[p, "1", "0", "1"] for p in asks], "bids": [[p, "2", "0", "1"] for p in bids],
        "instId": "BTC-USDT", "ts": "1700000000000", "seqId": seq}]})


def test_books5_snapshots_give_their_levels_up_to_the_depth() -> None:
    feed, connection = books_feed(depth=3)
    assert feed.channel == "books5"
    state: dict[str, Any] = {}
    quote = feed.parse(books5(7, ["10", "9", "8", "7"], ["11", "12", "13", "14"]),
                       connection, state, 1700000000.5)
    assert quote == Quote("okx", "BTCUSDT", 10.0, 11.0, 2.0, 1.0, 1700000000.0, 1700000000.5,
                          ((10.0, 2.0), (9.0, 2.0), (8.0, 2.0)),
                          ((11.0, 1.0), (12.0, 1.0), (13.0, 1.0)))
    assert feed.parse(books5(6, ["10"], ["11"]), connection, state, 1.0) is None  # older
    assert feed.dropped_out_of_order == 1
    with pytest.raises(ResyncSymbol, match="crossed snapshot"):
        feed.parse(books5(8, ["11.5"], ["11"]), connection, state, 1.0)
    assert feed.parse(books5(9, ["10"], ["11"]), connection, state, 1.0) is not None


# --- configuration ---------------------------------------------------------------------


def test_the_depth_picks_the_channel_and_connections() -> None:
    assert [channel_for(d) for d in (1, 2, 5, 6, 20, 400)] == [
        "bbo-tbt", "books5", "books5", "books", "books", "books"]
    assert OkxConfig().depth == 20
    symbols = [f"C{i}USDT" for i in range(70)]
    plan = OkxFeed(OkxConfig()).connections(symbols)
    # OKX advises fewer than 30 books channels per connection.
    assert [len(c.symbols) for c in plan] == [30, 30, 10]
    assert orjson.loads(plan[0].subscribe[0])["args"][0] == {"channel": "books",
                                                              "instId": "C0-USDT"}
    plan = OkxFeed(OkxConfig(depth=5)).connections(symbols)
    assert [len(c.symbols) for c in plan] == [70]
    assert orjson.loads(plan[0].subscribe[0])["args"][0]["channel"] == "books5"
    assert OkxFeed(OkxConfig(depth=5)) != OkxFeed(OkxConfig(depth=20))


@pytest.mark.parametrize("depth", [0, 401, -1])
def test_the_depth_is_bounded(depth: int) -> None:
    schema = {**CORE_SECTIONS, **okx_plugin.register_config_sections()}
    document = tomlkit.parse(f"[exchanges.okx]\ndepth = {depth}\n")
    with pytest.raises(ConfigError, match="depth"):
        structure_document(document, schema, file="arbot.toml")


# --- against the fake server -----------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOkx]:
    async with open_fake_okx() as server:
        server.set_book("BTC-USDT", bids=[("100.0", "1"), ("99.5", "2"), ("99.0", "3")],
                        asks=[("100.5", "1.5"), ("101.0", "2.5")])
        server.set_book("ETH-USDT", bids=[("2050.1", "3.5")], asks=[("2050.2", "1.25")])
        yield server


def make_feed(fake: FakeOkx, depth: int = 20, **settings: object) -> OkxFeed:
    config = OkxConfig(enabled=True, ws_url=fake.ws_url, depth=depth,
                       **settings)  # type: ignore[arg-type]
    return OkxFeed(config, backoff=FAST)


def last_quote(sink: RecordingSink, symbol: str) -> Quote:
    return [q for q in sink.quotes if q.symbol == symbol][-1]


async def test_books_reach_the_sink_and_follow_the_fakes_book(fake: FakeOkx) -> None:
    feed = make_feed(fake, depth=6)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        assert fake.subscribe_requests == [{"op": "subscribe", "args": [
            {"channel": "books", "instId": "BTC-USDT"},
            {"channel": "books", "instId": "ETH-USDT"}]}]
        btc = last_quote(sink, "BTCUSDT")
        assert btc.bids == ((100.0, 1.0), (99.5, 2.0), (99.0, 3.0))
        assert btc.asks == ((100.5, 1.5), (101.0, 2.5))
        # The fake's book changes: the feed follows through updates (checksums pass).
        fake.set_book("BTC-USDT", bids=[("100.2", "4"), ("99.5", "2")], asks=[("101.0", "1")])
        await wait_for(lambda: last_quote(sink, "BTCUSDT").bids[0] == (100.2, 4.0))
        assert last_quote(sink, "BTCUSDT").asks == ((101.0, 1.0),)
        assert feed.book_resyncs == 0 and feed.skipped_messages == 0
        assert feed.feed_status().connected and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("fault", "reason"), [
    ("checksum", "does not match the book's"),
    ("gap", "is not the last seqId"),
    ("crossed", "crossed book"),
])
async def test_a_broken_book_is_forgotten_and_resubscribed_alone(
    fake: FakeOkx, fault: str, reason: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        fake.fault_next_push("BTC-USDT", fault)
        await wait_for(lambda: sink.forgotten == [("okx", "BTCUSDT")])
        await wait_for(lambda: len(fake.subscribe_requests) == 2)
        assert fake.unsubscribe_requests == [{"op": "unsubscribe", "args": [
            {"channel": "books", "instId": "BTC-USDT"}]}]
        assert fake.subscribe_requests[1] == {"op": "subscribe", "args": [
            {"channel": "books", "instId": "BTC-USDT"}]}
        # Quotes of the fresh snapshot follow; nothing of the broken book was delivered.
        count = len(sink.quotes)
        await wait_for(lambda: len([q for q in sink.quotes[count:] if q.symbol == "BTCUSDT"]) > 3)
        assert all(q.bid < q.ask for q in sink.quotes)
        # One connection throughout, never unusable: ETHUSDT went on.
        assert feed.book_resyncs == 1 and feed.resyncs == 0
        assert len(fake.connections) == 1 and sink.usable_flips() == [True]
        assert "resubscribing BTCUSDT: " in caplog.text and reason in caplog.text
        nursery.cancel_scope.cancel()


async def test_garbage_is_skipped_and_counted_on_the_books_channel(fake: FakeOkx) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(b"\x00garbage{")
        fake.inject('{"arg":{"channel":"books","instId":"NOPE-USDT"},"action":"update"}')
        await wait_for(lambda: feed.skipped_messages == 2)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert feed.book_resyncs == 0 and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()


async def test_without_checksums_the_seq_ids_guard_the_book(fake: FakeOkx) -> None:
    fake.checksums = False
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.fault_next_push("BTC-USDT", "gap")
        await wait_for(lambda: feed.book_resyncs == 1)
        await wait_for(lambda: len(fake.subscribe_requests) == 2)
        nursery.cancel_scope.cancel()


async def test_books5_and_a_crossed_snapshot(fake: FakeOkx) -> None:
    feed = make_feed(fake, depth=5)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        assert fake.subscribe_requests[0]["args"] == [{"channel": "books5",
                                                       "instId": "BTC-USDT"}]
        assert last_quote(sink, "BTCUSDT").bids == ((100.0, 1.0), (99.5, 2.0), (99.0, 3.0))
        fake.fault_next_push("BTC-USDT", "crossed")
        await wait_for(lambda: sink.forgotten == [("okx", "BTCUSDT")])
        await wait_for(lambda: len(fake.subscribe_requests) == 2)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert all(q.bid < q.ask for q in sink.quotes) and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()
