"""The Bitget market-data feed: parsing documented messages, configuration, and the feed
against a fake Bitget WebSocket on loopback with injected faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import tomlkit
import trio
from exchanges.fake_bitget import FakeBitget, open_fake_bitget
from feedtools import FAST, RecordingSink, wait_for

import arbotd_bitget.plugin as bitget_plugin
from arbotd import ConfigError
from arbotd._config import CORE_SECTIONS, structure_document
from arbotd.exchange import Backoff, Resync
from arbotd_bitget import BitgetAccount, BitgetConfig, BitgetFeed, parse_bbo, to_bitget
from arbotd_bitget.stream import OUT_OF_ORDER_LIMIT, PING_INTERVAL
from arbotd_bitget.symbols import MAX_REQUEST_BYTES, chunk, subscribe_requests

# The books5 example of Bitget's depth channel page (bitget-upbit-protocols.md 1.1), as
# books1 pushes it: one level per side.
DOC_BOOKS1 = ('{"action":"snapshot","arg":{"instType":"SPOT","channel":"books1",'
              '"instId":"BTCUSDT"},"data":[{"asks":[["26274.9","0.0009"]],"bids":[["26274.8",'
              '"0.0009"]],"checksum":0,"seq":123,"ts":"1695710946294"}],"ts":1695710946294}')
NAMES = {"BTCUSDT": "BTCUSDT", "ETHUSDT": "ETHUSDT"}


def make_feed(fake: FakeBitget, depth: int = 1, **settings: object) -> BitgetFeed:
    """A feed of the fake; of its books1 channel unless ``depth`` says otherwise."""
    config = BitgetConfig(enabled=True, ws_url=fake.ws_url, depth=depth,
                          **settings)  # type: ignore[arg-type]
    return BitgetFeed(config, backoff=FAST)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBitget]:
    async with open_fake_bitget() as server:
        yield server


# --- parsing ---------------------------------------------------------------------------


def test_parses_the_documented_books1_push() -> None:
    seq, quote = parse_bbo(DOC_BOOKS1, NAMES, 1695710946.5)
    assert seq == 123
    assert (quote.exchange, quote.symbol, quote.bid, quote.bid_size, quote.ask,
            quote.ask_size) == ("bitget", "BTCUSDT", 26274.8, 0.0009, 26274.9, 0.0009)
    assert quote.exchange_ts == 1695710946.294 and quote.received_ts == 1695710946.5


def test_pong_acks_and_events() -> None:
    assert parse_bbo("pong", NAMES, 0.0) is None
    ack = ('{"event":"subscribe","arg":{"instType":"SPOT","channel":"books1",'
           '"instId":"BTCUSDT"}}')
    assert parse_bbo(ack, NAMES, 0.0) is None
    with pytest.raises(Resync, match="30001"):
        parse_bbo('{"event":"error","code":30001,"msg":"instType:SPOT,channel:books1,'
                  'instId:FOOUSDT doesn\'t exist"}', NAMES, 0.0)


@pytest.mark.parametrize("raw", [
    b"\x00garbage{", "[]", '{"arg":{"channel":"books1","instId":"BTCUSDT"},"data":[{}]}',
    '{"action":"snapshot","arg":{"channel":"ticker","instId":"BTCUSDT"},"data":[{}]}',
    DOC_BOOKS1.replace('"BTCUSDT"', '"DOGEUSDT"'),
])
def test_rejects_what_is_not_a_books1_push_of_ours(raw: str | bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError, IndexError)):
        parse_bbo(raw, NAMES, 0.0)


def test_urls_follow_the_testnet_flag() -> None:
    assert BitgetConfig().resolved_ws_url() == "wss://ws.bitget.com/v2/ws/public"
    assert BitgetConfig(testnet=True).resolved_ws_url() == "wss://wspap.bitget.com/v2/ws/public"
    assert BitgetConfig().resolved_rest_url() == "https://api.bitget.com"
    assert BitgetConfig(rest_url="http://127.0.0.1:2/").resolved_rest_url() == "http://127.0.0.1:2"
    assert BitgetConfig().resolved_order_stream_url() == "wss://ws.bitget.com/v2/ws/private"
    assert BitgetConfig(rest_url="http://x").resolved_order_stream_url() is None
    assert BitgetConfig(order_stream=False).resolved_order_stream_url() is None


def test_the_table_is_read_from_toml_and_checked() -> None:
    schema = {**CORE_SECTIONS, **bitget_plugin.register_config_sections()}
    document = tomlkit.parse(
        "[exchanges.bitget]\nenabled = true\ntestnet = true\ndepth = 15\n"
        'passphrase_env = "MY_BITGET_PASSPHRASE"\n')
    sections = structure_document(document, schema, file="arbot.toml")
    assert sections["exchanges.bitget"] == BitgetConfig(
        enabled=True, testnet=True, depth=15, passphrase_env="MY_BITGET_PASSPHRASE")
    bad = tomlkit.parse('[exchanges.bitget]\nws_url = "http://x"\nrest_url = "wss://x"\n'
                        "max_channels_per_connection = 0\nrequest_budget_fraction = 1.5\n"
                        "depth = 401\ntaker_fee = -0.1\n")
    with pytest.raises(ConfigError) as caught:
        structure_document(bad, schema, file="arbot.toml")
    message = str(caught.value)
    for key in ("ws_url", "rest_url", "max_channels_per_connection", "request_budget_fraction",
                "depth", "taker_fee"):
        assert f"exchanges.bitget.{key}" in message


def test_symbols_and_subscriptions_within_the_request_limit() -> None:
    assert to_bitget("btcusdt") == "BTCUSDT"
    assert chunk(["a", "b", "a", "c"], 2) == [["a", "b"], ["c"]]
    [one] = subscribe_requests(["BTCUSDT", "ETHUSDT"], "books1")
    assert orjson.loads(one) == {"op": "subscribe", "args": [
        {"instType": "SPOT", "channel": "books1", "instId": "BTCUSDT"},
        {"instType": "SPOT", "channel": "books1", "instId": "ETHUSDT"}]}
    symbols = [f"C{i}USDT" for i in range(300)]
    requests = subscribe_requests(symbols, "books")
    assert len(requests) > 3
    assert all(len(r) <= MAX_REQUEST_BYTES for r in requests)
    assert [a["instId"] for r in requests for a in orjson.loads(r)["args"]] == symbols


def test_connections_plan_and_heartbeat() -> None:
    feed = BitgetFeed(BitgetConfig(max_channels_per_connection=2, depth=1))
    plan = feed.connections(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    assert [dict(c.symbols) for c in plan] == [
        {"BTCUSDT": "BTCUSDT", "ETHUSDT": "ETHUSDT"}, {"SOLUSDT": "SOLUSDT"}]
    assert all(c.url == "wss://ws.bitget.com/v2/ws/public" for c in plan)
    assert feed.heartbeat() == "ping"
    assert feed.heartbeat_interval == 5.0  # half of the 10 s stale limit
    slow = BitgetFeed(BitgetConfig(stale_after_seconds=600))
    assert slow.heartbeat_interval == PING_INTERVAL < 30  # Bitget wants one every 30 s
    assert BitgetFeed(BitgetConfig()) == BitgetFeed(BitgetConfig())
    assert BitgetFeed(BitgetConfig()) != BitgetFeed(BitgetConfig(taker_fee=0.0008))


class _Runtime:
    def __init__(self) -> None:
        self.plugin_state: dict = {}
        self.clock = None


def test_plugin_registers_the_section_feed_and_account() -> None:
    assert bitget_plugin.register_config_sections() == {"exchanges.bitget": BitgetConfig}
    runtime = _Runtime()
    off = {"exchanges.bitget": BitgetConfig()}
    on = {"exchanges.bitget": BitgetConfig(enabled=True)}
    assert bitget_plugin.register_exchanges(config=off, runtime=runtime) == []
    assert bitget_plugin.register_accounts(config=off, runtime=runtime) == []
    [feed] = bitget_plugin.register_exchanges(config=on, runtime=runtime)
    assert isinstance(feed, BitgetFeed)
    [account] = bitget_plugin.register_accounts(config=on, runtime=runtime)
    assert isinstance(account, BitgetAccount)
    [again] = bitget_plugin.register_accounts(
        config={"exchanges.bitget": BitgetConfig(enabled=True)}, runtime=runtime)
    assert again is account
    [changed] = bitget_plugin.register_accounts(
        config={"exchanges.bitget": BitgetConfig(enabled=True, taker_fee=0.0008)},
        runtime=runtime)
    assert changed is not account and runtime.plugin_state["bitget.account"] is changed


def test_the_plugin_is_an_installed_entry_point() -> None:
    from importlib.metadata import entry_points

    assert "arbotd_bitget.plugin" in {e.value for e in entry_points(group="arbotd")}


# --- against the fake server -----------------------------------------------------------


async def test_quotes_reach_the_sink(fake: FakeBitget) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    fake.set_book("ETHUSDT", bids=[("2050.1", "3.5")], asks=[("2050.2", "1.25")])
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        assert sink.usable_flips() == [True]
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        assert fake.subscribe_requests == [{"op": "subscribe", "args": [
            {"instType": "SPOT", "channel": "books1", "instId": "BTCUSDT"},
            {"instType": "SPOT", "channel": "books1", "instId": "ETHUSDT"}]}]
        eth = [q for q in sink.quotes if q.symbol == "ETHUSDT"][-1]
        assert (eth.exchange, eth.bid, eth.bid_size, eth.ask, eth.ask_size) == (
            "bitget", 2050.1, 3.5, 2050.2, 1.25)
        assert feed.feed_status().connected
        nursery.cancel_scope.cancel()
    assert not feed.feed_status().connected


async def test_pings_keep_a_quiet_connection_open(fake: FakeBitget) -> None:
    feed = make_feed(fake, stale_after_seconds=0.4)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.quiet = True  # no data, but the pings are answered
        pings = fake.pings
        await wait_for(lambda: fake.pings >= pings + 4)
        assert sink.usable_flips() == [True] and len(fake.connections) == 1
        fake.quiet = False
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        nursery.cancel_scope.cancel()


async def test_unanswered_pings_reconnect_even_while_data_flows(fake: FakeBitget) -> None:
    feed = make_feed(fake, stale_after_seconds=0.3)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: fake.pings >= 2)
        fake.no_pong = True  # quotes keep coming, pongs do not
        await wait_for(lambda: sink.usable_flips() == [True, False])
        assert "no pong" in sink.states[1][2]
        fake.no_pong = False
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        nursery.cancel_scope.cancel()


async def test_a_stall_marks_the_feed_stale_and_reconnects(fake: FakeBitget) -> None:
    feed = make_feed(fake, stale_after_seconds=0.3)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.stalled = True  # nothing at all, not even pongs
        await wait_for(lambda: sink.usable_flips() == [True, False])
        assert "stale" in sink.states[1][2]
        fake.stalled = False
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        nursery.cancel_scope.cancel()


async def test_a_dropped_connection_marks_the_feed_unusable_then_resumes(
    fake: FakeBitget,
) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.drop_connections()
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert len(fake.connections) == 2 and len(fake.subscribe_requests) == 2
        nursery.cancel_scope.cancel()


async def test_the_daily_forced_disconnect_is_an_ordinary_quick_reconnect(
    fake: FakeBitget,
) -> None:
    # Bitget closes every connection after 24 h: one that was up a while (healthy_after)
    # is reopened at once, not after the backoff.
    config = BitgetConfig(enabled=True, ws_url=fake.ws_url, depth=1)
    feed = BitgetFeed(config, backoff=Backoff(first=30.0, healthy_after=0.1))
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await trio.sleep(0.2)
        fake.drop_connections()
        await wait_for(lambda: sink.usable_flips() == [True, False, True], timeout=5.0)
        assert len(fake.connections) == 2
        nursery.cancel_scope.cancel()


async def test_an_error_event_resubscribes(fake: FakeBitget) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        fake.inject('{"event":"error","code":30006,"msg":"request too many"}')
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        assert "30006" in sink.states[1][2]
        await wait_for(lambda: len(fake.subscribe_requests) == 2)
        nursery.cancel_scope.cancel()


async def test_garbage_is_skipped_and_the_feed_goes_on(fake: FakeBitget) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(b"\x00garbage{")
        fake.inject('{"action":"snapshot","arg":{"instType":"SPOT","channel":"books1",'
                    '"instId":"BTCUSDT"},"data":[{"asks":[]}]}')
        fake.inject("[]")
        await wait_for(lambda: feed.skipped_messages == 3)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert sink.usable_flips() == [True] and len(fake.connections) == 1
        nursery.cancel_scope.cancel()


async def test_pushes_going_back_are_dropped_then_a_restart_reconnects(
    fake: FakeBitget,
) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        fake.quiet = True
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        high = 900_000_000
        for seq, bid in ((high, "1.5"), (high - 1, "2.5"), (high + 1, "3.5"), (high + 1, "4.5")):
            fake.inject(fake.bbo("BTCUSDT", seq=seq, bid=bid))
        await wait_for(lambda: len(sink.quotes) == 3)
        assert [q.bid for q in sink.quotes] == [1.5, 3.5, 4.5]
        assert feed.dropped_out_of_order == 1
        for seq in range(3, 3 + OUT_OF_ORDER_LIMIT):
            fake.inject(fake.bbo("BTCUSDT", seq=seq))
        await wait_for(lambda: sink.usable_flips() == [True, False])
        assert "restarted" in sink.states[1][2]
        fake.quiet = False
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        nursery.cancel_scope.cancel()


async def test_more_symbols_than_one_connection_takes_use_several(fake: FakeBitget) -> None:
    feed = make_feed(fake, max_channels_per_connection=2)
    sink = RecordingSink()
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"]
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, symbols, sink)
        assert sorted(len(r["args"]) for r in fake.subscribe_requests) == [1, 2, 2]
        await wait_for(lambda: {q.symbol for q in sink.quotes} == set(symbols))
        fake.open_connections[0].scope.cancel()
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        nursery.cancel_scope.cancel()


async def test_an_unreachable_server_is_retried_without_failing() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    feed = BitgetFeed(BitgetConfig(enabled=True, ws_url=f"ws://127.0.0.1:{port}/v2/ws/public"),
                      backoff=FAST)
    sink = RecordingSink()
    with trio.move_on_after(0.5) as scope:
        await feed.stream_quotes(["BTCUSDT"], sink)
    assert scope.cancelled_caught
    assert sink.states == [] and not feed.feed_status().connected


# --- arbotd check ------------------------------------------------------------------------


@pytest.mark.usefixtures("isolated_logging")
def test_arbotd_check_reads_the_table_and_names_a_wrong_key(tmp_path, monkeypatch, capsys
                                                             ) -> None:
    """Like the other exchanges: the keys are not the file's business (``check`` passes
    without them; live mode refuses to start naming the missing variable), while a wrong
    value in ``[exchanges.bitget]`` is named with its key."""
    from arbotd._cli import main

    for name in ("BITGET_API_KEY", "BITGET_API_SECRET", "BITGET_API_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "arbot.toml"
    path.write_text('[daemon]\nmode = "live"\n\n[exchanges.bitget]\nenabled = true\n'
                    "depth = 15\n")
    assert main(["check", "-c", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: configuration OK\n"
    path.write_text('[exchanges.bitget]\nenabled = true\nws_url = "https://ws.bitget.com"\n')
    assert main(["check", "-c", str(path)]) == 1
    assert f"{path}: exchanges.bitget.ws_url: expected a ws:// or wss:// URL" in (
        capsys.readouterr().err)
