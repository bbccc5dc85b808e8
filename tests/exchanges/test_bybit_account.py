"""The Bybit trading account against the fake Bybit: trading rules and rounding, balances,
IOC limit and market orders matched against the fake book, and the faults a live trade
must survive (a lost answer, a duplicate order id, lagging order and execution lists)."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
import pytest
import trio
from fake_bybit import DOC_SPOT_INSTRUMENT, FakeBybit, open_fake_bybit

import arbotd_bybit.plugin as bybit_plugin
from arbotd import (
    ExchangeAccount,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Quote,
    Side,
    TemporaryExchangeError,
    client_order_id,
)
from arbotd_bybit import BybitAccount, BybitConfig, BybitFeed, BybitRetCodeError
from arbotd_bybit.account import order_status, parse_instrument

KEY = "bybit-account-test-key"
SECRET = "bybit-account-test-secret"
KEY_ENV = "ARBOTD_TEST_BYBIT_KEY"
SECRET_ENV = "ARBOTD_TEST_BYBIT_SECRET"
CREATE = "/v5/order/create"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBybit]:
    async with open_fake_bybit(KEY, SECRET) as server:
        yield server


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)


def settings(fake: FakeBybit, **changes: object) -> BybitConfig:
    return BybitConfig(enabled=True, ws_url=fake.ws_url, rest_url=fake.rest_url,  # type: ignore[arg-type]
                       api_key_env=KEY_ENV, api_secret_env=SECRET_ENV, **changes)


@pytest.fixture
async def account(fake: FakeBybit, keys: None) -> AsyncIterator[BybitAccount]:
    account = BybitAccount(settings(fake), poll_interval=0.01, final_timeout=2.0, timeout=2.0)
    await account.open()
    yield account
    await account.close()


def order(quantity: str, price: str, side: Side = Side.BUY, trade_id: int = 12,
          symbol: str = "BTCUSDT", leg: str = "b") -> Order:
    return Order(client_order_id(trade_id, leg), trade_id, "bybit", symbol, side,
                 Decimal(price), Decimal(quantity))


def creates(fake: FakeBybit) -> list[dict]:
    return [orjson.loads(r.body) for r in fake.requests if r.path == CREATE]


# --- rules --------------------------------------------------------------------------------


def test_rules_of_the_documented_spot_instrument_and_rounding() -> None:
    rules = parse_instrument(DOC_SPOT_INSTRUMENT)
    assert (rules.symbol, rules.tick_size, rules.step_size) == (
        "BTCUSDT", Decimal("0.1"), Decimal("0.000001"))
    assert (rules.min_qty, rules.max_qty, rules.max_market_qty, rules.min_notional) == (
        Decimal("0.000011"), Decimal("83"), Decimal("41.5"), Decimal("5"))
    assert rules.trading and rules.status == "Trading"
    assert rules.round_price(Decimal("16611.37"), "buy") == Decimal("16611.3")
    assert rules.round_price(Decimal("16611.37"), "sell") == Decimal("16611.4")
    assert rules.round_quantity(Decimal("0.1234567")) == Decimal("0.123456")
    assert "notional" in rules.problem(Decimal("0.0002"), Decimal("16611"))
    assert "maximum 41.5" in rules.problem(Decimal("42"), Decimal("16611"), market=True)
    assert rules.problem(Decimal("42"), Decimal("16611")) is None  # limit: 83
    assert rules.problem(Decimal("0.001"), Decimal("16611")) is None


def test_rules_of_an_older_answer_and_a_halted_symbol() -> None:
    item = orjson.loads(orjson.dumps(DOC_SPOT_INSTRUMENT))
    for key in ("maxLimitOrderQty", "maxMarketOrderQty"):
        del item["lotSizeFilter"][key]
    item["status"] = "Closed"
    rules = parse_instrument(item)
    assert rules.max_qty == Decimal("83") and rules.max_market_qty is None
    assert not rules.trading
    assert "not trading (status Closed)" in rules.problem(Decimal("1"), Decimal("16611"))


@pytest.mark.parametrize(("status", "filled", "expected"), [
    ("New", "0", None),
    ("PartiallyFilled", "0.1", None),
    ("Filled", "0.1", OrderStatus.FILLED),
    ("PartiallyFilledCanceled", "0.05", OrderStatus.PARTIALLY_FILLED),
    ("Cancelled", "0", OrderStatus.EXPIRED),
    ("Cancelled", "0.05", OrderStatus.PARTIALLY_FILLED),
    ("Rejected", "0", OrderStatus.REJECTED),
    ("Deactivated", "0", OrderStatus.CANCELLED),
])
def test_order_statuses(status: str, filled: str, expected: OrderStatus | None) -> None:
    assert order_status(status, Decimal(filled)) is expected


async def test_open_loads_the_clock_offset_and_every_rule(fake: FakeBybit, keys: None) -> None:
    fake.skew_ms = 3000
    account = BybitAccount(settings(fake))
    assert account.rules("BTCUSDT") is None  # not loaded yet
    await account.open()
    try:
        assert isinstance(account, ExchangeAccount)
        assert abs(account.rest.offset_ms - 3000) < 500
        assert account.rules("BTCUSDT") == parse_instrument(DOC_SPOT_INSTRUMENT)
        assert account.rules("ethusdt").step_size == Decimal("0.00001")
        assert account.rules("NOPEUSDT") is None
        assert account.rules_loaded_at is not None
    finally:
        await account.close()


# --- credentials, balances, plugin ------------------------------------------------------------


async def test_missing_credentials_are_named(fake: FakeBybit,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    account = BybitAccount(settings(fake))
    assert account.missing_credentials() == [KEY_ENV]
    with pytest.raises(PermanentExchangeError, match="not configured"):
        await account.balances()
    await account.close()
    assert not [r for r in fake.requests if r.path != "/v5/market/time"]


async def test_balances(account: BybitAccount, fake: FakeBybit) -> None:
    assert account.missing_credentials() == []
    balances = await account.balances()
    assert balances == {
        "BTC": (Decimal("0.9"), Decimal("0.1")),
        "ETH": (Decimal("10"), Decimal("0")),
        "USDT": (Decimal("99750"), Decimal("250")),
    }
    assert "accountType=UNIFIED" in fake.requests[-1].query


def test_the_account_is_kept_across_reloads_while_its_settings_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_API_SECRET", raising=False)
    runtime = types.SimpleNamespace(plugin_state={}, clock=lambda: 1.0)
    base = BybitConfig(enabled=True, rest_url="http://127.0.0.1:1")
    assert bybit_plugin.register_accounts(config={"exchanges.bybit": BybitConfig()},
                                          runtime=runtime) == []
    [first] = bybit_plugin.register_accounts(config={"exchanges.bybit": base}, runtime=runtime)
    # Made without keys too, saying which are missing.
    assert first.missing_credentials() == ["BYBIT_API_KEY", "BYBIT_API_SECRET"]
    # A change the account does not depend on (a fee, the stream) keeps the same object.
    fees = BybitConfig(enabled=True, rest_url="http://127.0.0.1:1", taker_fee=0.0006,
                       stale_after_seconds=3)
    [again] = bybit_plugin.register_accounts(config={"exchanges.bybit": fees}, runtime=runtime)
    assert again is first
    moved = BybitConfig(enabled=True, rest_url="http://127.0.0.1:2")
    [other] = bybit_plugin.register_accounts(config={"exchanges.bybit": moved}, runtime=runtime)
    assert other is not first and runtime.plugin_state["bybit.account"] is other


# --- orders ---------------------------------------------------------------------------------


async def test_an_ioc_limit_buy_fills_with_the_fee_in_the_base_coin(
    account: BybitAccount, fake: FakeBybit
) -> None:
    placed, fills = await account.place_order(order("0.1", "16611.0"))
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == Decimal("0.1")
    assert placed.exchange_order_id and placed.reason is None
    [fill] = fills
    assert (fill.order_id, fill.trade_id, fill.exchange, fill.side) == (
        "arb12b", 12, "bybit", Side.BUY)
    assert (fill.price, fill.quantity, fill.fee, fill.fee_asset) == (
        Decimal("16611"), Decimal("0.1"), Decimal("0.0001"), "BTC")
    [sent] = creates(fake)
    assert sent == {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "qty": "0.1",
                    "timeInForce": "IOC", "orderLinkId": "arb12b", "orderType": "Limit",
                    "price": "16611"}
    assert (await account.balances())["BTC"][0] == Decimal("0.9999")


async def test_a_book_smaller_than_the_order_fills_it_partly(
    account: BybitAccount, fake: FakeBybit
) -> None:
    fake.set_book("BTCUSDT", [("16493.5", "1")], [("16611.0", "0.04"), ("16612.0", "1")])
    placed, fills = await account.place_order(order("0.1", "16611.5"))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.filled_quantity == Decimal("0.04") == sum(f.quantity for f in fills)


async def test_an_order_walks_the_book_level_by_level(
    account: BybitAccount, fake: FakeBybit
) -> None:
    fake.set_book("BTCUSDT", [("16493.5", "1")], [("16611.0", "0.04"), ("16612.0", "1")])
    placed, fills = await account.place_order(order("0.1", "16612"))
    assert placed.status is OrderStatus.FILLED
    assert [(f.price, f.quantity) for f in fills] == [
        (Decimal("16611"), Decimal("0.04")), (Decimal("16612"), Decimal("0.06"))]


async def test_an_ioc_order_that_finds_nothing_expires(account: BybitAccount) -> None:
    placed, fills = await account.place_order(order("0.1", "16000"))
    assert placed.status is OrderStatus.EXPIRED and placed.filled_quantity == 0
    assert fills == []


async def test_a_sell_pays_its_fee_in_the_quote_coin(account: BybitAccount) -> None:
    placed, [fill] = await account.place_order(order("0.1", "16493.5", Side.SELL, leg="s"))
    assert placed.status is OrderStatus.FILLED
    assert (fill.fee, fill.fee_asset) == (Decimal("1.64935"), "USDT")


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_market_orders_are_sized_in_the_base_coin(
    account: BybitAccount, fake: FakeBybit, side: Side
) -> None:
    placed, fills = await account.place_order(order("0.2", "0", side))
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == Decimal("0.2")
    assert sum(f.quantity for f in fills) == Decimal("0.2")
    [sent] = creates(fake)
    assert sent["orderType"] == "Market" and sent["marketUnit"] == "baseCoin"
    assert "price" not in sent and sent["qty"] == "0.2"


async def test_a_rejected_order_says_why(account: BybitAccount, fake: FakeBybit) -> None:
    placed, fills = await account.place_order(order("5", "16493.5", Side.SELL))
    assert placed.status is OrderStatus.REJECTED and fills == []
    assert "170131" in placed.reason and "Insufficient balance" in placed.reason
    placed, _ = await account.place_order(order("0.1234567", "16611", trade_id=13))
    assert placed.status is OrderStatus.REJECTED and "170137" in placed.reason
    assert fake.orders == {}


async def test_a_bad_key_is_raised_not_turned_into_a_rejection(
    fake: FakeBybit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    account = BybitAccount(settings(fake))
    with pytest.raises(BybitRetCodeError) as caught:
        await account.place_order(order("0.1", "16611"))
    assert caught.value.code == 10004
    assert KEY not in str(caught.value) and "not-the-secret" not in str(caught.value)
    await account.close()


async def test_an_invalid_client_order_id_is_refused_before_sending(
    account: BybitAccount, fake: FakeBybit
) -> None:
    bad = Order("arb 1 b", 1, "bybit", "BTCUSDT", Side.BUY, Decimal("1"), Decimal("0.1"))
    with pytest.raises(PermanentExchangeError, match="orderLinkId"):
        await account.place_order(bad)
    with pytest.raises(PermanentExchangeError, match="orderLinkId"):
        await account.place_order(order("0.1", "16611", leg="x" * 40))
    assert creates(fake) == []


async def test_a_lost_answer_is_temporary_and_the_order_is_found_later(
    fake: FakeBybit, keys: None
) -> None:
    account = BybitAccount(settings(fake), poll_interval=0.01, timeout=0.3)
    await account.open()
    fake.stall_create = True
    fake.stall_seconds = 1.0
    with pytest.raises(TemporaryExchangeError, match="timed out, outcome unknown"):
        await account.place_order(order("0.1", "16611"))
    fake.stall_create = False
    found, fills = await account.query_order(order("0.1", "16611"))
    assert found.status is OrderStatus.FILLED and found.exchange_order_id
    assert sum(f.quantity for f in fills) == Decimal("0.1")
    await account.close()


async def test_a_query_waits_while_a_lost_request_could_still_arrive(
    fake: FakeBybit, keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = BybitAccount(settings(fake, recv_window_ms=1000), poll_interval=0.01)
    await account.open()
    fake.fault = "500"  # a gateway answers 502; the request is still on its way inside
    with pytest.raises(TemporaryExchangeError, match="outcome unknown"):
        await account.place_order(order("0.1", "16611"))
    fake.fault = None
    [lost] = creates(fake)
    first_answered = trio.Event()
    orders_list = FakeBybit.orders_list

    async def list_then_arrive(self: FakeBybit, params: dict[str, str], *, realtime: bool
                               ) -> dict:
        answer = await orders_list(self, params, realtime=realtime)
        if not realtime:
            first_answered.set()
        return answer

    async def arrives_after_the_first_query() -> None:
        await first_answered.wait()
        await fake.create_order(lost)

    monkeypatch.setattr(FakeBybit, "orders_list", list_then_arrive)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(arrives_after_the_first_query)
            # Not found while the request's recv window runs does not mean "never placed".
            found, fills = await account.query_order(order("0.1", "16611"))
    assert found.status is OrderStatus.FILLED
    assert sum(f.quantity for f in fills) == Decimal("0.1")
    await account.close()


async def test_a_retried_order_is_looked_up_never_placed_twice(
    account: BybitAccount, fake: FakeBybit
) -> None:
    first, first_fills = await account.place_order(order("0.1", "16611"))
    executions = len(fake.executions)
    again, again_fills = await account.place_order(order("0.1", "16611"))
    assert len(creates(fake)) == 2 and len(fake.orders) == 1
    assert len(fake.executions) == executions
    assert (again, again_fills) == (first, first_fills)


async def test_lagging_order_and_execution_lists_are_polled(
    account: BybitAccount, fake: FakeBybit
) -> None:
    fake.order_lag = 3
    fake.executions_lag = 2
    placed, fills = await account.place_order(order("0.1", "16611"))
    assert placed.status is OrderStatus.FILLED and len(fills) == 1
    polls = [r for r in fake.requests if r.path == "/v5/order/realtime"]
    assert len(polls) >= 4


async def test_an_order_that_stays_open_is_temporary(fake: FakeBybit, keys: None) -> None:
    account = BybitAccount(settings(fake), poll_interval=0.01, final_timeout=0.2)
    fake.order_lag = 10**6
    with pytest.raises(TemporaryExchangeError, match="not final"):
        await account.place_order(order("0.1", "16611"))
    fake.order_lag = 0
    found, _ = await account.query_order(order("0.1", "16611"))
    assert found.status is OrderStatus.FILLED
    await account.close()


async def test_an_acknowledged_order_bybit_does_not_list_yet_is_never_called_unknown(
    fake: FakeBybit, keys: None
) -> None:
    account = BybitAccount(settings(fake), poll_interval=0.01, final_timeout=0.2)
    fake.unlisted_lag = 10**6
    with pytest.raises(TemporaryExchangeError, match="not final"):
        await account.place_order(order("0.1", "16611"))
    # Bybit answered with an orderId: the order exists, so a query that cannot find it
    # says "ask again", never "not known" (which would read as "never placed").
    with pytest.raises(TemporaryExchangeError, match="not final"):
        await account.query_order(order("0.1", "16611"))
    fake.unlisted_lag = 0
    found, fills = await account.query_order(order("0.1", "16611"))
    assert found.status is OrderStatus.FILLED and len(fills) == 1
    await account.close()


async def test_closed_orders_are_found_in_history_after_a_bybit_restart(
    account: BybitAccount, fake: FakeBybit
) -> None:
    await account.place_order(order("0.1", "16611"))
    fake.forget_realtime = True
    found, fills = await account.query_order(order("0.1", "16611"))
    assert found.status is OrderStatus.FILLED and len(fills) == 1
    assert fake.requests[-2].path == "/v5/order/history"


async def test_an_order_bybit_does_not_know_is_permanent(account: BybitAccount) -> None:
    with pytest.raises(PermanentExchangeError, match="not known"):
        await account.query_order(order("0.1", "16611", trade_id=999))


async def test_cancel(account: BybitAccount, fake: FakeBybit) -> None:
    await account.place_order(order("0.1", "16611"))
    await account.cancel_order(order("0.1", "16611"))  # already final: nothing to do
    await account.cancel_order(order("0.1", "16611", trade_id=77))  # unknown: nothing
    fake.orders["resting"] = {**fake.orders["arb12b"], "orderLinkId": "resting",
                              "orderStatus": "New", "cumExecQty": "0"}
    resting = Order("resting", 3, "bybit", "BTCUSDT", Side.BUY, Decimal("1"), Decimal("0.1"))
    await account.cancel_order(resting)
    assert fake.orders["resting"]["orderStatus"] == "Cancelled"
    found, fills = await account.query_order(resting)
    assert found.status is OrderStatus.EXPIRED and fills == []


async def test_a_live_trade_at_the_price_the_feed_shows(
    account: BybitAccount, fake: FakeBybit
) -> None:
    feed = BybitFeed(settings(fake))
    quotes: list[Quote] = []
    sink = types.SimpleNamespace(on_quote=quotes.append, on_feed_state=lambda *a: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.stream_quotes, ["ETHUSDT"], sink)
        with trio.fail_after(5):
            while not quotes:
                await trio.sleep(0.01)
        ask = Decimal(repr(quotes[-1].ask))
        rules = account.rules("ETHUSDT")
        quantity = rules.round_quantity(Decimal("0.0123456"))
        price = rules.round_price(ask, "buy")
        assert rules.problem(quantity, price) is None
        placed, fills = await account.place_order(
            order(str(quantity), str(price), symbol="ETHUSDT", trade_id=40))
        assert placed.status is OrderStatus.FILLED
        assert [(f.price, f.quantity) for f in fills] == [(ask, quantity)]
        nursery.cancel_scope.cancel()
