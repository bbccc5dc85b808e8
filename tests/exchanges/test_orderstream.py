"""What an order stream's tracker makes of the reports it hears: fills kept once by their
exchange id, an order known only when final with every fill heard, waiting that ends as
soon as the stream can no longer tell; and where each exchange's stream is."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from arbotd import Fill, OrderStatus, Side
from arbotd.exchange import OrderReport, OrderTracker, ReportedFill, merge_fills
from arbotd_binance import BinanceConfig
from arbotd_bybit import BybitConfig
from arbotd_okx import OkxConfig

D = Decimal


def fill(fill_id: str, quantity: str, at: float = 1.0) -> ReportedFill:
    return ReportedFill(fill_id, D("100"), D(quantity), D("0.001"), "BTC", at)


def test_an_order_is_known_once_final_with_every_fill_heard() -> None:
    tracker = OrderTracker()
    tracker.record(OrderReport("arb1b", "7", filled=D("0.3"), fills=(fill("a", "0.3"),)))
    assert tracker.complete("arb1b") is None  # still open
    # Bybit may report the order filled before its executions arrive.
    tracker.record(OrderReport("arb1b", status=OrderStatus.FILLED, filled=D("0.5")))
    assert tracker.complete("arb1b") is None
    tracker.record(OrderReport("arb1b", fills=(fill("a", "0.3"), fill("b", "0.2"))))
    tracked = tracker.complete("arb1b")
    assert tracked is not None and tracked.exchange_order_id == "7"
    assert list(tracked.fills) == ["a", "b"]  # "a", heard twice, counts once
    # A later report never reopens a final order nor lowers what it filled.
    tracker.record(OrderReport("arb1b", filled=D("0.3")))
    assert tracker.complete("arb1b") is tracked and tracked.filled == D("0.5")


def test_the_oldest_orders_are_forgotten_past_the_capacity() -> None:
    tracker = OrderTracker(capacity=2)
    for cid in ("a", "b", "c"):
        tracker.record(OrderReport(cid))
    assert tracker.get("a") is None and tracker.get("c") is not None


def test_fills_from_several_sources_are_merged_by_their_id() -> None:
    def of(source: str, fill_id: str, at: float) -> Fill:
        return Fill("arb1b", 1, "x", "BTCUSDT", Side.BUY, D("100"), D("1"), D("0"), source, at)

    merged = merge_fills({"2": of("rest", "2", 2.0), "1": of("rest", "1", 1.0)},
                         {"1": of("stream", "1", 1.0), "3": of("stream", "3", 3.0)})
    assert [(f.fee_asset, f.timestamp) for f in merged] == [
        ("rest", 1.0), ("rest", 2.0), ("stream", 3.0)]


async def test_waiting_ends_when_the_stream_tells_or_can_no_longer_tell() -> None:
    tracker = OrderTracker()
    assert await tracker.wait("arb1b", tracker.session_if_up(), 5.0) is None  # down
    tracker.stream_up()
    session = tracker.session_if_up()
    told: list[object] = []

    async def wait(cid: str) -> None:
        told.append(await tracker.wait(cid, session, 30.0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, "arb1b")
        await trio.sleep(0.01)
        tracker.record(OrderReport("arb1b", status=OrderStatus.EXPIRED, filled=D(0)))
    assert told[-1] is tracker.get("arb1b")
    # A reconnect since the order left: events may have been missed, so no more waiting.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, "arb2b")
        await trio.sleep(0.01)
        tracker.stream_down()
        tracker.stream_up()
    assert told[-1] is None
    # ... but what was heard in full stays known.
    assert await tracker.wait("arb1b", session, 0.0) is not None


async def test_waiting_gives_up_after_its_timeout(autojump_clock: trio.abc.Clock) -> None:
    tracker = OrderTracker()
    tracker.stream_up()
    with trio.fail_after(2):
        assert await tracker.wait("arb1b", tracker.session_if_up(), 1.0) is None


@pytest.mark.parametrize(("config", "expected"), [
    (BinanceConfig(), "wss://ws-api.binance.com:443/ws-api/v3"),
    (BinanceConfig(testnet=True), "wss://ws-api.testnet.binance.vision/ws-api/v3"),
    (BybitConfig(), "wss://stream.bybit.com/v5/private"),
    (BybitConfig(testnet=True), "wss://stream-testnet.bybit.com/v5/private"),
    (OkxConfig(), "wss://ws.okx.com:8443/ws/v5/private"),
    (OkxConfig(testnet=True), "wss://wspap.okx.com:8443/ws/v5/private"),
    # Another REST server says nothing of where its stream is: none, unless named.
    (BinanceConfig(rest_url="http://127.0.0.1:8080"), None),
    (BybitConfig(rest_url="http://127.0.0.1:8080"), None),
    (OkxConfig(rest_url="http://127.0.0.1:8080"), None),
    (OkxConfig(rest_url="http://127.0.0.1:8080", order_stream_url="ws://127.0.0.1:8081/p"),
     "ws://127.0.0.1:8081/p"),
    (BybitConfig(order_stream=False), None),
])
def test_where_each_exchanges_order_stream_is(config: object, expected: str | None) -> None:
    assert config.resolved_order_stream_url() == expected  # type: ignore[attr-defined]
