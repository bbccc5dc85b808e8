"""The OKX market-data feed: parsing documented and recorded messages, and the feed
against a fake OKX WebSocket on loopback with injected faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import tomlkit
import trio
from fake_okx import RECORDED, FakeOkx, open_fake_okx, recorded_messages, recorded_tops
from feedtools import FAST, RecordingSink, wait_for

import arbotd_okx.plugin as okx_plugin
from arbotd import ConfigError, Quote
from arbotd._config import CORE_SECTIONS, structure_document
from arbotd.exchange import Backoff, Resync
from arbotd_okx import OkxAccount, OkxConfig, OkxFeed, from_okx, parse_bbo, to_okx
from arbotd_okx.stream import OUT_OF_ORDER_LIMIT, PING_INTERVAL
from arbotd_okx.symbols import MAX_ARGS_BYTES, chunk, subscribe_requests

# The bbo-tbt example of OKX's order book channel page (exchange-protocols.md 3.1).
DOC_BBO = ('{"arg":{"channel":"bbo-tbt","instId":"BCH-USDT-SWAP"},"data":[{"asks":[["111.06",'
           '"55154","0","2"]],"bids":[["111.05","57745","0","2"]],"ts":"1670324386802",'
           '"seqId":363996337}]}')


def make_feed(fake: FakeOkx, depth: int = 1, **settings: object) -> OkxFeed:
    """A feed of the fake; of its bbo-tbt channel unless ``depth`` says otherwise."""
    config = OkxConfig(enabled=True, ws_url=fake.ws_url, depth=depth,
                       **settings)  # type: ignore[arg-type]
    return OkxFeed(config, backoff=FAST)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOkx]:
    async with open_fake_okx() as server:
        yield server


# --- parsing ---------------------------------------------------------------------------


def test_parses_the_documented_bbo_tbt_example() -> None:
    seq, prev, quote = parse_bbo(DOC_BBO, {"BCH-USDT-SWAP": "BCHUSDT"}, 1670324386.9)
    assert (seq, prev) == (363996337, None)
    assert quote == Quote("okx", "BCHUSDT", 111.05, 111.06, 57745.0, 55154.0,
                          1670324386.802, 1670324386.9)


def test_rebuilt_recorded_books_parse_into_their_best_levels() -> None:
    """Every ``books`` message of real OKX traffic, its book rebuilt (and checked against
    the recorded checksum), written as the bbo-tbt push of its best level."""
    if not RECORDED.exists():
        pytest.skip(f"recorded traffic not found at {RECORDED} (../shared is missing)")
    tops = list(recorded_tops())
    assert len(tops) > 200
    names = {inst_id: from_okx(inst_id) for inst_id, _ in tops}
    for inst_id, data in tops:
        raw = orjson.dumps({"arg": {"channel": "bbo-tbt", "instId": inst_id}, "data": [data]})
        seq, _, quote = parse_bbo(raw, names, 1652459300.0)
        assert seq is None  # the 2022 captures predate seqId
        assert quote.symbol == from_okx(inst_id)
        assert (quote.bid, quote.ask) == (float(data["bids"][0][0]), float(data["asks"][0][0]))
        assert (quote.bid_size, quote.ask_size) == (float(data["bids"][0][1]),
                                                    float(data["asks"][0][1]))
        assert quote.exchange_ts == int(data["ts"]) / 1000 and quote.bid < quote.ask


def test_recorded_messages_of_other_channels_and_acks_are_no_quotes() -> None:
    if not RECORDED.exists():
        pytest.skip(f"recorded traffic not found at {RECORDED} (../shared is missing)")
    names = {"BTC-USDT": "BTCUSDT", "BTC-USD-220527": "BTCUSD220527",
             "UNI-USD-SWAP": "UNIUSDSWAP"}
    acks = rejected = 0
    for raw in recorded_messages():
        try:
            result = parse_bbo(raw, names, 0.0)
        except ValueError:  # tickers, trades, books: not the bbo-tbt channel
            rejected += 1
            continue
        assert result is None
        acks += 1
    assert acks == 18 and rejected > 300


def test_pong_acks_and_events() -> None:
    assert parse_bbo("pong", {}, 0.0) is None
    ack = '{"id":"1512","event":"subscribe","arg":{"channel":"bbo-tbt","instId":"BTC-USDT"}}'
    assert parse_bbo(ack, {}, 0.0) is None
    assert parse_bbo('{"event":"notice","code":"64009","msg":"something"}', {}, 0.0) is None
    with pytest.raises(Resync, match="60012"):
        parse_bbo('{"id":"1512","event":"error","code":"60012","msg":"Invalid request: x",'
                  '"connId":"a4d3ae55"}', {}, 0.0)
    with pytest.raises(Resync, match="64003"):
        parse_bbo('{"event":"error","code":"64003","msg":"Your trading volume is too low"}',
                  {}, 0.0)
    with pytest.raises(Resync, match="service upgrade"):
        parse_bbo('{"event":"notice","code":"64008","msg":"The connection will soon be closed '
                  'for a service upgrade. Please reconnect.","connId":"a4d3ae55"}', {}, 0.0)


@pytest.mark.parametrize("raw", [
    b"not json",
    b"[1, 2]",
    b"null",
    b"42",
    b'{"something": "else"}',
    b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[]}',
    b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[],"bids":[["1","1"]],'
    b'"ts":"1"}]}',
    b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["x","1"]],'
    b'"bids":[["1","1"]],"ts":"1"}]}',
    b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[["1"]]}',
    b'{"arg":{"channel":"bbo-tbt","instId":"ETH-USDT"},"data":[{"asks":[["2","1"]],'
    b'"bids":[["1","1"]],"ts":"1"}]}',
    b'{"arg":{"channel":"books5","instId":"BTC-USDT"},"data":[{"asks":[["2","1"]],'
    b'"bids":[["1","1"]],"ts":"1"}]}',
])
def test_rejects_what_is_not_a_bbo_push_of_ours(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError, IndexError)):
        parse_bbo(raw, {"BTC-USDT": "BTCUSDT"}, 0.0)


def _push(seq: int, prev: int | None = None, bid: str = "1") -> bytes:
    data: dict[str, object] = {"asks": [["9", "1", "0", "1"]], "bids": [[bid, "1", "0", "1"]],
                               "ts": "1700000000000", "seqId": seq}
    if prev is not None:
        data["prevSeqId"] = prev
    return orjson.dumps({"arg": {"channel": "bbo-tbt", "instId": "BTC-USDT"}, "data": [data]})


def test_seq_id_rules() -> None:
    feed = OkxFeed(OkxConfig(depth=1))
    connection = feed.connections(["BTCUSDT"])[0]
    state: dict = {}

    def bid(raw: bytes) -> float | None:
        quote = feed.parse(raw, connection, state, 0.0)
        return None if quote is None else quote.bid

    assert bid(_push(100, bid="1")) == 1.0
    assert bid(_push(100, bid="2")) == 2.0  # the snapshot re-sent after a quiet minute
    assert bid(_push(99, bid="3")) is None  # out of order
    assert bid(_push(105, bid="4")) == 4.0
    assert bid(_push(7, prev=105, bid="5")) == 5.0  # the documented maintenance reset
    assert bid(_push(8, bid="6")) == 6.0
    assert (feed.dropped_out_of_order, feed.sequence_resets) == (1, 1)
    # A sequence restarting lower without saying so: dropped, then a reconnect.
    for n in range(OUT_OF_ORDER_LIMIT - 1):
        assert bid(_push(3 + n)) is None
    with pytest.raises(Resync, match="restarted"):
        bid(_push(5))


# --- configuration, symbols, plugin ----------------------------------------------------


def test_urls_follow_the_testnet_flag() -> None:
    assert OkxConfig().resolved_ws_url() == "wss://ws.okx.com:8443/ws/v5/public"
    assert OkxConfig(testnet=True).resolved_ws_url() == "wss://wspap.okx.com:8443/ws/v5/public"
    assert OkxConfig(ws_url="ws://127.0.0.1:1/x").resolved_ws_url() == "ws://127.0.0.1:1/x"
    assert OkxConfig().resolved_rest_url() == "https://www.okx.com"
    assert OkxConfig(testnet=True).resolved_rest_url() == "https://www.okx.com"
    assert OkxConfig(rest_url="http://127.0.0.1:2/").resolved_rest_url() == "http://127.0.0.1:2"


def test_the_table_is_read_from_toml_and_checked() -> None:
    schema = {**CORE_SECTIONS, **okx_plugin.register_config_sections()}
    document = tomlkit.parse(
        "[exchanges.okx]\nenabled = true\ntestnet = true\nstale_after_seconds = 5\n"
        'passphrase_env = "MY_OKX_PASSPHRASE"\n')
    sections = structure_document(document, schema, file="arbot.toml")
    assert sections["exchanges.okx"] == OkxConfig(
        enabled=True, testnet=True, stale_after_seconds=5.0, passphrase_env="MY_OKX_PASSPHRASE")
    bad = tomlkit.parse('[exchanges.okx]\nws_url = "http://x"\nrest_url = "wss://x"\n'
                        "max_channels_per_connection = 0\nrequest_budget_fraction = 1.5\n")
    with pytest.raises(ConfigError) as caught:
        structure_document(bad, schema, file="arbot.toml")
    message = str(caught.value)
    for key in ("ws_url", "rest_url", "max_channels_per_connection", "request_budget_fraction"):
        assert key in message


def test_symbols() -> None:
    assert to_okx("BTCUSDT") == "BTC-USDT" and to_okx("ethbtc") == "ETH-BTC"
    assert from_okx("BTC-USDT") == "BTCUSDT"
    with pytest.raises(ValueError, match="quote currency"):
        to_okx("FOOBAR")
    assert chunk(["a", "b", "a", "c"], 2) == [["a", "b"], ["c"]]


def test_subscriptions_stay_within_the_args_limit() -> None:
    [one] = subscribe_requests(["BTC-USDT", "ETH-USDT"])
    assert orjson.loads(one) == {"op": "subscribe", "args": [
        {"channel": "bbo-tbt", "instId": "BTC-USDT"}, {"channel": "bbo-tbt", "instId": "ETH-USDT"}]}
    inst_ids = [f"C{i}-USDT" for i in range(100)]
    requests = subscribe_requests(inst_ids, max_args_bytes=500)
    assert len(requests) > 5
    sent = []
    for request in requests:
        args = orjson.loads(request)["args"]
        assert len(orjson.dumps(args)) <= 500
        sent += [a["instId"] for a in args]
    assert sent == inst_ids
    big = subscribe_requests([f"C{i}-USDT" for i in range(1000)])
    assert all(len(orjson.dumps(orjson.loads(r)["args"])) <= MAX_ARGS_BYTES for r in big)


def test_connections_plan_and_heartbeat() -> None:
    feed = OkxFeed(OkxConfig(max_channels_per_connection=2))
    plan = feed.connections(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    assert [dict(c.symbols) for c in plan] == [
        {"BTC-USDT": "BTCUSDT", "ETH-USDT": "ETHUSDT"}, {"SOL-USDT": "SOLUSDT"}]
    assert all(c.url == "wss://ws.okx.com:8443/ws/v5/public" for c in plan)
    assert feed.heartbeat() == "ping"
    assert feed.heartbeat_interval == 5.0  # half of the 10 s stale limit, below OKX's 30 s
    assert OkxFeed(OkxConfig(stale_after_seconds=600)).heartbeat_interval == PING_INTERVAL < 30


def test_feeds_with_equal_settings_are_equal() -> None:
    assert OkxFeed(OkxConfig()) == OkxFeed(OkxConfig())
    assert OkxFeed(OkxConfig()) != OkxFeed(OkxConfig(taker_fee=0.0008))
    feed = OkxFeed(OkxConfig(taker_fee=0.0008, premium_baseline=0.1))
    assert (feed.name, feed.taker_fee, feed.premium_baseline) == ("okx", 0.0008, 0.1)


class _Runtime:
    def __init__(self) -> None:
        self.plugin_state: dict = {}
        self.clock = None


def test_plugin_registers_the_section_feed_and_account() -> None:
    assert okx_plugin.register_config_sections() == {"exchanges.okx": OkxConfig}
    runtime = _Runtime()
    off = {"exchanges.okx": OkxConfig()}
    on = {"exchanges.okx": OkxConfig(enabled=True)}
    assert okx_plugin.register_exchanges(config=off, runtime=runtime) == []
    assert okx_plugin.register_accounts(config=off, runtime=runtime) == []
    [feed] = okx_plugin.register_exchanges(config=on, runtime=runtime)
    assert isinstance(feed, OkxFeed)
    [account] = okx_plugin.register_accounts(config=on, runtime=runtime)
    assert isinstance(account, OkxAccount)
    # A reload with the same settings keeps the very same account; a change makes a new one.
    [again] = okx_plugin.register_accounts(
        config={"exchanges.okx": OkxConfig(enabled=True)}, runtime=runtime)
    assert again is account
    [changed] = okx_plugin.register_accounts(
        config={"exchanges.okx": OkxConfig(enabled=True, taker_fee=0.0008)}, runtime=runtime)
    assert changed is not account and runtime.plugin_state["okx.account"] is changed


# --- against the fake server -----------------------------------------------------------


async def test_quotes_reach_the_sink(fake: FakeOkx) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    fake.set_book("ETH-USDT", bids=[("2050.1", "3.5")], asks=[("2050.2", "1.25")])
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT", "ETHUSDT"], sink)
        assert sink.usable_flips() == [True]
        await wait_for(lambda: {q.symbol for q in sink.quotes} == {"BTCUSDT", "ETHUSDT"})
        assert fake.subscribe_requests == [{"op": "subscribe", "args": [
            {"channel": "bbo-tbt", "instId": "BTC-USDT"},
            {"channel": "bbo-tbt", "instId": "ETH-USDT"}]}]
        eth = [q for q in sink.quotes if q.symbol == "ETHUSDT"][-1]
        assert (eth.exchange, eth.bid, eth.bid_size, eth.ask, eth.ask_size) == (
            "okx", 2050.1, 3.5, 2050.2, 1.25)
        status = feed.feed_status()
        assert status.connected and status.last_update is not None
        assert status.latency_ms is not None  # bbo-tbt carries the exchange's time
        nursery.cancel_scope.cancel()
    assert not feed.feed_status().connected


async def test_pings_keep_a_quiet_connection_open(fake: FakeOkx) -> None:
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


async def test_a_stall_marks_the_feed_stale_and_reconnects(fake: FakeOkx) -> None:
    feed = make_feed(fake, stale_after_seconds=0.3)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.stalled = True  # nothing at all, not even pongs
        await wait_for(lambda: sink.usable_flips() == [True, False])
        assert "stale" in sink.states[1][2]
        assert not feed.feed_status().connected
        fake.stalled = False
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert len(fake.connections) >= 2
        nursery.cancel_scope.cancel()


async def test_a_dropped_connection_marks_the_feed_unusable_then_resumes(
    fake: FakeOkx,
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


async def test_the_service_upgrade_notice_reconnects_at_once(fake: FakeOkx) -> None:
    config = OkxConfig(enabled=True, ws_url=fake.ws_url)
    feed = OkxFeed(config, backoff=Backoff(first=30.0, healthy_after=0.1))
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await trio.sleep(0.2)
        fake.inject('{"event":"notice","code":"64008","msg":"The connection will soon be '
                    'closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}')
        await wait_for(lambda: sink.usable_flips() == [True, False, True], timeout=2.0)
        assert "service upgrade" in sink.states[1][2]
        assert feed.resyncs == 1 and len(fake.connections) == 2
        nursery.cancel_scope.cancel()


async def test_an_error_event_resubscribes(fake: FakeOkx) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        fake.inject('{"event":"error","code":"60012","msg":"Invalid request: {\\"op\\": '
                    '\\"subscribe\\"}","connId":"a4d3ae55"}')
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        assert "60012" in sink.states[1][2]
        await wait_for(lambda: len(fake.subscribe_requests) == 2)
        nursery.cancel_scope.cancel()


async def test_garbage_is_skipped_and_the_feed_goes_on(fake: FakeOkx) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        await wait_for(lambda: len(sink.quotes) > 3)
        fake.inject(b"\x00garbage{")
        fake.inject('{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[]}]}')
        fake.inject("[]")
        await wait_for(lambda: feed.skipped_messages == 3)
        count = len(sink.quotes)
        await wait_for(lambda: len(sink.quotes) > count + 3)
        assert sink.usable_flips() == [True] and len(fake.connections) == 1
        nursery.cancel_scope.cancel()


async def test_pushes_going_back_are_dropped_then_a_restart_reconnects(fake: FakeOkx) -> None:
    feed = make_feed(fake)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        fake.stalled = True
        await nursery.start(feed.stream_quotes, ["BTCUSDT"], sink)
        high = 9_000_000
        for seq, bid in ((high, "1.5"), (high - 1, "2.5"), (high + 1, "3.5"), (high + 1, "4.5")):
            fake.inject(fake.bbo("BTC-USDT", seq_id=seq, bid=bid))
        await wait_for(lambda: len(sink.quotes) == 3)
        assert [q.bid for q in sink.quotes] == [1.5, 3.5, 4.5]
        assert feed.dropped_out_of_order == 1
        fake.inject(fake.bbo("BTC-USDT", seq_id=10, prev_seq_id=high + 1, bid="5.5"))
        await wait_for(lambda: len(sink.quotes) == 4)
        assert sink.quotes[-1].bid == 5.5 and feed.sequence_resets == 1
        for seq in range(3, 3 + OUT_OF_ORDER_LIMIT):
            fake.inject(fake.bbo("BTC-USDT", seq_id=seq))
        await wait_for(lambda: sink.usable_flips() == [True, False])
        assert "restarted" in sink.states[1][2]
        fake.stalled = False
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        nursery.cancel_scope.cancel()


async def test_more_symbols_than_one_connection_takes_use_several(fake: FakeOkx) -> None:
    feed = make_feed(fake, max_channels_per_connection=2)
    sink = RecordingSink()
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"]
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, symbols, sink)
        assert sorted(len(r["args"]) for r in fake.subscribe_requests) == [1, 2, 2]
        assert sorted(a["instId"] for r in fake.subscribe_requests for a in r["args"]) == sorted(
            to_okx(s) for s in symbols)
        await wait_for(lambda: {q.symbol for q in sink.quotes} == set(symbols))
        fake.open_connections[0].scope.cancel()
        await wait_for(lambda: sink.usable_flips() == [True, False, True])
        nursery.cancel_scope.cancel()


async def test_an_unreachable_server_is_retried_without_failing() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    feed = OkxFeed(OkxConfig(enabled=True, ws_url=f"ws://127.0.0.1:{port}/ws/v5/public"),
                   backoff=FAST)
    sink = RecordingSink()
    with trio.move_on_after(0.5) as scope:
        await feed.stream_quotes(["BTCUSDT"], sink)
    assert scope.cancelled_caught
    assert sink.states == [] and not feed.feed_status().connected

