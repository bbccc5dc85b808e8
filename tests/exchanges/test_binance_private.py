"""The Binance account learning of its fills from the user data stream (the WebSocket
API's ``userDataStream.subscribe.signature``), against fakes that verify the signature
and push ``executionReport`` events while they match; REST answers only when the
stream cannot."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import trio
from exchanges.fake_binance_private import FakeBinanceUserData, open_fake_binance_user_data
from exchanges.fake_binance_rest import FakeBinanceRest, open_fake_binance_rest
from exchanges.privatetools import QUICK, streaming, wait_until

from arbotd import Order, OrderStatus, Side
from arbotd_binance import BinanceAccount, BinanceConfig
from arbotd_binance.private import execution_report

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
KEY_ENV, SECRET_ENV = "ARBOTD_TEST_BINANCE_KEY", "ARBOTD_TEST_BINANCE_SECRET"
D = Decimal


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
async def fakes(keys: None) -> AsyncIterator[tuple[FakeBinanceRest, FakeBinanceUserData]]:
    async with open_fake_binance_rest(KEY, SECRET) as rest, \
            open_fake_binance_user_data(rest) as user_data:
        rest.balances["USDT"] = (D("10000"), D(0))
        # 0.004 at the best ask, the rest of a 0.01 order one tick up: two fills.
        rest.set_book("BTCUSDT", bids=[("30000.00", "0.5"), ("29999.00", "1")],
                      asks=[("30001.00", "0.004"), ("30002.00", "1")])
        yield rest, user_data


async def open_account(rest: FakeBinanceRest, user_data: FakeBinanceUserData, *,
                       stream_wait: float = 10.0) -> BinanceAccount:
    config = BinanceConfig(enabled=True, rest_url=rest.url, order_stream_url=user_data.url,
                           api_key_env=KEY_ENV, api_secret_env=SECRET_ENV)
    account = BinanceAccount(config, symbols=lambda: ("BTCUSDT",), poll_interval=0.01,
                             stream_wait=stream_wait, stream_options=QUICK)
    await account.open()
    return account


def order(cid: str = "arb1b", quantity: str = "0.01") -> Order:
    return Order(cid, 1, "binance", "BTCUSDT", Side.BUY, D("30002"), D(quantity))


def queries(rest: FakeBinanceRest) -> list[str]:
    """The REST requests that ask about orders (what the stream spares)."""
    return [f"{r.method} {r.path}" for r in rest.requests
            if r.path in ("/api/v3/order", "/api/v3/myTrades") and r.method == "GET"]


async def place_resting(account: BinanceAccount, rest: FakeBinanceRest, sent: Order
                        ) -> tuple[Order, list]:
    """Place ``sent`` so that Binance accepts it first (answered NEW) and matches it only
    once the answer is out, as an order resting a moment would."""
    rest.order_fault, rest.settle_after_queries = "pending", 1000
    result: list = []

    async def place() -> None:
        result.append(await account.place_order(sent))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(place)
        await wait_until(lambda: any(r.path == "/api/v3/order" for r in rest.requests))
        await wait_until(lambda: rest.order(sent.client_order_id) is not None)
        rest.release_pending()
    return result[0]


def test_an_execution_report_is_read_as_binance_documents_it() -> None:
    event = {"e": "executionReport", "E": 1499405658658, "s": "ETHBTC",
             "c": "mUvoqJxFIILMdfAW5iGSOW", "S": "BUY", "o": "LIMIT", "f": "IOC",
             "q": "1.00000000", "p": "0.10264410", "x": "TRADE", "X": "PARTIALLY_FILLED",
             "r": "NONE", "i": 4293153, "l": "0.40000000", "z": "0.40000000",
             "L": "0.10264410", "n": "0.00040000", "N": "ETH", "T": 1499405658657,
             "t": 56, "C": ""}
    report = execution_report(event)
    assert (report.client_order_id, report.exchange_order_id) == ("mUvoqJxFIILMdfAW5iGSOW",
                                                                  "4293153")
    assert report.status is None and report.filled == D("0.4")  # still open
    [fill] = report.fills
    assert (fill.fill_id, fill.price, fill.quantity, fill.fee, fill.fee_asset) == (
        "56", D("0.10264410"), D("0.4"), D("0.0004"), "ETH")
    ended = execution_report({**event, "x": "EXPIRED", "X": "EXPIRED", "l": "0"})
    assert ended.status is OrderStatus.PARTIALLY_FILLED and not ended.fills
    # A cancel's own id is in "c"; the order's in "C".
    cancelled = execution_report({**event, "x": "CANCELED", "X": "CANCELED", "c": "cancel1",
                                  "C": "arb7b", "z": "0"})
    assert cancelled.client_order_id == "arb7b" and cancelled.status is OrderStatus.CANCELLED


async def test_fills_are_learned_from_the_stream_without_asking_rest(fakes) -> None:
    rest, user_data = fakes
    account = await open_account(rest, user_data)
    async with streaming(account.order_stream):
        assert user_data.logins == [True]
        placed, fills = await place_resting(account, rest, order())
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("0.01")
    assert [(f.price, f.quantity) for f in fills] == [(D("30001"), D("0.004")),
                                                      (D("30002"), D("0.006"))]
    assert all(f.fee_asset == "BTC" and f.fee == f.quantity * D("0.001") for f in fills)
    assert queries(rest) == []  # the POST answered NEW; the stream told the rest
    await account.close()


async def test_an_answer_lost_in_a_5xx_is_told_by_the_stream(fakes) -> None:
    rest, user_data = fakes
    account = await open_account(rest, user_data)
    rest.order_fault = "500"  # matched, then answered HTTP 500: outcome unknown to REST
    async with streaming(account.order_stream):
        placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    assert sum(f.quantity for f in fills) == D("0.01") and len(fills) == 2
    assert queries(rest) == []
    await account.close()


async def test_a_fill_heard_and_listed_is_counted_once(fakes) -> None:
    rest, user_data = fakes
    account = await open_account(rest, user_data, stream_wait=0.3)
    async with streaming(account.order_stream):
        user_data.lose_fills = 1  # the first fill's event never arrives; the second does
        placed, fills = await place_resting(account, rest, order())
    # The stream could not tell all of it (one fill missing): REST was asked, and the
    # fill both told is there once.
    assert "GET /api/v3/myTrades" in queries(rest)
    assert placed.status is OrderStatus.FILLED
    assert [(f.price, f.quantity) for f in fills] == [(D("30001"), D("0.004")),
                                                      (D("30002"), D("0.006"))]
    heard = account.orders.get("arb1b")
    assert heard is not None and list(heard.fills) == [str(rest.order("arb1b").trades[1]["id"])]
    await account.close()


async def test_a_stream_dropped_while_the_order_fills_leaves_rest_to_tell(fakes) -> None:
    rest, user_data = fakes
    account = await open_account(rest, user_data)
    async with streaming(account.order_stream):
        user_data.drop_after_fills = 1  # gone right after the first fill's event
        placed, fills = await place_resting(account, rest, order())
        assert placed.status is OrderStatus.FILLED
        assert [f.quantity for f in fills] == [D("0.004"), D("0.006")]  # nothing doubled
        assert "GET /api/v3/order" in queries(rest)
        # The stream comes back by itself, and the next order is told by it again.
        await wait_until(lambda: account.orders.up and len(user_data.logins) == 2)
        asked = len(queries(rest))
        rest.set_book("BTCUSDT", bids=[("30000.00", "0.5")], asks=[("30001.00", "1")])
        placed, fills = await place_resting(account, rest, order("arb2b"))
    assert placed.status is OrderStatus.FILLED and len(fills) == 1
    assert len(queries(rest)) == asked
    await account.close()


async def test_a_refused_key_is_reported_and_orders_go_through_rest(
    fakes, caplog: pytest.LogCaptureFixture
) -> None:
    rest, user_data = fakes
    account = await open_account(rest, user_data)
    user_data.refuse_logins = True
    stream = account.order_stream
    assert stream is not None
    with caplog.at_level(logging.ERROR, logger="arbotd_binance.private"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.run)
            await wait_until(lambda: stream.refused)
            placed, fills = await account.place_order(order())
            nursery.cancel_scope.cancel()
    assert user_data.logins[0] is False and not account.orders.up
    assert stream.describe().startswith("down: refused: userDataStream.subscribe.signature "
                                        "answered 401: code -2015")
    [line] = [r.getMessage() for r in caplog.records]
    assert "binance order stream: refused" in line and "-2015" in line
    assert KEY_ENV in line and SECRET_ENV in line and "through REST" in line
    assert KEY not in line and SECRET not in line
    assert placed.status is OrderStatus.FILLED and len(fills) == 2
    await account.close()


async def test_a_wrong_secret_is_refused_by_the_signature(fakes, monkeypatch) -> None:
    rest, user_data = fakes
    account = await open_account(rest, user_data)
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    stream = account.order_stream
    assert stream is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.run)
        await wait_until(lambda: stream.refused)
        nursery.cancel_scope.cancel()
    assert "code -1022" in stream.describe()
    await account.close()


async def test_garbage_is_skipped_and_a_stalled_stream_is_reopened(fakes) -> None:
    rest, user_data = fakes
    account = await open_account(rest, user_data, stream_wait=0.3)
    async with streaming(account.order_stream) as stream:
        user_data.inject("{not json")
        user_data.inject('{"subscriptionId": 0, "event": {"e": "executionReport"}}')
        await wait_until(lambda: stream.skipped_messages == 2)
        assert account.orders.up
        user_data.stalled = True  # nothing more, not even answers to heartbeats
        await wait_until(lambda: not account.orders.up)
        # Meanwhile an order is still settled, through REST.
        placed, fills = await account.place_order(order())
        assert placed.status is OrderStatus.FILLED and len(fills) == 2
        user_data.stalled = False
        await wait_until(lambda: account.orders.up)
    assert user_data.logins.count(True) >= 2
