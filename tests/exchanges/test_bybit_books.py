"""Bybit order books of several levels (``orderbook.50``): hand-made messages in the
documented format (a snapshot, deltas, a gap, the ``u = 1`` reset, a crossed book), and
the feed against the fake Bybit pushing its own books with faults, resubscribing the
symbol whose book broke."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import tomlkit
import trio
from fake_bybit import FakeBybit, open_fake_bybit
from feedtools import FAST, RecordingSink, wait_for

import arbotd_bybit.plugin as bybit_plugin
from arbotd import ConfigError, Quote
from arbotd._config import CORE_SECTIONS, structure_document
from arbotd.exchange import Connection, Resync, ResyncSymbol
from arbotd_bybit import BybitConfig, BybitFeed

CONNECTION = Connection("ws://x/v5/public/spot", {"BTCUSDT": "BTCUSDT", "ETHUSDT": "ETHUSDT"})


def message(kind: str, u: int, bids: list[list[str]], asks: list[list[str]],
            symbol: str = "BTCUSDT") -> bytes:
    """An orderbook.50 message in the documented shape (exchange-protocols.md 2.1)."""
    return orjson.dumps({"topic": f"orderbook.50.{symbol}", "type": kind, "ts": 1672304484978,
                         "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": 7961638724},
                         "cts": 1672304484976})


SNAPSHOT = message("snapshot", 100, [["16493.50", "0.006"], ["16493.00", "0.100"]],
                   [["16611.00", "0.029"], ["16612.00", "0.213"]])


def book_feed(depth: int = 20, **settings: Any) -> BybitFeed:
    return BybitFeed(BybitConfig(depth=depth, **settings))


def test_a_snapshot_then_deltas_build_the_book() -> None:
    feed = book_feed(depth=2)
    state: dict[str, Any] = {}
    quote = feed.parse(SNAPSHOT, CONNECTION, state, 1672304485.0)
    assert quote == Quote("bybit", "BTCUSDT", 16493.5, 16611.0, 0.006, 0.029, 1672304484.978,
                          1672304485.0, ((16493.5, 0.006), (16493.0, 0.1)),
                          ((16611.0, 0.029), (16612.0, 0.213)))
    # A new best bid, a level deleted, an ask's size changed.
    quote = feed.parse(message("delta", 101, [["16495.00", "1.5"], ["16493.50", "0"]],
                               [["16612.00", "0.5"]]), CONNECTION, state, 1.0)
    assert quote is not None
    assert quote.bids == ((16495.0, 1.5), (16493.0, 0.1))
    assert quote.asks == ((16611.0, 0.029), (16612.0, 0.5))
    # Deleting the best ask uncovers the next; only ``depth`` levels are delivered.
    quote = feed.parse(message("delta", 102, [], [["16611.00", "0"], ["16620.00", "2"],
                                                  ["16630.00", "3"]]), CONNECTION, state, 1.0)
    assert quote is not None and quote.asks == ((16612.0, 0.5), (16620.0, 2.0))
    assert feed.book_resyncs == 0


def test_a_gap_in_update_ids_resubscribes_and_drops_what_is_in_flight() -> None:
    feed = book_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, CONNECTION, state, 1.0)
    feed.parse(message("delta", 101, [], []), CONNECTION, state, 1.0)
    with pytest.raises(ResyncSymbol, match="delta update id 103 does not follow 101") as caught:
        feed.parse(message("delta", 103, [], []), CONNECTION, state, 1.0)
    assert caught.value.symbol == "BTCUSDT"
    assert [orjson.loads(m) for m in caught.value.messages] == [
        {"req_id": "resync-1", "op": "unsubscribe", "args": ["orderbook.50.BTCUSDT"]},
        {"req_id": "resync-2", "op": "subscribe", "args": ["orderbook.50.BTCUSDT"]}]
    assert not state["BTCUSDT"].valid
    # Deltas already on their way are dropped, not taken for another gap.
    assert feed.parse(message("delta", 104, [], []), CONNECTION, state, 1.0) is None
    assert feed.dropped_while_resyncing == 1
    # The other symbols of the connection go on.
    eth = message("snapshot", 5, [["1600.1", "3"]], [["1600.2", "3"]], symbol="ETHUSDT")
    assert feed.parse(eth, CONNECTION, state, 1.0) is not None
    # The fresh snapshot after the resubscription.
    quote = feed.parse(message("snapshot", 200, [["16500", "1"]], [["16510", "1"]]),
                       CONNECTION, state, 1.0)
    assert quote is not None and quote.bid == 16500.0
    assert feed.parse(message("delta", 201, [], []), CONNECTION, state, 1.0) is not None
    assert feed.book_resyncs == 1


@pytest.mark.parametrize("u", [100, 99, 1])
def test_a_delta_that_repeats_or_goes_back_is_a_gap(u: int) -> None:
    feed = book_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, CONNECTION, state, 1.0)
    with pytest.raises(ResyncSymbol, match="does not follow"):
        feed.parse(message("delta", u, [], []), CONNECTION, state, 1.0)


def test_u_of_1_is_a_service_restart_whose_snapshot_replaces_the_book() -> None:
    feed = book_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, CONNECTION, state, 1.0)
    feed.parse(message("delta", 101, [["16400", "9"]], []), CONNECTION, state, 1.0)
    quote = feed.parse(message("snapshot", 1, [["16000", "1"]], [["16001", "2"]]),
                       CONNECTION, state, 1.0)
    assert quote is not None and (quote.bids, quote.asks) == (((16000.0, 1.0),),
                                                              ((16001.0, 2.0),))
    assert feed.service_restarts == 1 and feed.book_resyncs == 0
    assert feed.parse(message("delta", 2, [], [["16001", "0"], ["16002", "1"]]), CONNECTION,
                      state, 1.0).ask == 16002.0  # type: ignore[union-attr]


def test_any_new_snapshot_replaces_the_book() -> None:
    feed = book_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, CONNECTION, state, 1.0)
    quote = feed.parse(message("snapshot", 90, [["1", "1"]], [["2", "1"]]), CONNECTION, state,
                       1.0)
    assert quote is not None and (quote.bids, quote.asks) == (((1.0, 1.0),), ((2.0, 1.0),))
    assert feed.parse(message("delta", 91, [], []), CONNECTION, state, 1.0) is not None


def test_a_crossed_book_resubscribes() -> None:
    feed = book_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, CONNECTION, state, 1.0)
    with pytest.raises(ResyncSymbol, match="crossed book"):
        feed.parse(message("delta", 101, [["16611.00", "1"]], []), CONNECTION, state, 1.0)
    assert not state["BTCUSDT"].valid


def test_a_delta_before_any_snapshot_resubscribes() -> None:
    with pytest.raises(ResyncSymbol, match="before any snapshot"):
        book_feed().parse(message("delta", 5, [], []), CONNECTION, {}, 1.0)


def test_garbled_levels_resubscribe_and_count_as_skipped() -> None:
    feed = book_feed()
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, CONNECTION, state, 1.0)
    with pytest.raises(ResyncSymbol, match="not understood"):
        feed.parse(message("delta", 101, [["16400", "1"], ["x", "1"]], []), CONNECTION, state,
                   1.0)
    assert feed.skipped_messages == 1 and not state["BTCUSDT"].valid


@pytest.mark.parametrize("raw", [
    b"not json",
    b"[]",
    b'{"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "ts": 1, "data": {"s": "BTCUSDT",'
    b' "b": [["1", "1"]], "a": [["2", "1"]], "u": 1}}',
    b'{"topic": "orderbook.50.SOLUSDT", "type": "snapshot", "ts": 1, "data": {"s": "SOLUSDT",'
    b' "b": [["1", "1"]], "a": [["2", "1"]], "u": 1}}',
    b'{"topic": "orderbook.50.BTCUSDT", "type": "weird", "ts": 1, "data": {"s": "BTCUSDT",'
    b' "b": [], "a": [], "u": 1}}',
    b'{"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1, "data": {"s": "BTCUSDT"}}',
])
def test_what_names_no_book_of_ours_is_garbage(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError, IndexError)):
        book_feed().parse(raw, CONNECTION, {}, 1.0)


def test_a_resubscription_whose_snapshot_never_comes_reconnects() -> None:
    feed = book_feed(stale_after_seconds=4)
    state: dict[str, Any] = {}
    feed.parse(SNAPSHOT, CONNECTION, state, 50.0)
    with pytest.raises(ResyncSymbol):
        feed.parse(message("delta", 102, [], []), CONNECTION, state, 50.0)
    pong = '{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}'
    assert feed.parse(pong, CONNECTION, state, 53.0) is None
    with pytest.raises(Resync, match="no fresh snapshot of BTCUSDT within 4 s"):
        feed.parse(pong, CONNECTION, state, 54.0)


def test_the_depth_picks_the_topic_and_is_bounded() -> None:
    assert BybitConfig().depth == 20
    [deep] = BybitFeed(BybitConfig()).connections(["BTCUSDT"])
    assert orjson.loads(deep.subscribe[0])["args"] == ["orderbook.50.BTCUSDT"]
    [level1] = BybitFeed(BybitConfig(depth=1)).connections(["BTCUSDT"])
    assert orjson.loads(level1.subscribe[0])["args"] == ["orderbook.1.BTCUSDT"]
    # The pings come often enough that a quiet book (orderbook.50 is then silent) does not
    # look stale.
    assert BybitFeed(BybitConfig()).heartbeat_interval == 5.0
    assert BybitFeed(BybitConfig(stale_after_seconds=600)).heartbeat_interval == 20.0
    schema = {**CORE_SECTIONS, **bybit_plugin.register_config_sections()}
    for depth in (0, 51):
        document = tomlkit.parse(f"[exchanges.bybit]\ndepth = {depth}\n")
        with pytest.raises(ConfigError, match="depth"):
            structure_document(document, schema, file="arbot.toml")


# --- against the fake server -----------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeBybit]:
    async with open_fake_bybit() as server:
        server.set_book("BTCUSDT", [("16493.5", "0.5"), ("16493.0", "1"), ("16490.0", "2")],
                        [("16611.0", "0.5"), ("16612.0", "1.5")])
        yield server


def make_feed(fake: FakeBybit, depth: int = 20, **settings: object) -> BybitFeed:
    config = BybitConfig(enabled=True, ws_url=fake.ws_url, depth=depth,
                         **settings)  # type: ignore[arg-type]
    return BybitFeed(config, backoff=FAST, heartbeat_interval=20.0)


def last_quote(sink: RecordingSink, symbol: str) -> Quote:
    return [q for q in sink.quotes if q.symbol == symbol][-1]


async def test_books_reach_the_sink_and_follow_the_fakes_book(fake: FakeBybit) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        assert fake.subscribe_requests == [["orderbook.50.BTCUSDT", "orderbook.50.ETHUSDT"]]
        btc = last_quote(sink, "BTCUSDT")
        assert btc.bids == ((16493.5, 0.5), (16493.0, 1.0), (16490.0, 2.0))
        assert btc.asks == ((16611.0, 0.5), (16612.0, 1.5))
        fake.set_book("BTCUSDT", [("16500.0", "3"), ("16490.0", "2")], [("16612.0", "1")])
        await wait_for(lambda: last_quote(sink, "BTCUSDT").bids[0] == (16500.0, 3.0))
        assert last_quote(sink, "BTCUSDT").bids == ((16500.0, 3.0), (16490.0, 2.0))
        assert last_quote(sink, "BTCUSDT").asks == ((16612.0, 1.0),)
        assert feed.book_resyncs == 0 and feed.skipped_messages == 0
        assert feed.feed_status().connected and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("fault", "reason"), [
    ("gap", "does not follow"),
    ("crossed", "crossed book"),
])
async def test_a_broken_book_is_forgotten_and_resubscribed_alone(
    fake: FakeBybit, fault: str, reason: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        fake.fault_next_push("BTCUSDT", fault)
        await wait_for(lambda: sink.forgotten == [("bybit", "BTCUSDT")])
        await wait_for(lambda: len(fake.subscribe_requests) == 2)
        assert fake.unsubscribe_requests == [["orderbook.50.BTCUSDT"]]
        assert fake.subscribe_requests[1] == ["orderbook.50.BTCUSDT"]
        count = len(sink.quotes)
        await wait_for(lambda: len([q for q in sink.quotes[count:] if q.symbol == "BTCUSDT"]) > 3)
        assert all(q.bid < q.ask for q in sink.quotes)
        assert feed.book_resyncs == 1 and feed.resyncs == 0
        assert len(fake.connections) == 1 and sink.usable_flips() == [True]
        assert "resubscribing BTCUSDT: " in caplog.text and reason in caplog.text
        nursery.cancel_scope.cancel()


async def test_a_service_restart_snapshot_is_taken_without_resubscribing(
    fake: FakeBybit,
) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.fault_next_push("BTCUSDT", "restart")
        await wait_for(lambda: feed.service_restarts == 1)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert feed.book_resyncs == 0 and sink.forgotten == []
        assert len(fake.subscribe_requests) == 1 and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()


async def test_garbage_is_skipped_and_counted(fake: FakeBybit) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(b"\x00garbage{")
        fake.inject('{"topic": "orderbook.50.BTCUSDT", "type": "delta", "data": {}}')
        fake.inject("[]")
        await wait_for(lambda: feed.skipped_messages == 3)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert feed.book_resyncs == 0 and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()
