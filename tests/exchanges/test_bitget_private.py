"""The Bitget account learning of its fills from the private ``orders`` channel, against
fakes that verify the login signature and push each order as they match it; REST
answers only when the channel cannot."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import trio
from exchanges.fake_bitget import FakeBitget, open_fake_bitget
from exchanges.fake_bitget_private import FakeBitgetPrivate, open_fake_bitget_private
from exchanges.privatetools import QUICK, streaming, wait_until

from arbotd import Order, OrderStatus, Side
from arbotd_bitget import BitgetAccount, BitgetConfig
from arbotd_bitget.private import parse_orders

KEY = "bg_9c1e7d52-test-key"
SECRET = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
PASSPHRASE = "Passphrase4Tests"
ENV = {"BITGET_API_KEY": KEY, "BITGET_API_SECRET": SECRET, "BITGET_API_PASSPHRASE": PASSPHRASE}
D = Decimal


@pytest.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[tuple[FakeBitget, FakeBitgetPrivate]]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with open_fake_bitget(KEY, SECRET, PASSPHRASE) as exchange, \
            open_fake_bitget_private(exchange) as private:
        exchange.set_book("BTCUSDT", bids=[("99.9", "1")], asks=[("100", "0.2"), ("100.5", "2")])
        yield exchange, private


async def open_account(exchange: FakeBitget, private: FakeBitgetPrivate, *,
                       stream_wait: float = 10.0) -> BitgetAccount:
    settings = BitgetConfig(enabled=True, rest_url=exchange.rest_url,
                            order_stream_url=private.url)
    account = BitgetAccount(settings, timeout=2.0, poll_interval=0.01, stream_wait=stream_wait,
                            stream_options=QUICK)
    await account.open()
    return account


def order(cid: str = "arb12b", quantity: str = "0.5") -> Order:
    return Order(cid, 12, "bitget", "BTCUSDT", Side.BUY, D("100.5"), D(quantity))


def queries(exchange: FakeBitget) -> list[str]:
    """The REST requests that ask about orders (what the stream spares)."""
    return [r.path for r in exchange.requests if r.method == "GET" and r.path in (
        "/api/v2/spot/trade/orderInfo", "/api/v2/spot/trade/fills")]


def test_an_orders_push_is_read_as_bitget_documents_it() -> None:
    """The doc's example push (bitget-upbit-protocols.md 1.4), with a clientOid of ours."""
    push = {"action": "snapshot", "arg": {"instType": "SPOT", "channel": "orders",
                                          "instId": "BTCUSDT"}, "data": [{
        "instId": "BTCUSDT", "orderId": "1", "clientOid": "arb3b", "size": "8.0000",
        "newSize": "500.0000", "notional": "8.000000", "orderType": "market", "force": "gtc",
        "side": "buy", "fillPrice": "26256.0", "tradeId": "1", "baseVolume": "0.0003",
        "fillTime": "1695797773286", "fillFee": "-0.00000018", "fillFeeCoin": "BTC",
        "tradeScope": "T", "accBaseVolume": "0.0003", "priceAvg": "26256.0",
        "status": "partially_filled", "cTime": "1695797773257", "uTime": "1695797773326",
        "stpMode": "cancel_taker", "feeDetail": [{"feeCoin": "BTC", "fee": "-0.00000018"}],
        "enterPointSource": "WEB"}], "ts": 1695797773370}
    [report] = parse_orders(push)
    assert (report.client_order_id, report.exchange_order_id, report.status, report.filled) == (
        "arb3b", "1", None, D("0.0003"))  # partially filled: still open
    [fill] = report.fills
    assert (fill.fill_id, fill.price, fill.quantity, fill.fee, fill.fee_asset,
            fill.timestamp) == ("1", D("26256.0"), D("0.0003"), D("0.00000018"), "BTC",
                                1695797773.286)  # the charge, positive
    done = {**push["data"][0], "status": "filled"}
    assert parse_orders({**push, "data": [done]})[0].status is OrderStatus.FILLED
    cancelled = {**push["data"][0], "status": "cancelled", "accBaseVolume": "0", "tradeId": "",
                 "baseVolume": "0", "orderType": "limit", "force": "ioc"}
    [report] = parse_orders({**push, "data": [cancelled]})
    assert report.status is OrderStatus.EXPIRED and not report.fills
    assert parse_orders({**push, "data": [{**cancelled, "clientOid": ""}]}) == []


