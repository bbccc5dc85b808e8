"""The OKX account learning of its fills from the private ``orders`` channel, against
fakes that verify the login signature and push each order as they match it; REST
answers only when the channel cannot."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import trio
from exchanges.fake_okx import FakeOkx, open_fake_okx
from exchanges.fake_okx_private import FakeOkxPrivate, open_fake_okx_private
from exchanges.privatetools import QUICK, streaming, wait_until

from arbotd import Order, OrderStatus, Side
from arbotd_okx import OkxAccount, OkxConfig
from arbotd_okx.private import login_request, parse_orders

KEY = "9c1e7d52-okx-test-key"
SECRET = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
PASSPHRASE = "Passphrase-4-Tests"
ENV = {"OKX_API_KEY": KEY, "OKX_API_SECRET": SECRET, "OKX_API_PASSPHRASE": PASSPHRASE}
D = Decimal


@pytest.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeOkx, FakeOkxPrivate]]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with open_fake_okx(KEY, SECRET, PASSPHRASE) as exchange, \
            open_fake_okx_private(exchange) as private:
        exchange.set_book("BTC-USDT", bids=[("99.9", "1")], asks=[("100", "0.2"), ("100.5", "2")])
        yield exchange, private


async def open_account(exchange: FakeOkx, private: FakeOkxPrivate, *,
                       stream_wait: float = 10.0) -> OkxAccount:
    settings = OkxConfig(enabled=True, rest_url=exchange.rest_url, order_stream_url=private.url)
    account = OkxAccount(settings, timeout=2.0, poll_interval=0.01, stream_wait=stream_wait,
                         stream_options=QUICK)
    await account.open()
    return account


def order(cid: str = "arb12b", quantity: str = "0.5") -> Order:
    return Order(cid, 12, "okx", "BTCUSDT", Side.BUY, D("100.5"), D(quantity))


def queries(exchange: FakeOkx) -> list[str]:
    """The REST requests that ask about orders (what the stream spares)."""
    return [r.path for r in exchange.requests
            if r.method == "GET" and r.path in ("/api/v5/trade/order", "/api/v5/trade/fills")]


def test_the_login_signature_is_okxs_documented_one() -> None:
    # exchange-protocols.md 3.2: the doc's secret and ts 1538054050.
    [args] = login_request("key", "22582BD0CFF14C41EDBF1AB98506286D", "pass",
                           1538054050)["args"]
    assert args == {"apiKey": "key", "passphrase": "pass", "timestamp": "1538054050",
                    "sign": "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M="}


def test_an_orders_push_is_read_as_okx_documents_it() -> None:
    push = {"arg": {"channel": "orders", "instType": "SPOT", "instId": "BTC-USDT"}, "data": [{
        "accFillSz": "0.001", "avgPx": "31527.1", "clOrdId": "arb3s", "fee": "-0.02522168",
        "feeCcy": "USDT", "fillFee": "-0.02522168", "fillFeeCcy": "USDT", "fillPx": "31527.1",
        "fillSz": "0.001", "fillTime": "1654084353263", "instId": "BTC-USDT",
        "ordId": "452197707845865472", "ordType": "ioc", "side": "sell", "state": "filled",
        "sz": "0.001", "tradeId": "242589207", "uTime": "1654084353264"}]}
    [report] = parse_orders(push)
    assert (report.client_order_id, report.status, report.filled) == (
        "arb3s", OrderStatus.FILLED, D("0.001"))
    [fill] = report.fills
    assert (fill.fill_id, fill.price, fill.fee, fill.fee_asset) == (
        "242589207", D("31527.1"), D("0.02522168"), "USDT")  # the charge, positive
    cancelled = {**push["data"][0], "state": "canceled", "accFillSz": "0", "tradeId": "",
                 "fillSz": "0"}
    [report] = parse_orders({**push, "data": [cancelled]})
    assert report.status is OrderStatus.EXPIRED and not report.fills


async def test_fills_are_learned_from_the_stream_without_asking_rest(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        assert private.logins == [True]
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
    assert "/api/v5/trade/fills" in queries(exchange)
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
        assert "/api/v5/trade/order" in queries(exchange)
        await wait_until(lambda: account.orders.up and private.logins.count(True) == 2)
        asked = len(queries(exchange))
        placed, fills = await account.place_order(order("arb13b", "0.1"))
    assert placed.status is OrderStatus.FILLED and len(fills) == 1
    assert len(queries(exchange)) == asked
    await account.close()


async def test_a_wrong_passphrase_is_reported_clearly(fakes, monkeypatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    exchange, private = fakes
    monkeypatch.setenv("OKX_API_PASSPHRASE", "not-the-passphrase")
    account = await open_account(exchange, private)
    stream = account.order_stream
    assert stream is not None
    with caplog.at_level(logging.ERROR, logger="arbotd_okx.private"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.run)
            await wait_until(lambda: stream.refused)
            nursery.cancel_scope.cancel()
    assert private.logins == [False] and not account.orders.up
    assert stream.describe() == "down: refused: login answered 60024: Wrong passphrase"
    [line] = [r.getMessage() for r in caplog.records]
    assert "okx order stream: refused" in line and "OKX_API_PASSPHRASE" in line
    assert "not-the-passphrase" not in line and SECRET not in line
    await account.close()


async def test_garbage_is_skipped_and_a_stalled_stream_is_reopened(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, stream_wait=0.3)
    async with streaming(account.order_stream) as stream:
        private.inject("garbage")
        private.inject('{"arg": {"channel": "orders"}, "data": [{"clOrdId": "arb1b"}]}')
        await wait_until(lambda: stream.skipped_messages == 2 and private.heartbeats > 0)
        assert account.orders.up
        private.stalled = True  # not even pong
        await wait_until(lambda: not account.orders.up)
        placed, fills = await account.place_order(order())  # through REST meanwhile
        assert placed.status is OrderStatus.FILLED and len(fills) == 2
        private.stalled = False
        await wait_until(lambda: account.orders.up)
    assert private.logins.count(True) >= 2


async def test_a_service_upgrade_notice_reconnects(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        private.inject('{"event": "notice", "code": "64008", "msg": "The connection will '
                       'soon be closed for a service upgrade. Please reconnect.", '
                       '"connId": "a4d3ae55"}')
        await wait_until(lambda: private.logins.count(True) == 2 and account.orders.up)
    await account.close()
