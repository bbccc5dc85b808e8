"""The Binance best bid/ask feed (``depth = 1``): parsing real bookTicker messages, and the
feed against a fake combined-stream server on loopback with injected faults. Order books
(``depth`` > 1) are in test_binance_depth.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import tomlkit
import trio
from fake_binance import RECORDED, FakeBinance, open_fake_binance, recorded_book_tickers
from feedtools import FAST, RecordingSink, wait_for

import arbotd_binance.plugin as binance_plugin
from arbotd import ConfigError, Quote
from arbotd._config import CORE_SECTIONS, structure_document
from arbotd_binance import Backoff, BinanceConfig, BinanceFeed, parse_book_ticker
from arbotd_binance.symbols import book_ticker_stream, chunk_streams, combined_stream_url


def make_feed(fake: FakeBinance, **settings: object) -> BinanceFeed:
    config = BinanceConfig(enabled=True, ws_url=fake.url, depth=1,
                           **settings)  # type: ignore[arg-type]
    return BinanceFeed(config, backoff=FAST)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with open_fake_binance() as server:
        yield server


# --- parsing ---------------------------------------------------------------------------


def test_parses_every_recorded_book_ticker() -> None:
    if not RECORDED.exists():
        pytest.skip(f"recorded traffic not found at {RECORDED} (../shared is missing)")
    messages = recorded_book_tickers()
    assert len(messages) > 50
    names = {m["data"]["s"]: m["data"]["s"] for m in messages}
    for message in messages:
        data = message["data"]
        u, quote = parse_book_ticker(orjson.dumps(message), names, 1633998513.5)
        assert u == data["u"]
        assert quote == Quote("binance", data["s"], float(data["b"]), float(data["a"]),
                              float(data["B"]), float(data["A"]), 1633998513.5, 1633998513.5)
        assert quote.bid <= quote.ask
        assert message["stream"] == book_ticker_stream(data["s"])


def test_parses_the_documented_example_into_the_neutral_symbol() -> None:
    raw = ('{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT",'
           '"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}')
    u, quote = parse_book_ticker(raw, {"BNBUSDT": "BNBUSDT"}, 10.0)
    assert u == 400900217
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (
        25.3519, 31.21, 25.3652, 40.66)
    # Spot bookTicker has no event time: the receive time stands in for it.
    assert quote.exchange_ts == quote.received_ts == 10.0


def test_uses_the_event_time_when_an_event_has_one() -> None:
    raw = orjson.dumps({"stream": "btcusdt@bookTicker", "data": {
        "u": 1, "E": 1_700_000_000_000, "s": "BTCUSDT", "b": "1", "B": "2", "a": "3", "A": "4"}})
    _, quote = parse_book_ticker(raw, {"BTCUSDT": "BTCUSDT"}, 1_700_000_000.25)
    assert quote.exchange_ts == 1_700_000_000.0


@pytest.mark.parametrize("raw", [
    b"not json",
    b"[1, 2]",
    b'{"result": null, "id": 1}',
    b'{"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT", "b": "1"}}',
    b'{"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT", "b": "x", '
    b'"B": "1", "a": "2", "A": "1"}}',
    b'{"stream": "ethusdt@bookTicker", "data": {"u": 1, "s": "ETHUSDT", "b": "1", '
    b'"B": "1", "a": "2", "A": "1"}}',
])
def test_rejects_what_is_not_a_book_ticker_of_ours(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        parse_book_ticker(raw, {"BTCUSDT": "BTCUSDT"}, 0.0)


# --- configuration, symbols, plugin ----------------------------------------------------


def test_ws_url_defaults_follow_the_testnet_flag() -> None:
    assert BinanceConfig().resolved_ws_url() == "wss://stream.binance.com:9443"
    assert BinanceConfig(testnet=True).resolved_ws_url() == "wss://stream.testnet.binance.vision"
    assert BinanceConfig(ws_url="ws://127.0.0.1:1/").resolved_ws_url() == "ws://127.0.0.1:1"


def test_the_table_is_read_from_toml_and_checked() -> None:
    schema = {**CORE_SECTIONS, **binance_plugin.register_config_sections()}
    document = tomlkit.parse(
        "[exchanges.binance]\nenabled = true\ntestnet = true\nstale_after_seconds = 5\n")
    sections = structure_document(document, schema, file="arbot.toml")
    assert sections["exchanges.binance"] == BinanceConfig(
        enabled=True, testnet=True, stale_after_seconds=5.0)
    bad = tomlkit.parse('[exchanges.binance]\nws_url = "http://x"\n'
                        "max_streams_per_connection = 2000\n")
    with pytest.raises(ConfigError) as caught:
        structure_document(bad, schema, file="arbot.toml")
    message = str(caught.value)
    assert "ws_url" in message and "max_streams_per_connection" in message


def test_symbols_and_connection_groups() -> None:
    assert book_ticker_stream("BTCUSDT") == "btcusdt@bookTicker"
    assert chunk_streams(["a", "b", "a", "c"], 2) == [["a", "b"], ["c"]]
    assert combined_stream_url("wss://x:9443", ["a@bookTicker", "b@bookTicker"]) == (
        "wss://x:9443/stream?streams=a@bookTicker/b@bookTicker")


def test_feeds_with_equal_settings_are_equal() -> None:
    assert BinanceFeed(BinanceConfig()) == BinanceFeed(BinanceConfig())
    assert BinanceFeed(BinanceConfig()) != BinanceFeed(BinanceConfig(taker_fee=0.00075))
    feed = BinanceFeed(BinanceConfig(taker_fee=0.00075, premium_baseline=0.1))
    assert (feed.name, feed.taker_fee, feed.premium_baseline) == ("binance", 0.00075, 0.1)


def test_backoff_doubles_with_jitter_up_to_the_maximum() -> None:
    backoff = Backoff()
    assert all(0.5 <= backoff.delay(1) < 1.5 for _ in range(50))
    assert all(1.0 <= backoff.delay(2) < 3.0 for _ in range(50))
    assert all(30.0 <= backoff.delay(20) < 90.0 for _ in range(50))


def test_plugin_registers_the_section_and_the_feed_when_enabled() -> None:
    assert binance_plugin.register_config_sections() == {"exchanges.binance": BinanceConfig}
    off = {"exchanges.binance": BinanceConfig()}
    on = {"exchanges.binance": BinanceConfig(enabled=True)}
    assert binance_plugin.register_exchanges(config=off, runtime=None) == []
    [feed] = binance_plugin.register_exchanges(config=on, runtime=None)
    assert isinstance(feed, BinanceFeed)


# --- against the fake server -----------------------------------------------------------


async def test_quotes_reach_the_sink(fake: FakeBinance) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        assert sink.usable_flips() == [True]
        assert fake.requested == [["btcusdt@bookTicker", "ethusdt@bookTicker"]]
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        quote = sink.quotes[-1]
        assert quote.exchange == "binance" and 0 < quote.bid <= quote.ask
        status = feed.feed_status()
        assert status.connected and status.last_update is not None
        assert status.latency_ms is None  # spot bookTicker has no event time
        nursery.cancel_scope.cancel()
    assert not feed.feed_status().connected


async def test_a_dropped_connection_marks_the_feed_unusable_then_resumes(
    fake: FakeBinance,
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
        assert len(fake.connections) == 2
        nursery.cancel_scope.cancel()


async def test_a_stall_marks_the_feed_stale_and_reconnects(fake: FakeBinance) -> None:
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
        assert len(fake.connections) >= 2
        nursery.cancel_scope.cancel()


async def test_a_reconnected_socket_counts_as_connected_only_once_data_arrives(
    fake: FakeBinance,
) -> None:
    feed = make_feed(fake, stale_after_seconds=0.3)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        fake.stalled = True  # the socket stays open; only injected messages are sent
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        # Subscribed and told connected, but nothing came yet.
        assert sink.usable_flips() == [True] and not feed.feed_status().connected
        fake.inject(fake.book_ticker("BTCUSDT"))
        await wait_for(lambda: feed.feed_status().connected)
        last_update = feed.feed_status().last_update
        # Silent: stale, reconnected, still silent.
        await wait_for(lambda: sink.usable_flips()[:3] == [True, False, True])
        assert len(fake.open_connections) >= 1
        status = feed.feed_status()
        assert not status.connected and status.last_update == last_update
        # Data again: connected.
        with trio.fail_after(5):
            while not feed.feed_status().connected:
                fake.inject(fake.book_ticker("BTCUSDT"))
                await trio.sleep(0.05)
        assert feed.feed_status().last_update > last_update  # type: ignore[operator]
        nursery.cancel_scope.cancel()


async def test_garbage_is_skipped_and_the_feed_goes_on(fake: FakeBinance) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(b"\x00garbage{")
        fake.inject(b'{"stream": "btcusdt@bookTicker", "data": {"s": "BTCUSDT"}}')
        fake.inject("[]")
        await wait_for(lambda: feed.skipped_messages == 3)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert sink.usable_flips() == [True]
        assert len(fake.connections) == 1
        nursery.cancel_scope.cancel()


async def test_out_of_order_updates_are_dropped(fake: FakeBinance) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        fake.stalled = True
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        high = 9_000_000
        for u, bid in ((high, "1.5"), (high - 1, "2.5"), (high + 1, "3.5"), (high + 1, "4.5")):
            fake.inject(fake.book_ticker("BTCUSDT", u=u, b=bid))
        await wait_for(lambda: len(sink.quotes) == 3)
        assert [q.bid for q in sink.quotes] == [1.5, 3.5, 4.5]
        assert feed.dropped_out_of_order == 1
        nursery.cancel_scope.cancel()


async def test_more_symbols_than_one_connection_takes_use_several(fake: FakeBinance) -> None:
    feed = make_feed(fake, max_streams_per_connection=2)
    sink = RecordingSink()
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"]
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, symbols, sink)
        assert sorted(len(streams) for streams in fake.requested) == [1, 2, 2]
        assert sorted(s for streams in fake.requested for s in streams) == sorted(
            book_ticker_stream(s) for s in symbols)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == set(symbols))
        # One connection dropping makes the whole feed unusable until it is back.
        fake.open_connections[0].scope.cancel()
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        nursery.cancel_scope.cancel()


async def test_a_connection_that_was_healthy_is_reopened_at_once(fake: FakeBinance) -> None:
    config = BinanceConfig(enabled=True, ws_url=fake.url, depth=1)
    feed = BinanceFeed(config, backoff=Backoff(first=30.0, healthy_after=0.1))
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await trio.sleep(0.2)
        fake.drop_connections()  # as at Binance's 24 h mark
        await wait_for(lambda: sink.usable_flips() == [True, False, True], timeout=2.0)
        nursery.cancel_scope.cancel()


async def test_an_unreachable_server_is_retried_without_failing() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    feed = BinanceFeed(BinanceConfig(enabled=True, ws_url=f"ws://127.0.0.1:{port}", depth=1),
                       backoff=FAST)
    sink = RecordingSink()
    with trio.move_on_after(0.5) as scope:
        await feed.stream_quotes(["BTCUSDT"], sink)
    assert scope.cancelled_caught
    assert sink.states == [] and not feed.feed_status().connected
