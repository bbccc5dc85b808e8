"""The Bybit account learning of its fills from the private stream's ``order.spot`` and
``execution.spot`` topics, against fakes that verify the ``auth`` signature and push
both topics while they match; REST answers only when the stream cannot."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import trio
from exchanges.fake_bybit import FakeBybit, open_fake_bybit
from exchanges.fake_bybit_private import FakeBybitPrivate, open_fake_bybit_private
from exchanges.privatetools import QUICK, streaming, wait_until

from arbotd import Order, OrderStatus, Side, TemporaryExchangeError, client_order_id
from arbotd_bybit import BybitAccount, BybitConfig
from arbotd_bybit.private import auth_request, parse_private

KEY, SECRET = "bybit-private-test-key", "bybit-private-test-secret"
KEY_ENV, SECRET_ENV = "ARBOTD_TEST_BYBIT_KEY", "ARBOTD_TEST_BYBIT_SECRET"
D = Decimal


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
async def fakes(keys: None) -> AsyncIterator[tuple[FakeBybit, FakeBybitPrivate]]:
    async with open_fake_bybit(KEY, SECRET) as exchange, \
            open_fake_bybit_private(exchange) as private:
        # 0.004 at the best ask, the rest of a 0.01 order one tick up: two executions.
        exchange.set_book("BTCUSDT", [("16610.0", "1")], [("16611.0", "0.004"), ("16611.5", "1")])
        yield exchange, private


async def open_account(exchange: FakeBybit, private: FakeBybitPrivate, *,
                       stream_wait: float = 10.0, timeout: float = 5.0) -> BybitAccount:
    config = BybitConfig(enabled=True, ws_url=exchange.ws_url, rest_url=exchange.rest_url,
                         order_stream_url=private.url, api_key_env=KEY_ENV,
                         api_secret_env=SECRET_ENV)
    account = BybitAccount(config, poll_interval=0.01, final_timeout=5.0, timeout=timeout,
                           stream_wait=stream_wait, stream_options=QUICK)
    await account.open()
    return account


def order(leg: str = "b", trade_id: int = 12) -> Order:
    return Order(client_order_id(trade_id, leg), trade_id, "bybit", "BTCUSDT", Side.BUY,
                 D("16612"), D("0.01"))


def queries(exchange: FakeBybit) -> list[str]:
    """The REST requests that ask about orders (what the stream spares)."""
    return [r.path for r in exchange.requests
            if r.path in ("/v5/order/realtime", "/v5/order/history", "/v5/execution/list")]


def test_the_auth_signature_is_bybits_documented_one() -> None:
    # exchange-protocols.md 2.2: secret "testSecretKey", "GET/realtime1662350400000".
    request = auth_request("XXXXXXXXXX", "testSecretKey", 1662350400000)
    assert request["op"] == "auth"
    assert request["args"] == ["XXXXXXXXXX", 1662350400000,
                               "52a3f57c163316264d0b5531fd3ec6afa65f26e26b3a25c47e812bcedd6b8bf6"]


def test_order_and_execution_messages_are_read_as_bybit_documents_them() -> None:
    [filled] = parse_private({"topic": "order.spot", "creationTime": 1, "data": [
        {"category": "spot", "orderId": "1", "orderLinkId": "arb1b", "orderStatus": "Filled",
         "cumExecQty": "0.5", "rejectReason": "EC_NoError"},
        {"category": "spot", "orderId": "2", "orderLinkId": "", "orderStatus": "New",
         "cumExecQty": "0"}]})  # a manual order (no link id) is not arbotd's
    assert (filled.client_order_id, filled.status, filled.filled) == (
        "arb1b", OrderStatus.FILLED, D("0.5"))
    [executions] = parse_private({"topic": "execution.spot", "data": [
        {"category": "spot", "orderId": "1", "orderLinkId": "arb1b", "execId": "e1",
         "execPrice": "95900.1", "execQty": "0.2", "execFee": "0.0002", "feeCurrency": "BTC",
         "execType": "Trade", "execTime": "1746270400353"},
        {"category": "spot", "orderId": "1", "orderLinkId": "arb1b", "execId": "e2",
         "execPrice": "95900.2", "execQty": "0.3", "execFee": "0.0003", "feeCurrency": "BTC",
         "execType": "Trade", "execTime": "1746270400354"}]})
    assert [(f.fill_id, f.quantity) for f in executions.fills] == [("e1", D("0.2")),
                                                                   ("e2", D("0.3"))]
    assert parse_private({"op": "pong", "args": ["1"], "conn_id": "x"}) == []


async def test_fills_are_learned_from_the_stream_without_asking_rest(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        assert private.logins == [True]
        placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("0.01")
    assert placed.exchange_order_id == exchange.orders["arb12b"]["orderId"]
    assert [(f.price, f.quantity) for f in fills] == [(D("16611"), D("0.004")),
                                                      (D("16611.5"), D("0.006"))]
    assert all(f.fee_asset == "BTC" and f.fee == f.quantity * D("0.001") for f in fills)
    assert queries(exchange) == []
    await account.close()


async def test_an_unanswered_create_is_told_by_the_stream(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, timeout=0.5)
    exchange.stall_create, exchange.stall_seconds = True, 3.0  # placed; the answer is late
    async with streaming(account.order_stream):
        placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED and len(fills) == 2
    assert queries(exchange) == []
    await account.close()


async def test_an_unanswered_create_the_stream_missed_is_left_to_query(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, timeout=0.5, stream_wait=0.2)
    exchange.stall_create, exchange.stall_seconds = True, 3.0
    async with streaming(account.order_stream):
        private.stalled = True  # the stream says nothing either
        with pytest.raises(TemporaryExchangeError):
            await account.place_order(order())
        placed, fills = await account.query_order(order())
    assert placed.status is OrderStatus.FILLED and len(fills) == 2
    await account.close()


async def test_an_execution_heard_and_listed_is_counted_once(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, stream_wait=0.3)
    async with streaming(account.order_stream):
        private.lose_fills = 1  # the first execution's message never arrives
        exchange.executions_lag = 1  # and the execution list is empty the first time
        placed, fills = await account.place_order(order())
    assert "/v5/execution/list" in queries(exchange)
    assert placed.status is OrderStatus.FILLED
    assert [f.quantity for f in fills] == [D("0.004"), D("0.006")]
    await account.close()


async def test_a_stream_dropped_while_the_order_fills_leaves_rest_to_tell(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    async with streaming(account.order_stream):
        private.drop_after_fills = 1  # gone right after the first execution
        placed, fills = await account.place_order(order())
        assert placed.status is OrderStatus.FILLED
        assert [f.quantity for f in fills] == [D("0.004"), D("0.006")]  # nothing doubled
        assert "/v5/order/realtime" in queries(exchange)
        await wait_until(lambda: account.orders.up and private.logins.count(True) == 2)
        asked = len(queries(exchange))
        placed, fills = await account.place_order(order(trade_id=13))
    assert placed.status is OrderStatus.FILLED and len(fills) == 1
    assert len(queries(exchange)) == asked
    await account.close()


async def test_a_wrong_key_is_reported_clearly(fakes, monkeypatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private)
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    stream = account.order_stream
    assert stream is not None
    with caplog.at_level(logging.ERROR, logger="arbotd_bybit.private"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.run)
            await wait_until(lambda: stream.refused)
            nursery.cancel_scope.cancel()
    assert private.logins == [False] and not account.orders.up
    assert stream.describe() == "down: refused: auth answered: error:apikey invalid"
    [line] = [r.getMessage() for r in caplog.records]
    assert "bybit order stream: refused" in line and KEY_ENV in line
    assert "not-the-key" not in line and SECRET not in line
    await account.close()


async def test_garbage_is_skipped_and_a_stalled_stream_is_reopened(fakes) -> None:
    exchange, private = fakes
    account = await open_account(exchange, private, stream_wait=0.3)
    async with streaming(account.order_stream) as stream:
        private.inject("<html>502</html>")
        private.inject('{"topic": "order.spot", "data": [{"orderLinkId": "arb1b"}]}')
        await wait_until(lambda: stream.skipped_messages == 2 and private.heartbeats > 0)
        assert account.orders.up
        private.stalled = True
        await wait_until(lambda: not account.orders.up)
        placed, fills = await account.place_order(order())  # through REST meanwhile
        assert placed.status is OrderStatus.FILLED and len(fills) == 2
        private.stalled = False
        await wait_until(lambda: account.orders.up)
    assert private.logins.count(True) >= 2
