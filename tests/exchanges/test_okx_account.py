"""The OKX trading account against the fake OKX: rules and rounding, balances, IOC and
market orders filled by the fake's matching engine, rejections, lost answers and
duplicate client order ids."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
import pytest
import trio
from fake_okx import FakeOkx, instrument, open_fake_okx

from arbotd import (
    ExchangeAccount,
    Fill,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Side,
    TemporaryExchangeError,
)
from arbotd.exchange import common_quantity
from arbotd_okx import OkxAccount, OkxConfig, okx_client_order_id
from arbotd_okx.account import parse_instruments

KEY = "9c1e7d52-okx-test-key"
SECRET = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
PASSPHRASE = "Passphrase-4-Tests"
ENV = {"OKX_API_KEY": KEY, "OKX_API_SECRET": SECRET, "OKX_API_PASSPHRASE": PASSPHRASE}
ORDER_PATH = "/api/v5/trade/order"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOkx]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with open_fake_okx(KEY, SECRET, PASSPHRASE) as server:
        server.set_book("BTC-USDT", bids=[("99.9", "1"), ("99.5", "2")],
                        asks=[("100", "1"), ("100.5", "2")])
        yield server


def make_account(fake: FakeOkx, **kwargs: object) -> OkxAccount:
    settings = OkxConfig(enabled=True, rest_url=fake.rest_url,
                         testnet=bool(kwargs.pop("testnet", False)))
    options = {"timeout": 2.0, "poll_interval": 0.01, **kwargs}
    return OkxAccount(settings, **options)  # type: ignore[arg-type]


@pytest.fixture
async def account(fake: FakeOkx) -> AsyncIterator[OkxAccount]:
    account = make_account(fake)
    await account.open()
    yield account
    await account.close()


def order(cid: str = "arb12b", side: Side = Side.BUY, price: str = "100",
          quantity: str = "0.5") -> Order:
    return Order(cid, 12, "okx", "BTCUSDT", side, Decimal(price), Decimal(quantity))


def placements(fake: FakeOkx) -> list[dict]:
    return [orjson.loads(r.body) for r in fake.requests
            if r.method == "POST" and r.path == ORDER_PATH]


# --- rules, balances, credentials ----------------------------------------------------------


async def test_open_loads_the_rules_and_they_round_orders(
    fake: FakeOkx, account: OkxAccount
) -> None:
    assert isinstance(account, ExchangeAccount)
    rules = account.rules("BTCUSDT")
    assert rules is not None and rules.trading and rules.min_notional == 0
    assert (rules.tick_size, rules.step_size, rules.min_qty) == (
        Decimal("0.1"), Decimal("0.00000001"), Decimal("0.00001"))
    assert rules.round_price(Decimal("30243.47"), "buy") == Decimal("30243.4")
    assert rules.round_price(Decimal("30243.41"), "sell") == Decimal("30243.5")
    assert rules.round_quantity(Decimal("0.123456789")) == Decimal("0.12345678")
    assert rules.problem(Decimal("0.000001"), Decimal("30000")) == (
        "quantity 0.000001 is below the minimum 0.00001")
    eth = account.rules("ETHUSDT")
    assert eth is not None
    assert common_quantity(Decimal("1.2345678"), rules, eth) == Decimal("1.234567")
    xrp = account.rules("XRPUSDT")
    assert xrp is not None and not xrp.trading
    assert xrp.problem(Decimal("10"), Decimal("0.5")) == "XRPUSDT is not trading (status suspend)"
    assert account.rules("DOGEUSDT") is None
    assert [r.path for r in fake.requests] == ["/api/v5/public/time",
                                               "/api/v5/public/instruments"]


def test_instruments_of_the_recorded_shape_are_parsed() -> None:
    data = [instrument("BTC-USD"), instrument("ETH-USD", "0.01", "0.000001", "0.0001"),
            {"instType": "SPOT", "instId": "BAD-USDT"}, {**instrument("X-USDT"), "tickSz": "x"},
            {**instrument("ETH-USDT"), "instType": "SWAP"}]
    rules = parse_instruments(data)
    assert set(rules) == {"BTCUSD", "ETHUSD"}
    assert rules["ETHUSD"].max_qty == Decimal("9999999999")
    assert rules["ETHUSD"].status == "live"


async def test_balances(fake: FakeOkx, account: OkxAccount) -> None:
    fake.balances["ETH"] = [Decimal("1.5"), Decimal("0.25")]
    balances = await account.balances()
    assert balances == {"BTC": (Decimal(2), Decimal(0)), "USDT": (Decimal(100000), Decimal(0)),
                        "ETH": (Decimal("1.5"), Decimal("0.25"))}
    assert fake.requests[-1].signature_valid is True


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    assert OkxAccount(OkxConfig()).missing_credentials() == list(ENV)
    monkeypatch.setenv("OKX_API_KEY", KEY)
    assert OkxAccount(OkxConfig()).missing_credentials() == [
        "OKX_API_SECRET", "OKX_API_PASSPHRASE"]


async def test_without_credentials_nothing_private_is_sent(
    fake: FakeOkx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OKX_API_PASSPHRASE")
    account = make_account(fake)
    with pytest.raises(PermanentExchangeError, match="not all configured"):
        await account.balances()
    assert fake.requests == []
    await account.close()


async def test_demo_trading_sends_the_simulated_trading_header(fake: FakeOkx) -> None:
    account = make_account(fake, testnet=True)
    await account.balances()
    assert fake.requests[-1].headers["x-simulated-trading"] == "1"
    await account.close()


def test_accounts_with_equal_settings_are_equal() -> None:
    assert OkxAccount(OkxConfig()) == OkxAccount(OkxConfig())
    assert OkxAccount(OkxConfig()) != OkxAccount(OkxConfig(testnet=True))


def test_client_order_ids_fit_okx() -> None:
    assert okx_client_order_id("arb12b") == "arb12b"
    mapped = okx_client_order_id("arb-12_b")
    assert mapped == okx_client_order_id("arb-12_b") and len(mapped) == 32
    assert mapped.isalnum() and mapped != okx_client_order_id("arb-12_s")
    assert len(okx_client_order_id("a" * 33)) == 32


# --- orders ----------------------------------------------------------------------------


async def test_an_ioc_buy_fills_at_the_best_ask(fake: FakeOkx, account: OkxAccount) -> None:
    placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    assert placed.filled_quantity == Decimal("0.5")
    assert placed.exchange_order_id == fake.orders["arb12b"]["ordId"]
    [fill] = fills
    assert fill == Fill("arb12b", 12, "okx", "BTCUSDT", Side.BUY, Decimal("100"),
                        Decimal("0.5"), Decimal("0.0005"), "BTC", fill.timestamp)
    [body] = placements(fake)
    assert body == {"instId": "BTC-USDT", "tdMode": "cash", "clOrdId": "arb12b", "side": "buy",
                    "sz": "0.5", "ordType": "ioc", "px": "100"}
    seen = next(r for r in fake.requests if r.method == "POST")
    assert seen.signature_valid is True
    sent_ms = fake.now_ms()
    assert sent_ms - 5000 < int(seen.headers["exptime"]) <= sent_ms + 2000
    assert fake.balances["USDT"][0] == Decimal("99950")


async def test_an_ioc_order_larger_than_the_book_fills_partly(
    fake: FakeOkx, account: OkxAccount
) -> None:
    placed, fills = await account.place_order(order(price="100.5", quantity="5"))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.filled_quantity == Decimal("3") and "filled 3 of 5" in (placed.reason or "")
    assert [(f.price, f.quantity) for f in fills] == [(Decimal("100"), Decimal("1")),
                                                      (Decimal("100.5"), Decimal("2"))]
    assert sum(f.fee for f in fills) == Decimal("0.003")


async def test_an_ioc_order_that_finds_nothing_expires(fake: FakeOkx, account: OkxAccount) -> None:
    placed, fills = await account.place_order(order(price="99"))
    assert placed.status is OrderStatus.EXPIRED and placed.filled_quantity == 0
    assert fills == [] and "no liquidity" in (placed.reason or "")


async def test_an_ioc_sell_pays_its_fee_in_quote(fake: FakeOkx, account: OkxAccount) -> None:
    placed, [fill] = await account.place_order(order("arb13s", Side.SELL, "99.9", "0.8"))
    assert placed.status is OrderStatus.FILLED
    assert (fill.side, fill.price, fill.quantity, fill.fee, fill.fee_asset) == (
        Side.SELL, Decimal("99.9"), Decimal("0.8"), Decimal("0.07992"), "USDT")


async def test_a_market_buy_is_sized_in_base_currency(fake: FakeOkx, account: OkxAccount) -> None:
    placed, fills = await account.place_order(order("arb14h", price="0", quantity="1.5"))
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == Decimal("1.5")
    assert sum(f.quantity for f in fills) == Decimal("1.5")
    [body] = placements(fake)
    assert (body["ordType"], body["tgtCcy"], body["sz"]) == ("market", "base_ccy", "1.5")
    assert "px" not in body


async def test_a_market_sell(fake: FakeOkx, account: OkxAccount) -> None:
    placed, fills = await account.place_order(order("arb15u0", Side.SELL, "0", "2"))
    assert placed.status is OrderStatus.FILLED
    assert [(f.price, f.quantity) for f in fills] == [(Decimal("99.9"), Decimal("1")),
                                                      (Decimal("99.5"), Decimal("1"))]


async def test_a_refused_order_is_rejected_with_the_reason(
    fake: FakeOkx, account: OkxAccount
) -> None:
    fake.reject_next = ("54109", "You haven't activated trading for this pair.")
    placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.REJECTED and fills == []
    assert "54109" in (placed.reason or "") and "activated" in (placed.reason or "")
    fake.balances["USDT"][0] = Decimal("10")
    placed, _ = await account.place_order(order("arb16b"))
    assert placed.status is OrderStatus.REJECTED and "51008" in (placed.reason or "")


async def test_an_order_the_rules_refuse_is_not_sent(fake: FakeOkx, account: OkxAccount) -> None:
    placed, fills = await account.place_order(order(quantity="0.000001"))
    assert placed.status is OrderStatus.REJECTED and fills == []
    assert "below the minimum" in (placed.reason or "")
    assert placements(fake) == []


async def test_an_order_with_a_long_client_id_goes_out_mapped(
    fake: FakeOkx, account: OkxAccount
) -> None:
    placed, _ = await account.place_order(order("arb-12_b-with-a-very-long-suffix"))
    assert placed.status is OrderStatus.FILLED
    assert placements(fake)[0]["clOrdId"] == okx_client_order_id(
        "arb-12_b-with-a-very-long-suffix")
    queried, fills = await account.query_order(order("arb-12_b-with-a-very-long-suffix"))
    assert queried.status is OrderStatus.FILLED
    assert fills[0].order_id == "arb-12_b-with-a-very-long-suffix"


async def test_an_order_still_live_is_polled_until_final(
    fake: FakeOkx, account: OkxAccount
) -> None:
    fake.pending_queries = 2
    placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    queries = [r for r in fake.requests if r.method == "GET" and r.path == ORDER_PATH]
    assert len(queries) == 3


async def test_an_order_that_never_becomes_final_is_temporary(fake: FakeOkx) -> None:
    account = make_account(fake, poll_attempts=3)
    fake.pending_queries = 100
    with pytest.raises(TemporaryExchangeError, match="still live after 3 queries"):
        await account.place_order(order())
    await account.cancel_order(order())  # it was still open: the cancel goes through
    queried, _ = await account.query_order(order())
    assert queried.status is OrderStatus.FILLED
    await account.close()


async def test_fills_lagging_behind_the_order_fall_back_to_its_totals(
    fake: FakeOkx, account: OkxAccount
) -> None:
    fake.fills_lag = True
    placed, [fill] = await account.place_order(order(price="100.5", quantity="2"))
    assert placed.status is OrderStatus.FILLED
    assert (fill.quantity, fill.price, fill.fee, fill.fee_asset) == (
        Decimal("2"), Decimal("100.25"), Decimal("0.002"), "BTC")


async def test_a_lost_answer_is_found_by_a_query_and_never_sent_twice(
    fake: FakeOkx,
) -> None:
    account = make_account(fake, timeout=0.3)
    fake.stall_orders = True  # placed, but the answer comes too late
    fake.stall_seconds = 1.5
    with pytest.raises(TemporaryExchangeError, match="timed out"):
        await account.place_order(order())
    fake.stall_orders = False
    queried, fills = await account.query_order(order())
    assert queried.status is OrderStatus.FILLED and len(fills) == 1
    # The caller retries the placement: it is looked up, not sent again.
    again, fills_again = await account.place_order(order())
    assert again == queried and fills_again == fills
    assert len(placements(fake)) == 1 and len(fake.orders) == 1
    await account.close()


async def test_a_retry_sends_an_order_the_exchange_never_got(fake: FakeOkx) -> None:
    account = make_account(fake, timeout=0.3)
    fake.rest_fault = "500"
    with pytest.raises(TemporaryExchangeError, match="HTTP 500"):
        await account.place_order(order())
    fake.rest_fault = None
    first_try = fake.requests[-1]
    placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    assert len(fake.orders) == 1
    # The lookup waited until the first request's expTime had passed.
    lookup = next(r for r in fake.requests if r.method == "GET" and r.path == ORDER_PATH)
    looked_at = dt.datetime.strptime(lookup.headers["ok-access-timestamp"],
                                     "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    assert looked_at.timestamp() * 1000 >= int(first_try.headers["exptime"])
    await account.close()


async def test_a_query_waits_while_a_lost_request_could_still_be_executed(
    fake: FakeOkx, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(fake, timeout=0.5)
    fake.rest_fault = "500"  # answered 500 while the request is still on its way inside
    with pytest.raises(TemporaryExchangeError, match="HTTP 500"):
        await account.place_order(order())
    fake.rest_fault = None
    lost = orjson.loads(fake.requests[-1].body)
    first_answered = trio.Event()
    detail = FakeOkx.order_detail

    def detail_then_arrive(self: FakeOkx, query: dict[str, str]) -> tuple[int, dict]:
        answer = detail(self, query)
        first_answered.set()
        return answer

    async def arrives_after_the_first_query() -> None:
        await first_answered.wait()
        fake.place(lost)

    monkeypatch.setattr(FakeOkx, "order_detail", detail_then_arrive)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(arrives_after_the_first_query)
            # Before the request's expTime, "does not exist" does not mean "never placed".
            found, fills = await account.query_order(order())
    assert found.status is OrderStatus.FILLED and len(fills) == 1
    assert len(fake.orders) == 1
    await account.close()


async def test_a_duplicate_client_order_id_is_looked_up(fake: FakeOkx) -> None:
    first = make_account(fake)
    placed, fills = await first.place_order(order())
    await first.close()
    # A restarted daemon (no memory of what it sent) retries the same order.
    second = make_account(fake)
    again, fills_again = await second.place_order(order())
    assert again == placed and fills_again == fills
    assert len(placements(fake)) == 2 and len(fake.orders) == 1 and len(fake.fills) == 1
    await second.close()


async def test_a_rate_limited_placement_is_temporary(fake: FakeOkx, account: OkxAccount) -> None:
    fake.rest_fault = "429"
    with pytest.raises(TemporaryExchangeError, match="rate limit") as caught:
        await account.place_order(order())
    assert caught.value.retry_after == 2.0
    assert fake.orders == {}


async def test_querying_an_order_never_placed_is_permanent(
    fake: FakeOkx, account: OkxAccount
) -> None:
    with pytest.raises(PermanentExchangeError, match="not known to OKX"):
        await account.query_order(order("arb99b"))


async def test_cancelling_a_final_or_unknown_order_is_quiet(
    fake: FakeOkx, account: OkxAccount
) -> None:
    await account.place_order(order())
    await account.cancel_order(order())
    await account.cancel_order(order("arb99b"))
    cancels = [r for r in fake.requests if r.path == "/api/v5/trade/cancel-order"]
    assert len(cancels) == 2 and all(r.signature_valid for r in cancels)


async def test_secrets_never_in_errors_or_logs(
    fake: FakeOkx, account: OkxAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert all(s not in repr(account) for s in (KEY, SECRET, PASSPHRASE))
    errors: list[Exception] = []
    for fault in ("500", "429"):
        fake.rest_fault = fault
        try:
            await account.place_order(order(f"arb{fault}b"))
        except TemporaryExchangeError as err:
            errors.append(err)
    fake.rest_fault = None
    fake.reject_next = ("51008", "Order failed. Insufficient USDT balance")
    rejected, _ = await account.place_order(order("arb7b"))
    await account.place_order(order())
    try:
        await account.query_order(order("arb99b"))
    except PermanentExchangeError as err:
        errors.append(err)
    assert len(errors) == 3
    texts = [str(e) for e in errors] + [rejected.reason or ""]
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        for secret in (KEY, SECRET, PASSPHRASE):
            assert secret not in text
