"""The Bybit market-data feed: parsing Bybit's documented messages, subscription batching,
and the feed against a fake Bybit WebSocket on loopback with injected faults."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

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
from arbotd_bybit.stream import PING
from arbotd_bybit.symbols import chunk_topics, orderbook_topic, subscribe_messages

# exchange-protocols.md 2.1: the orderbook examples of Bybit's orderbook.mdx.
DOC_SNAPSHOT = (
    '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,'
    '"data":{"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],'
    '"a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724},'
    '"cts":1672304484976}'
)
DOC_DELTA = (
    '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,'
    '"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","0"]],'
    '"a":[["30248.70","0"]],"u":177400507,"seq":66544703342},"cts":1687940967464}'
)
DOC_SUBSCRIBE_ACK = ('{"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-'
                     '7b8be29ab52b","req_id":"1","op":"subscribe"}')
DOC_PONG = ('{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a",'
            '"op":"ping"}')
# The level-1 feed of today (orderbook.1).
LEVEL1 = BybitConfig(depth=1)


def make_feed(fake: FakeBybit, heartbeat: float = 20.0, depth: int = 1,
              **settings: object) -> BybitFeed:
    """A feed of the fake; of its orderbook.1 topics unless ``depth`` says otherwise."""
    config = BybitConfig(enabled=True, ws_url=fake.ws_url, depth=depth,
                         **settings)  # type: ignore[arg-type]
    return BybitFeed(config, backoff=FAST, heartbeat_interval=heartbeat)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBybit]:
    async with open_fake_bybit() as server:
        yield server


CONNECTION = Connection("ws://x/v5/public/spot", {"BTCUSDT": "BTCUSDT"})


def parse(feed: BybitFeed, raw: str | bytes, state: dict, received: float = 1.0) -> Quote | None:
    return feed.parse(raw, CONNECTION, state, received)


# --- parsing ---------------------------------------------------------------------------


def test_parses_the_documented_snapshot_then_delta() -> None:
    feed = BybitFeed(BybitConfig(depth=2))
    state: dict = {}
    quote = parse(feed, DOC_SNAPSHOT, state, 1672304485.0)
    assert quote == Quote("bybit", "BTCUSDT", 16493.5, 16611.0, 0.006, 0.029,
                          1672304484.978, 1672304485.0, ((16493.5, 0.006), (16493.0, 0.1)),
                          ((16611.0, 0.029), (16612.0, 0.213)))
    # The documented delta is of another day: its update id does not follow the
    # snapshot's, a gap; the book is forgotten and resubscribed.
    with pytest.raises(ResyncSymbol, match="does not follow 18521288") as caught:
        parse(feed, DOC_DELTA, state, 1687940967.5)
    assert [orjson.loads(m)["op"] for m in caught.value.messages] == ["unsubscribe",
                                                                      "subscribe"]
    assert orjson.loads(caught.value.messages[1])["args"] == ["orderbook.50.BTCUSDT"]
    # Renumbered to follow, its levels (a bid far above the snapshot's asks) cross the
    # book: forgotten and resubscribed too.
    assert parse(feed, DOC_SNAPSHOT, state) is not None
    following = DOC_DELTA.replace('"u":177400507', '"u":18521289')
    with pytest.raises(ResyncSymbol, match="crossed"):
        parse(feed, following, state)
    assert feed.book_resyncs == 2


def test_acknowledgements_and_pongs_carry_no_quote() -> None:
    feed = BybitFeed(BybitConfig())
    assert parse(feed, DOC_SUBSCRIBE_ACK, {}) is None
    assert parse(feed, DOC_PONG, {}) is None
    assert parse(feed, '{"op":"pong","args":["1672916271846"],"conn_id":"x"}', {}) is None


def test_a_refused_subscription_resynchronises() -> None:
    feed = BybitFeed(LEVEL1)
    refused = ('{"success":false,"ret_msg":"error:handler not found,topic:orderbook.1.NOPE",'
               '"conn_id":"x","req_id":"1","op":"subscribe"}')
    with pytest.raises(Resync, match="handler not found"):
        parse(feed, refused, {})
    assert feed.refused_subscriptions == 1


def test_a_delta_before_any_snapshot_resynchronises() -> None:
    feed = BybitFeed(BybitConfig())
    with pytest.raises(Resync, match="before any snapshot"):
        parse(feed, DOC_DELTA, {})


def _level1(u: int, bid: str = "100.5", ask: str = "100.6", kind: str = "snapshot") -> bytes:
    return orjson.dumps({"topic": "orderbook.1.BTCUSDT", "type": kind, "ts": 1_700_000_000_000,
                         "data": {"s": "BTCUSDT", "b": [[bid, "1"]], "a": [[ask, "2"]],
                                  "u": u, "seq": 1}, "cts": 1_700_000_000_000})


def test_update_ids_going_backwards_resynchronise() -> None:
    feed = BybitFeed(LEVEL1)
    state: dict = {}
    assert parse(feed, _level1(500), state) is not None
    # Level 1 re-sends an unchanged book with the same u after 3 s: that is fine.
    assert parse(feed, _level1(500), state) is not None
    assert parse(feed, _level1(501, bid="100.4"), state).bid == 100.4
    with pytest.raises(Resync, match="backwards"):
        parse(feed, _level1(499), state)
    delta_state: dict = {}
    parse(feed, _level1(10), delta_state)
    with pytest.raises(Resync, match="not after"):
        parse(feed, _level1(10, kind="delta"), delta_state)


def test_u_of_1_is_a_service_restart_and_overwrites_the_book() -> None:
    feed = BybitFeed(LEVEL1)
    state: dict = {}
    parse(feed, _level1(90_000), state)
    quote = parse(feed, _level1(1, bid="99.0", ask="99.1"), state)
    assert quote is not None and (quote.bid, quote.ask) == (99.0, 99.1)
    assert feed.service_restarts == 1
    assert parse(feed, _level1(2), state) is not None


def test_an_empty_side_gives_no_quote() -> None:
    feed = BybitFeed(LEVEL1)
    raw = orjson.dumps({"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "ts": 1,
                        "data": {"s": "BTCUSDT", "b": [], "a": [["1", "2"]], "u": 5}})
    assert parse(feed, raw, {}) is None


@pytest.mark.parametrize("raw", [
    b"not json",
    b"[1, 2]",
    b'{"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "data": {"s": "BTCUSDT"}}',
    b'{"topic": "orderbook.1.ETHUSDT", "type": "snapshot", "ts": 1, "data": {"s": "ETHUSDT",'
    b' "b": [["1", "1"]], "a": [["2", "1"]], "u": 1}}',
    b'{"topic": "orderbook.1.BTCUSDT", "type": "weird", "ts": 1, "data": {"s": "BTCUSDT",'
    b' "b": [["1", "1"]], "a": [["2", "1"]], "u": 1}}',
    b'{"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "ts": 1, "data": {"s": "BTCUSDT",'
    b' "b": [["x", "1"]], "a": [["2", "1"]], "u": 1}}',
    b'{"hello": "world"}',
])
def test_rejects_what_is_not_a_message_of_ours(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError, IndexError)):
        parse(BybitFeed(LEVEL1), raw, {})


# --- configuration, symbols, plugin ----------------------------------------------------


def test_urls_follow_the_testnet_flag() -> None:
    assert BybitConfig().resolved_ws_url() == "wss://stream.bybit.com"
    assert BybitConfig(testnet=True).resolved_ws_url() == "wss://stream-testnet.bybit.com"
    assert BybitConfig().resolved_rest_url() == "https://api.bybit.com"
    assert BybitConfig(testnet=True).resolved_rest_url() == "https://api-testnet.bybit.com"
    assert BybitConfig(ws_url="ws://127.0.0.1:1/").resolved_ws_url() == "ws://127.0.0.1:1"
    assert BybitConfig(rest_url="http://h:2/").resolved_rest_url() == "http://h:2"


def test_the_table_is_read_from_toml_and_checked() -> None:
    schema = {**CORE_SECTIONS, **bybit_plugin.register_config_sections()}
    document = tomlkit.parse("[exchanges.bybit]\nenabled = true\ntestnet = true\n"
                             "recv_window_ms = 10000\n")
    sections = structure_document(document, schema, file="arbot.toml")
    assert sections["exchanges.bybit"] == BybitConfig(
        enabled=True, testnet=True, recv_window_ms=10000)
    bad = tomlkit.parse('[exchanges.bybit]\nws_url = "http://x"\nrest_url = "ftp://y"\n'
                        "max_topics_per_connection = 501\nrequest_budget_fraction = 1.5\n")
    with pytest.raises(ConfigError) as caught:
        structure_document(bad, schema, file="arbot.toml")
    message = str(caught.value)
    for key in ("ws_url", "rest_url", "max_topics_per_connection", "request_budget_fraction"):
        assert key in message


def test_topics_are_batched_ten_per_request_within_each_connection() -> None:
    assert orderbook_topic("btcusdt") == "orderbook.1.BTCUSDT"
    topics = [f"orderbook.1.S{i}USDT" for i in range(25)]
    groups = chunk_topics(topics + topics[:3], 12)
    assert [len(g) for g in groups] == [12, 12, 1]
    messages = [orjson.loads(m) for m in subscribe_messages(groups[0])]
    assert [len(m["args"]) for m in messages] == [10, 2]
    assert [m["req_id"] for m in messages] == ["1", "2"]
    assert all(m["op"] == "subscribe" for m in messages)
    # Long topics also respect the 21,000-character cap of one connection's args.
    long = [f"orderbook.1.{'X' * 990}{i:04d}" for i in range(50)]
    assert all(sum(map(len, g)) <= 21_000 for g in chunk_topics(long, 500))


def test_feeds_with_equal_settings_are_equal() -> None:
    assert BybitFeed(BybitConfig()) == BybitFeed(BybitConfig())
    assert BybitFeed(BybitConfig()) != BybitFeed(BybitConfig(taker_fee=0.0006))
    feed = BybitFeed(BybitConfig(taker_fee=0.0006, premium_baseline=0.1))
    assert (feed.name, feed.taker_fee, feed.premium_baseline) == ("bybit", 0.0006, 0.1)
    assert feed.heartbeat() == PING == '{"op":"ping"}'


def test_plugin_registers_the_section_and_the_feed_when_enabled() -> None:
    assert bybit_plugin.register_config_sections() == {"exchanges.bybit": BybitConfig}
    off = {"exchanges.bybit": BybitConfig()}
    on = {"exchanges.bybit": BybitConfig(enabled=True)}
    assert bybit_plugin.register_exchanges(config=off, runtime=None) == []
    [feed] = bybit_plugin.register_exchanges(config=on, runtime=None)
    assert isinstance(feed, BybitFeed)


# --- against the fake server -----------------------------------------------------------


async def test_quotes_reach_the_sink_with_latency(fake: FakeBybit) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        assert sink.usable_flips() == [True]
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        assert fake.subscribe_requests == [["orderbook.1.BTCUSDT", "orderbook.1.ETHUSDT"]]
        quote = [q for q in sink.quotes if q.symbol == "BTCUSDT"][-1]
        assert (quote.exchange, quote.bid, quote.ask) == ("bybit", 16493.5, 16611.0)
        status = feed.feed_status()
        assert status.connected and status.last_update is not None
        assert status.latency_ms is not None  # Bybit's ts is the event time
        nursery.cancel_scope.cancel()
    assert not feed.feed_status().connected


async def test_many_symbols_use_several_requests_and_connections(fake: FakeBybit) -> None:
    symbols = [f"C{i}USDT" for i in range(23)]
    for symbol in symbols:
        fake.set_book(symbol, [("1.00", "5")], [("1.01", "5")])
    feed = make_feed(fake, max_topics_per_connection=12)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, symbols, sink)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == set(symbols))
        assert len(fake.connections) == 2
        assert sorted(len(args) for args in fake.subscribe_requests) == [1, 2, 10, 10]
        assert sorted(a for args in fake.subscribe_requests for a in args) == sorted(
            orderbook_topic(s) for s in symbols)
        assert feed.refused_subscriptions == 0
        nursery.cancel_scope.cancel()


async def test_the_heartbeat_is_sent(fake: FakeBybit) -> None:
    feed = make_feed(fake, heartbeat=0.05)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: fake.pings >= 3)
        # The pongs are answers, not garbage.
        assert feed.skipped_messages == 0 and sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()


async def test_a_dropped_connection_marks_the_feed_unusable_then_resumes(
    fake: FakeBybit,
) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.drop_connections()
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        assert "closed" in sink.states[1][2]
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert len(fake.connections) == 2 and len(fake.subscribe_requests) == 2
        nursery.cancel_scope.cancel()


async def test_a_stall_marks_the_feed_stale_and_reconnects(fake: FakeBybit) -> None:
    feed = make_feed(fake, stale_after_seconds=0.3)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.stalled = True
        await wait_for(lambda: sink.usable_flips() == [True, False])
        assert "stale" in sink.states[1][2]
        assert not feed.feed_status().connected
        fake.stalled = False
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        nursery.cancel_scope.cancel()


async def test_garbage_is_skipped_and_the_feed_goes_on(fake: FakeBybit) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(b"\x00garbage{")
        fake.inject('{"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "data": {}}')
        fake.inject("[]")
        await wait_for(lambda: feed.skipped_messages == 3)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert sink.usable_flips() == [True] and len(fake.connections) == 1
        nursery.cancel_scope.cancel()


async def test_u_going_backwards_reconnects_and_no_quote_of_it_is_used(
    fake: FakeBybit,
) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(fake.orderbook_message("BTCUSDT", u=7, bids=[["1.0", "9"]]))
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        assert "went backwards" in sink.states[1][2]
        assert feed.resyncs == 1 and len(fake.connections) == 2
        assert all(q.bid != 1.0 for q in sink.quotes)
        nursery.cancel_scope.cancel()


async def test_a_restart_snapshot_is_taken_without_reconnecting(fake: FakeBybit) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(fake.orderbook_message("BTCUSDT", u=1, bids=[["16000.5", "2"]]))
        await wait_for(lambda: any(q.bid == 16000.5 for q in sink.quotes))
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert feed.service_restarts == 1 and feed.resyncs == 0
        assert sink.usable_flips() == [True]
        nursery.cancel_scope.cancel()


async def test_a_delta_before_the_snapshot_reconnects(fake: FakeBybit) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    fake.stalled = True
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        fake.inject(fake.orderbook_message("BTCUSDT", kind="delta"))
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        assert "before any snapshot" in sink.states[1][2]
        assert sink.quotes == []
        fake.stalled = False
        await wait_for(lambda: len(sink.quotes) > 3)
        nursery.cancel_scope.cancel()


async def test_a_refused_subscription_is_logged_and_keeps_the_feed_unusable(
    fake: FakeBybit, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    feed = make_feed(fake)
    sink = RecordingSink()
    with trio.move_on_after(0.6):
        await feed.stream_quotes(["BTCUSDT", "NOPEUSDT"], sink)
    assert feed.refused_subscriptions >= 2  # refused, reconnected, refused again
    assert len(fake.connections) >= 2
    assert "handler not found" in caplog.text
    # Each refusal ends the connection, and with it the feed's usability.
    assert sink.usable_flips().count(False) >= 2


async def test_an_unreachable_server_is_retried_without_failing() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    feed = BybitFeed(BybitConfig(enabled=True, ws_url=f"ws://127.0.0.1:{port}"), backoff=FAST)
    sink = RecordingSink()
    with trio.move_on_after(0.5) as scope:
        await feed.stream_quotes(["BTCUSDT"], sink)
    assert scope.cancelled_caught
    assert sink.states == [] and not feed.feed_status().connected
