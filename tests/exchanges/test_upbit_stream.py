"""The Upbit market-data feed: parsing documented messages, the feed against a fake Upbit
WebSocket on loopback (binary frames, keepalive, faults), and its KRW prices converted by
the engine at the fake's own KRW-USDT book."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import trio
from fake_upbit import DOC_ORDERBOOK, FakeUpbit, open_fake_upbit
from feedtools import FAST, RecordingSink, wait_for

import arbotd_upbit.plugin as upbit_plugin
from arbotd import Bus, Engine, Ledger, Quote
from arbotd.exchange import Resync
from arbotd.fx import venue_conversions
from arbotd_upbit import UpbitConfig, UpbitFeed, parse_orderbook, to_upbit


def make_feed(fake: FakeUpbit, **settings: object) -> UpbitFeed:
    config = UpbitConfig(enabled=True, ws_url=fake.ws_url, **settings)  # type: ignore[arg-type]
    return UpbitFeed(config, backoff=FAST)


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpbit]:
    async with open_fake_upbit() as server:
        yield server


def of(sink: RecordingSink, symbol: str) -> list[Quote]:
    return [q for q in sink.quotes if q.symbol == symbol]


# --- parsing ---------------------------------------------------------------------------------


def test_parses_the_documented_orderbook_push_in_krw() -> None:
    quote = parse_orderbook(DOC_ORDERBOOK.encode(), {"KRW-ETH": "ETHUSDT"}, 1746601574.0)
    assert quote == Quote("upbit", "ETHUSDT", 137001000.0, 137002000.0, 0.03656812,
                          0.10623869, 1746601573.804, 1746601574.0)


def test_depth_keeps_the_levels_of_the_snapshot() -> None:
    raw = orjson.dumps({"type": "orderbook", "code": "KRW-BTC", "timestamp": 1,
                        "orderbook_units": [
                            {"ask_price": 11, "bid_price": 10, "ask_size": 1, "bid_size": 2},
                            {"ask_price": 12, "bid_price": 9, "ask_size": 3, "bid_size": 4}]})
    quote = parse_orderbook(raw, {"KRW-BTC": "BTCUSDT"}, 2.0, depth=5)
    assert quote is not None
    assert quote.bids == ((10.0, 2.0), (9.0, 4.0)) and quote.asks == ((11.0, 1.0), (12.0, 3.0))


def test_status_error_and_garbage_messages() -> None:
    assert parse_orderbook(b'{"status":"UP"}', {}, 0.0) is None
    with pytest.raises(Resync, match="INVALID_PARAM"):
        parse_orderbook(b'{"error":{"name":"INVALID_PARAM","message":"codes"}}', {}, 0.0)
    with pytest.raises(ValueError):
        parse_orderbook(b"\x00garbage", {}, 0.0)
    with pytest.raises(KeyError):
        parse_orderbook(DOC_ORDERBOOK, {}, 0.0)  # a market it did not subscribe


def test_symbols_map_to_krw_markets_and_the_rate_market() -> None:
    assert to_upbit("BTCUSDT") == "KRW-BTC"
    assert to_upbit("USDTKRW") == "KRW-USDT"
    with pytest.raises(ValueError, match="quoted in USDT"):
        to_upbit("BTCUSDC")


def test_the_adapter_declares_its_currency_and_rate_market() -> None:
    feed = UpbitFeed(UpbitConfig(enabled=True, premium_mode="rolling",
                                 premium_window_seconds=600))
    [(venue, conversion)] = venue_conversions([feed]).items()
    assert venue == "upbit"
    assert (conversion.currency, conversion.rate_symbol) == ("KRW", "USDTKRW")
    assert (feed.taker_fee, feed.premium_mode, feed.premium_window_seconds) == (
        0.0005, "rolling", 600)


def test_the_plugin_registers_feed_and_account_only_when_enabled() -> None:
    class Runtime:
        plugin_state: dict = {}
    off = {"exchanges.upbit": UpbitConfig()}
    on = {"exchanges.upbit": UpbitConfig(enabled=True)}
    assert upbit_plugin.register_exchanges(off, Runtime()) == []  # type: ignore[arg-type]
    [feed] = upbit_plugin.register_exchanges(on, Runtime())  # type: ignore[arg-type]
    assert isinstance(feed, UpbitFeed)
    [account] = upbit_plugin.register_accounts(on, Runtime())  # type: ignore[arg-type]
    assert account is upbit_plugin.register_accounts(on, Runtime())[0]  # type: ignore[arg-type]


# --- the feed against the fake --------------------------------------------------------------


async def test_streams_krw_books_and_the_rate_market_from_binary_frames(
    fake: FakeUpbit, nursery: trio.Nursery
) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
    await wait_for(lambda: of(sink, "BTCUSDT") and of(sink, "USDTKRW"))
    [request] = fake.subscriptions
    assert request[1] == {"type": "orderbook", "codes": ["KRW-USDT.1", "KRW-BTC.1"]}
    btc = of(sink, "BTCUSDT")[-1]
    assert (btc.bid, btc.ask) == (137001000.0, 137002000.0)  # native KRW, not converted
    assert btc.bids is None
    rate = of(sink, "USDTKRW")[-1]
    assert (rate.bid, rate.ask) == (1375.0, 1376.0)
    assert feed.feed_status().connected


async def test_text_frames_are_read_too(fake: FakeUpbit, nursery: trio.Nursery) -> None:
    fake.text_frames = True
    sink = RecordingSink()
    await nursery.start(make_feed(fake).stream_quotes, ["BTCUSDT"], sink)
    await wait_for(lambda: len(of(sink, "BTCUSDT")) >= 2)


async def test_depth_subscribes_the_level_count_that_carries_it(
    fake: FakeUpbit, nursery: trio.Nursery
) -> None:
    sink = RecordingSink()
    await nursery.start(make_feed(fake, depth=3).stream_quotes, ["BTCUSDT"], sink)
    await wait_for(lambda: of(sink, "BTCUSDT"))
    assert fake.subscriptions[0][1]["codes"] == ["KRW-USDT.1", "KRW-BTC.5"]
    quote = of(sink, "BTCUSDT")[-1]
    assert quote.bids == ((137001000.0, 0.5), (137000000.0, 1.0))
    assert quote.asks == ((137002000.0, 0.5), (137010000.0, 1.0))


async def test_pings_are_answered_so_a_quiet_connection_stays_up(
    fake: FakeUpbit, nursery: trio.Nursery
) -> None:
    feed = make_feed(fake, stale_after_seconds=0.3)
    sink = RecordingSink()
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
    fake.quiet = True
    await wait_for(lambda: fake.pings >= 5)
    assert feed.reconnects == 0 and len(fake.connections) == 1


async def test_a_stalled_connection_is_reopened(fake: FakeUpbit, nursery: trio.Nursery) -> None:
    feed = make_feed(fake, stale_after_seconds=0.3)
    sink = RecordingSink()
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
    fake.stalled = True
    await wait_for(lambda: False in sink.usable_flips())
    assert "stale" in sink.states[-1][2]
    fake.stalled = False
    await wait_for(lambda: sink.usable_flips()[-1] is True and len(fake.connections) >= 2)


async def test_a_dropped_connection_reconnects(fake: FakeUpbit, nursery: trio.Nursery) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
    fake.drop_connections()
    await wait_for(lambda: feed.reconnects >= 1 and len(fake.subscriptions) >= 2)
    count = len(sink.quotes)
    await wait_for(lambda: len(sink.quotes) > count)


async def test_garbage_is_skipped_and_an_error_reconnects(
    fake: FakeUpbit, nursery: trio.Nursery
) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
    fake.inject(b"\xff\x00not json")
    fake.inject(b'{"type":"orderbook","code":"KRW-BTC"}')
    await wait_for(lambda: feed.skipped_messages >= 2)
    assert feed.reconnects == 0
    fake.inject(b'{"error":{"name":"WRONG_FORMAT","message":"bad"}}')
    await wait_for(lambda: feed.resyncs == 1 and len(fake.subscriptions) >= 2)


async def test_older_pushes_are_dropped_and_a_crossed_book_forgotten(
    fake: FakeUpbit, nursery: trio.Nursery
) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
    await wait_for(lambda: of(sink, "BTCUSDT"))
    fake.inject(fake.push("KRW-BTC", timestamp=1_000))
    await wait_for(lambda: feed.dropped_out_of_order == 1)
    fake.set_book("KRW-BTC", bids=[("137003000", "1")], asks=[("137002000", "1")])
    await wait_for(lambda: ("upbit", "BTCUSDT") in sink.forgotten)
    assert feed.crossed_books >= 1


# --- converted by the engine ---------------------------------------------------------------


def converting_engine(feed: UpbitFeed, other: str = "usd") -> Engine:
    engine = Engine(strategies=[], bus=Bus(), ledger=Ledger())
    engine.set_venues({"upbit": feed.taker_fee, other: 0.001}, {},
                      venue_conversions([feed]))
    return engine


async def test_the_engine_converts_upbit_at_the_fakes_krw_usdt_book(
    fake: FakeUpbit, nursery: trio.Nursery
) -> None:
    feed = make_feed(fake)
    engine = converting_engine(feed)
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], engine)
    await wait_for(lambda: "upbit" in engine.book.get("BTCUSDT", {}))
    quote = engine.book["BTCUSDT"]["upbit"]
    # Buying BTC with KRW: KRW from selling USDT at the rate's bid; selling: its ask.
    assert quote.ask == pytest.approx(137_002_000 / 1_375)
    assert quote.bid == pytest.approx(137_001_000 / 1_376)
    assert (quote.native_bid, quote.native_ask, quote.rate_bid, quote.rate_ask) == (
        137_001_000.0, 137_002_000.0, 1375.0, 1376.0)


async def test_a_missing_rate_makes_upbit_unusable(
    fake: FakeUpbit, nursery: trio.Nursery
) -> None:
    fake.silent.add("KRW-USDT")
    feed = make_feed(fake)
    engine = converting_engine(feed)
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], engine)
    await wait_for(lambda: engine.unconverted["upbit", "rate_missing"] >= 3)
    assert "upbit" not in engine.book.get("BTCUSDT", {})


async def test_a_stale_rate_makes_upbit_unusable_until_it_is_fresh_again(
    fake: FakeUpbit, nursery: trio.Nursery
) -> None:
    feed = make_feed(fake, rate_max_age_seconds=0.2)
    engine = converting_engine(feed)
    await nursery.start(feed.stream_quotes, ["BTCUSDT"], engine)
    await wait_for(lambda: "upbit" in engine.book.get("BTCUSDT", {}))
    fake.silent.add("KRW-USDT")
    await wait_for(lambda: engine.unconverted["upbit", "rate_stale"] >= 1)
    await wait_for(lambda: "upbit" not in engine.book.get("BTCUSDT", {}))
    fake.silent.clear()
    await wait_for(lambda: "upbit" in engine.book.get("BTCUSDT", {}))