async def test_fills_are_learned_from_the_stream_without_asking_rest(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        assert private.logins == [True]
        assert private.requests[-1] == {"op": "subscribe", "args": [
            {"instType": "SPOT", "channel": "orders", "instId": "default"}]}
        placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("0.5")
    assert [(f.price, f.quantity) for f in fills] == [(D("100"), D("0.2")),
                                                      (D("100.5"), D("0.3"))]
    assert all(f.fee_asset == "BTC" and f.fee == f.quantity * D("0.001") for f in fills)
    assert queries(exchange) == []
    await account.close()


async def test_a_partly_filled_ioc_order_is_told_with_its_end(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        placed, fills = await account.place_order(order(quantity="3"))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.filled_quantity == D("2.2") and placed.reason == "filled 2.2 of 3"
    assert sum(f.quantity for f in fills) == D("2.2") and queries(exchange) == []
    await account.close()


async def test_a_fill_heard_and_listed_is_counted_once(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, stream_wait=0.3)
    async with streaming(account.order_stream):
        private.lose_fills = 1
        placed, fills = await account.place_order(order())
    assert "/api/v2/spot/trade/fills" in queries(exchange)
    assert placed.status is OrderStatus.FILLED
    assert [f.quantity for f in fills] == [D("0.2"), D("0.3")]
    await account.close()


async def test_a_stream_dropped_while_the_order_fills_leaves_rest_to_tell(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        private.drop_after_fills = 1
        placed, fills = await account.place_order(order())
        assert placed.status is OrderStatus.FILLED
        assert [f.quantity for f in fills] == [D("0.2"), D("0.3")]  # nothing doubled
        assert "/api/v2/spot/trade/orderInfo" in queries(exchange)
        await wait_until(lambda: account.orders.up and private.logins.count(True) == 2)
        asked = len(queries(exchange))
        placed, fills = await account.place_order(order("arb13b", "0.1"))
    assert placed.status is OrderStatus.FILLED and len(fills) == 1
    assert len(queries(exchange)) == asked
    await account.close()


async def test_a_wrong_passphrase_is_reported_clearly(fakes, monkeypatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    exchange, private = fakes
    monkeypatch.setenv("BITGET_API_PASSPHRASE", "not-the-passphrase")
    account = await open_account(exchange, private)
    stream = account.order_stream
    assert stream is not None
    with caplog.at_level(logging.ERROR, logger="arbotd_bitget.private"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.run)
            await wait_until(lambda: stream.refused)
            nursery.cancel_scope.cancel()
    assert private.logins == [False] and not account.orders.up
    assert stream.describe() == "down: refused: login answered 30012: Invalid ACCESS_PASSPHRASE"
    [line] = [r.getMessage() for r in caplog.records]
    assert "bitget order stream: refused" in line and "BITGET_API_PASSPHRASE" in line
    assert "not-the-passphrase" not in line and SECRET not in line
    await account.close()


async def test_garbage_is_skipped_and_a_stalled_stream_is_reopened(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, stream_wait=0.3)
    async with streaming(account.order_stream) as stream:
        private.inject("garbage")
        private.inject('{"arg": {"channel": "orders"}, "data": [{"clientOid": "arb1b"}]}')
        await wait_until(lambda: stream.skipped_messages == 2 and private.heartbeats > 0)
        assert account.orders.up
        private.stalled = True  # not even pong
        await wait_until(lambda: not account.orders.up)
        placed, fills = await account.place_order(order())  # through REST meanwhile
        assert placed.status is OrderStatus.FILLED and len(fills) == 2
        private.stalled = False
        await wait_until(lambda: account.orders.up)
    assert private.logins.count(True) >= 2
    await account.close()


async def test_a_dropped_stream_logs_in_again(fakes) -> None:
    """Bitget cuts every connection after 24 h: the stream logs in and subscribes again."""
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        private.drop_connections()
        await wait_until(lambda: private.logins.count(True) == 2 and account.orders.up)
        placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED and queries(exchange) == []
    await account.close()
