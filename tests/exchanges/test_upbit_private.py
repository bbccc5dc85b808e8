"""The Upbit account learning of its fills from the private ``myOrder`` stream, against
fakes that verify the JWT of the upgrade and push each order as they match it; REST
answers only when the stream cannot."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import trio
from exchanges.fake_upbit import FakeUpbit, open_fake_upbit
from exchanges.fake_upbit_private import FakeUpbitPrivate, open_fake_upbit_private
from exchanges.privatetools import QUICK, streaming, wait_until

from arbotd import Order, OrderStatus, Side
from arbotd_upbit import UpbitAccount, UpbitConfig
from arbotd_upbit.private import MyOrderParser

ACCESS = "upbit-test-access-key-0123456789abcdefghij"
SECRET = "upbit-test-secret-key-0123456789abcdefghij"
ENV = {"UPBIT_ACCESS_KEY": ACCESS, "UPBIT_SECRET_KEY": SECRET}
D = Decimal

# The myOrder example of bitget-upbit-protocols.md 2.4 (Upbit's field names, illustrative
# values): one fill of 0.004 of a 0.01 limit buy.
DOC_MY_ORDER = {
    "type": "myOrder", "code": "KRW-BTC", "uuid": "ac2dc2a3-fce9-40a2-a4f6-5987c25c438f",
    "ask_bid": "BID", "order_type": "limit", "state": "trade", "trade_uuid": "t-1",
    "price": 137001000, "avg_price": 137001000, "volume": 0.01, "remaining_volume": 0.006,
    "executed_volume": 0.004, "trades_count": 1, "reserved_fee": 685.005,
    "remaining_fee": 411.003, "paid_fee": 274.002, "locked": 822417.0,
    "executed_funds": 548004, "trade_fee": 274.002, "is_maker": False, "time_in_force": None,
    "identifier": "test-001", "smp_type": None, "prevented_volume": 0, "prevented_locked": 0,
    "trade_timestamp": 1710751597500, "order_timestamp": 1710751590000,
    "timestamp": 1710751597500, "stream_type": "REALTIME"}


@pytest.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[tuple[FakeUpbit, FakeUpbitPrivate]]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with open_fake_upbit(ACCESS, SECRET) as exchange, \
            open_fake_upbit_private(exchange) as private:
        exchange.set_book("KRW-BTC", bids=[("137001000", "1")],
                          asks=[("137002000", "0.2"), ("137010000", "2")])
        exchange.balances["KRW"][0] = D("1000000000")
        yield exchange, private


async def open_account(exchange: FakeUpbit, private: FakeUpbitPrivate, *,
                       stream_wait: float = 10.0) -> UpbitAccount:
    settings = UpbitConfig(enabled=True, rest_url=exchange.rest_url, order_stream_url=private.url)
    account = UpbitAccount(settings, timeout=2.0, poll_interval=0.01, stream_wait=stream_wait,
                           stream_options=QUICK)
    await account.open()
    return account


def order(cid: str = "arb12b", quantity: str = "0.5") -> Order:
    return Order(cid, 12, "upbit", "BTCUSDT", Side.BUY, D("137010000"), D(quantity))


def queries(exchange: FakeUpbit) -> list[str]:
    return [r.path for r in exchange.requests if r.method == "GET" and r.path == "/v1/order"]


async def subscribed(private: FakeUpbitPrivate) -> None:
    # Upbit acknowledges no subscription: wait until the fake has read it.
    await wait_until(lambda: private.ready_connections)


def test_the_documented_my_order_event_is_one_fill() -> None:
    [report] = MyOrderParser().parse(DOC_MY_ORDER)
    assert (report.client_order_id, report.exchange_order_id, report.status,
            report.filled) == ("test-001", DOC_MY_ORDER["uuid"], None, D("0.004"))
    [fill] = report.fills
    assert (fill.fill_id, fill.price, fill.quantity, fill.fee, fill.fee_asset) == (
        "t-1", D(137001000), D("0.004"), D("274.002"), "KRW")
    assert fill.timestamp == 1710751597.5


def test_a_missed_trade_event_leaves_the_fill_to_rest() -> None:
    parser = MyOrderParser()
    [report] = parser.parse({**DOC_MY_ORDER, "trades_count": 2, "trade_uuid": "t-2"})
    assert report.fills == ()  # two trades since the last event heard: not one fill
    [report] = parser.parse({**DOC_MY_ORDER, "state": "cancel", "trades_count": 2,
                             "time_in_force": "ioc"})
    assert report.status is OrderStatus.PARTIALLY_FILLED and report.fills == ()
    assert MyOrderParser().parse({**DOC_MY_ORDER, "identifier": None}) == []


async def test_fills_are_learned_from_the_stream_without_asking_rest(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        await subscribed(private)
        assert private.logins == [True]
        placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("0.5")
    assert [(f.price, f.quantity) for f in fills] == [(D(137002000), D("0.2")),
                                                      (D(137010000), D("0.3"))]
    assert all(f.fee_asset == "KRW" and f.native_price is None for f in fills)
    assert queries(exchange) == []
    await account.close()


async def test_a_partly_filled_ioc_order_is_told_with_its_end(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        await subscribed(private)
        placed, fills = await account.place_order(order(quantity="3"))
    assert placed.status is OrderStatus.PARTIALLY_FILLED and placed.filled_quantity == D("2.2")
    assert sum(f.quantity for f in fills) == D("2.2") and queries(exchange) == []
    await account.close()


async def test_a_lost_fill_is_completed_by_rest_and_counted_once(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, stream_wait=0.3)
    async with streaming(account.order_stream):
        await subscribed(private)
        private.lose_fills = 1
        placed, fills = await account.place_order(order())
    assert queries(exchange) != []
    assert placed.status is OrderStatus.FILLED
    assert [f.quantity for f in fills] == [D("0.2"), D("0.3")]
    await account.close()


async def test_a_stream_dropped_while_the_order_fills_leaves_rest_to_tell(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        await subscribed(private)
        private.drop_after_fills = 1
        placed, fills = await account.place_order(order())
        assert placed.status is OrderStatus.FILLED
        assert [f.quantity for f in fills] == [D("0.2"), D("0.3")]
        assert queries(exchange) != []
        await wait_until(lambda: account.orders.up and private.logins.count(True) == 2)
        await subscribed(private)
        asked = len(queries(exchange))
        placed, fills = await account.place_order(order("arb13b", "0.1"))
    assert placed.status is OrderStatus.FILLED and len(fills) == 1
    assert len(queries(exchange)) == asked
    await account.close()


async def test_a_wrong_secret_is_refused_at_the_upgrade(
    fakes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exchange, private = fakes
    monkeypatch.setenv("UPBIT_SECRET_KEY", "not-the-secret")
    account = await open_account(exchange, private)
    stream = account.order_stream
    assert stream is not None
    with caplog.at_level(logging.ERROR, logger="arbotd_upbit.private"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.run)
            await wait_until(lambda: stream.refused)
            nursery.cancel_scope.cancel()
    # Refused as a login is: retried only at the backoff's longest delay.
    assert private.logins == [False] and not account.orders.up
    assert "401" in stream.describe() and "jwt_verification" in stream.describe()
    [line] = [r.getMessage() for r in caplog.records]
    assert "upbit order stream: refused" in line and "UPBIT_SECRET_KEY" in line
    assert "not-the-secret" not in line and SECRET not in line
    await account.close()


async def test_missing_keys_refuse_the_stream_without_connecting(
    fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange, private = fakes
    monkeypatch.delenv("UPBIT_ACCESS_KEY")
    account = await open_account(exchange, private)
    stream = account.order_stream
    assert stream is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.run)
        await wait_until(lambda: stream.refused)
        nursery.cancel_scope.cancel()
    assert private.logins == [] and "not set" in stream.describe()
    await account.close()


async def test_garbage_is_skipped_and_a_stalled_stream_is_reopened(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, stream_wait=0.3)
    async with streaming(account.order_stream) as stream:
        await subscribed(private)
        private.inject("garbage")
        private.inject('{"type": "myOrder", "identifier": "arb1b"}')
        await wait_until(lambda: stream.skipped_messages == 2 and private.heartbeats > 0)
        assert account.orders.up
        private.stalled = True  # not even {"status":"UP"}
        await wait_until(lambda: not account.orders.up)
        placed, fills = await account.place_order(order())  # through REST meanwhile
        assert placed.status is OrderStatus.FILLED and len(fills) == 2
        private.stalled = False
        await wait_until(lambda: account.orders.up)
    assert private.logins.count(True) >= 2


async def test_an_error_message_reconnects(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        await subscribed(private)
        private.inject('{"error":{"name":"INVALID_AUTH","message":"expired"}}')
        await wait_until(lambda: private.logins.count(True) == 2 and account.orders.up)
    await account.close()
