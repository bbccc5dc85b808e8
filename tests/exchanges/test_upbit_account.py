"""The Upbit trading account against the fake Upbit: KRW rules and tick bands, balances,
IOC limit orders and market sells by identifier in KRW, rejections (local and Upbit's),
lost answers and identifiers never placed twice, rate limits and secrets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
import pytest
from fake_upbit import FakeUpbit, open_fake_upbit

from arbotd import (
    ExchangeAccount,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Side,
    TemporaryExchangeError,
)
from arbotd_upbit import UpbitAccount, UpbitConfig
from arbotd_upbit.account import parse_balances, parse_markets

ACCESS = "upbit-test-access-key-0123456789abcdefghij"
SECRET = "upbit-test-secret-key-0123456789abcdefghij"
ENV = {"UPBIT_ACCESS_KEY": ACCESS, "UPBIT_SECRET_KEY": SECRET}
D = Decimal


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUpbit]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with open_fake_upbit(ACCESS, SECRET) as server:
        yield server


def make_account(fake: FakeUpbit, **kwargs: object) -> UpbitAccount:
    settings = UpbitConfig(enabled=True, rest_url=fake.rest_url)
    options = {"timeout": 2.0, "poll_interval": 0.01, **kwargs}
    return UpbitAccount(settings, **options)  # type: ignore[arg-type]


@pytest.fixture
async def account(fake: FakeUpbit) -> AsyncIterator[UpbitAccount]:
    account = make_account(fake)
    await account.open()
    yield account
    await account.close()


def order(cid: str = "arb12b", side: Side = Side.BUY, price: str = "137002000",
          quantity: str = "0.5", symbol: str = "BTCUSDT") -> Order:
    return Order(cid, 12, "upbit", symbol, side, D(price), D(quantity))


def placements(fake: FakeUpbit) -> list[dict]:
    return [orjson.loads(r.body) for r in fake.requests
            if r.method == "POST" and r.path == "/v1/orders"]


# --- rules, balances, credentials ---------------------------------------------------------


async def test_open_loads_krw_rules_that_round_to_the_band_tick(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    assert isinstance(account, ExchangeAccount)
    rules = account.rules("BTCUSDT")
    assert rules is not None and rules.trading
    assert (rules.tick_size, rules.step_size, rules.min_notional) == (
        D(1000), D("0.00000001"), D(5000))
    # Prices are KRW, on the grid of their band, never crossing the limit.
    assert rules.round_price(D("137001999"), "buy") == D("137001000")
    assert rules.round_price(D("137001001"), "sell") == D("137002000")
    assert rules.round_price(D("999700"), "sell") == D("1000000")  # into the 1,000 band
    assert rules.round_price(D("1375.6"), "buy") == D("1375")
    assert rules.round_price(D("54321"), "sell") == D("54350")
    assert rules.problem(D("0.00003"), D("137001000")) == (
        "notional 4110.03 is below the minimum 5000")
    usdt = account.rules("USDTKRW")
    assert usdt is not None and usdt.tick_at(D("1375")) == D(1)
    assert account.rules("DOGEUSDT") is None
    assert [r.path for r in fake.requests] == ["/v1/market/all", "/v1/orderbook/instruments"]


@pytest.mark.parametrize(("price", "tick"), [
    ("2500000", "1000"), ("1000000", "1000"), ("999999", "500"), ("500000", "500"),
    ("499999", "100"), ("100000", "100"), ("99999", "50"), ("50000", "50"), ("49999", "10"),
    ("10000", "10"), ("9999", "5"), ("5000", "5"), ("4999", "1"), ("100", "1"),
    ("99.9", "0.01"), ("5.5", "0.001"),
])
def test_krw_tick_bands(price: str, tick: str) -> None:
    from arbotd_upbit import krw_tick
    assert krw_tick(D(price)) == D(tick)


def test_below_100_krw_a_coarser_listed_tick_wins() -> None:
    [rules] = parse_markets([{"market": "KRW-XRP"}], {"KRW-XRP": D("0.1")}).values()
    assert rules.symbol == "XRPUSDT"
    assert rules.tick_at(D("55.55")) == D("0.1")
    assert rules.price_problem(D("55.55")) == (
        "price 55.55 KRW is not on the tick of 0.1 KRW of its band (XRPUSDT)")
    assert rules.tick_at(D("5000")) == D(5)  # the band table above 100 KRW


def test_markets_and_balances_of_the_documented_shapes() -> None:
    rules = parse_markets([{"market": "KRW-BTC"}, {"market": "BTC-ETH"},
                           {"market": "KRW-USDT"}, {"nothing": 1}], {})
    assert set(rules) == {"BTCUSDT", "USDTKRW"}
    assert parse_balances([{"currency": "KRW", "balance": "1000.5", "locked": "10",
                            "avg_buy_price": "0", "unit_currency": "KRW"}]) == {
        "KRW": (D("1000.5"), D(10))}


async def test_balances_are_signed_and_in_krw(fake: FakeUpbit, account: UpbitAccount) -> None:
    balances = await account.balances()
    assert balances["KRW"] == (D("100000000"), D(0)) and balances["BTC"] == (D(1), D(0))
    seen = fake.requests[-1]
    assert seen.signature_valid is True
    assert seen.headers["authorization"].startswith("Bearer ")


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    assert UpbitAccount(UpbitConfig()).missing_credentials() == list(ENV)
    monkeypatch.setenv("UPBIT_ACCESS_KEY", ACCESS)
    assert UpbitAccount(UpbitConfig()).missing_credentials() == ["UPBIT_SECRET_KEY"]


async def test_without_credentials_nothing_private_is_sent(
    fake: FakeUpbit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UPBIT_SECRET_KEY")
    account = make_account(fake)
    with pytest.raises(PermanentExchangeError, match="not both configured"):
        await account.balances()
    assert fake.requests == []
    await account.close()


async def test_a_wrong_secret_is_refused_naming_what_to_check(
    fake: FakeUpbit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPBIT_SECRET_KEY", "not-the-secret")
    account = make_account(fake)
    with pytest.raises(PermanentExchangeError, match=r"jwt_verification.*secret key"):
        await account.balances()
    await account.close()


# --- orders ---------------------------------------------------------------------------------


async def test_an_ioc_buy_fills_in_krw(fake: FakeUpbit, account: UpbitAccount) -> None:
    placed, [fill] = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("0.5")
    assert placed.exchange_order_id == fake.orders["arb12b"]["uuid"]
    [body] = placements(fake)
    assert body == {"market": "KRW-BTC", "side": "bid", "ord_type": "limit",
                    "price": "137002000", "volume": "0.5", "time_in_force": "ioc",
                    "identifier": "arb12b"}
    # Fills carry Upbit's KRW price, not yet converted: the executor converts it.
    assert (fill.price, fill.native_price, fill.native_asset) == (D(137002000), None, None)
    assert (fill.quantity, fill.fee, fill.fee_asset) == (D("0.5"), D("34250.5"), "KRW")
    assert all(r.signature_valid for r in fake.requests if r.path in ("/v1/orders", "/v1/order"))
    assert fake.balances["KRW"][0] == D("100000000") - D("68501000") - D("34250.5")


async def test_an_ioc_order_larger_than_the_book_fills_partly(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    fake.balances["KRW"][0] = D("300000000")
    placed, fills = await account.place_order(order(price="137010000", quantity="2"))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.filled_quantity == D("1.5") and "filled 1.5 of 2" in (placed.reason or "")
    assert [(f.price, f.quantity) for f in fills] == [(D(137002000), D("0.5")),
                                                      (D(137010000), D(1))]
    # The order's paid_fee, shared by the trades' funds, adds up exactly.
    assert sum(f.fee for f in fills) == D(fake.orders["arb12b"]["paid_fee"])


async def test_an_ioc_order_that_finds_nothing_expires(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    placed, fills = await account.place_order(order(price="137000000"))
    assert placed.status is OrderStatus.EXPIRED and fills == []


async def test_a_market_sell_is_by_volume(fake: FakeUpbit, account: UpbitAccount) -> None:
    placed, fills = await account.place_order(order("arb13s", Side.SELL, "0", "0.7"))
    assert placed.status is OrderStatus.FILLED
    assert [(f.price, f.quantity) for f in fills] == [(D(137001000), D("0.5")),
                                                      (D(137000000), D("0.2"))]
    [body] = placements(fake)
    assert body == {"market": "KRW-BTC", "side": "ask", "ord_type": "market",
                    "volume": "0.7", "identifier": "arb13s"}


async def test_a_market_buy_goes_out_as_an_ioc_limit_over_the_covering_ask(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    placed, fills = await account.place_order(order(price="0", quantity="0.7"))
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("0.7")
    assert [(f.price, f.quantity) for f in fills] == [(D(137002000), D("0.5")),
                                                      (D(137010000), D("0.2"))]
    [body] = placements(fake)
    # 137,010,000 (the level covering 0.7) + 1 % = 138,380,100, up to the 1,000 KRW tick.
    assert body == {"market": "KRW-BTC", "side": "bid", "ord_type": "limit",
                    "price": "138381000", "volume": "0.7", "time_in_force": "ioc",
                    "identifier": "arb12b"}
    placed, fills = await account.place_order(order("arb17b", price="0", quantity="5"))
    assert placed.status is OrderStatus.REJECTED and fills == []
    assert "holds less than 5 to buy at market" in (placed.reason or "")
    assert len(placements(fake)) == 1


async def test_a_price_off_its_band_tick_is_refused_locally_naming_it(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    placed, _ = await account.place_order(order(price="137001500"))
    assert placed.status is OrderStatus.REJECTED
    assert placed.reason == ("price 137001500 KRW is not on the tick of 1000 KRW of its band "
                             "(BTCUSDT)")
    placed, _ = await account.place_order(order("arb14b", quantity="0.00003"))
    assert placed.status is OrderStatus.REJECTED
    assert "below the minimum 5000 (KRW)" in (placed.reason or "")
    assert placements(fake) == []


async def test_the_rate_market_trades_too(fake: FakeUpbit, account: UpbitAccount) -> None:
    placed, [fill] = await account.place_order(
        order("arb15b", price="1376", quantity="10", symbol="USDTKRW"))
    assert placed.status is OrderStatus.FILLED and fill.price == D(1376)
    assert placements(fake)[0]["market"] == "KRW-USDT"


async def test_upbits_refusals_are_rejections_with_its_error_name(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    fake.balances["KRW"][0] = D(1000)
    placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.REJECTED and fills == []
    assert placed.reason == "Upbit refused the order: insufficient_funds_bid"
    fake.reject_next = "invalid_price_ask"
    placed, _ = await account.place_order(order("arb16s", Side.SELL, "137001000"))
    assert placed.reason == "Upbit refused the order: invalid_price_ask"


async def test_an_order_still_waiting_is_polled_until_final(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    fake.pending_queries = 2
    placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    assert len([r for r in fake.requests if r.path == "/v1/order"]) == 3


async def test_an_order_that_never_becomes_final_is_temporary(fake: FakeUpbit) -> None:
    account = make_account(fake, poll_attempts=3)
    await account.open()
    fake.pending_queries = 100
    with pytest.raises(TemporaryExchangeError, match="still wait after 3 queries"):
        await account.place_order(order())
    await account.cancel_order(order())
    queried, _ = await account.query_order(order())
    assert queried.status is OrderStatus.FILLED
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].signature_valid
    await account.close()


async def test_a_lost_answer_is_queried_by_identifier_and_never_sent_twice(
    fake: FakeUpbit,
) -> None:
    account = make_account(fake, timeout=0.3)
    await account.open()
    fake.stall_orders = True
    fake.stall_seconds = 1.5
    with pytest.raises(TemporaryExchangeError, match="timed out"):
        await account.place_order(order())
    fake.stall_orders = False
    # The caller retries: the order is looked up by its identifier, not sent again.
    again, fills = await account.place_order(order())
    assert again.status is OrderStatus.FILLED and len(fills) == 1
    assert len(placements(fake)) == 1 and fake.arrivals == ["arb12b"]
    lookup = next(r for r in fake.requests if r.method == "GET" and r.path == "/v1/order")
    assert lookup.query == "identifier=arb12b" and lookup.signature_valid
    await account.close()


async def test_a_retry_sends_an_order_upbit_never_got(fake: FakeUpbit) -> None:
    account = make_account(fake)
    await account.open()
    fake.rest_fault = "500"
    with pytest.raises(TemporaryExchangeError, match="HTTP 500"):
        await account.place_order(order())
    fake.rest_fault = None
    placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED and len(fake.orders) == 1
    paths = [(r.method, r.path) for r in fake.requests if r.path.startswith("/v1/order")]
    # Looked up first (not found), then sent.
    assert paths[-3:-1] == [("GET", "/v1/order"), ("POST", "/v1/orders")]
    await account.close()


async def test_a_restarted_daemon_retrying_finds_the_order_by_its_identifier(
    fake: FakeUpbit,
) -> None:
    first = make_account(fake)
    await first.open()
    placed, fills = await first.place_order(order())
    await first.close()
    second = make_account(fake)  # no memory of what was sent
    await second.open()
    again, fills_again = await second.place_order(order())
    # Upbit refused the identifier used before; the order it names is followed.
    assert again == placed and fills_again == fills
    assert fake.arrivals == ["arb12b", "arb12b"] and len(fake.orders) == 1
    queried, _ = await second.query_order(order())
    assert queried == placed
    await second.close()


async def test_rate_limits_pause_the_group(fake: FakeUpbit, account: UpbitAccount) -> None:
    fake.rest_fault = "429"
    with pytest.raises(TemporaryExchangeError, match="rate limit") as caught:
        await account.place_order(order())
    assert caught.value.retry_after == 1.0
    assert account.rest.budget("order").blocked_for() > 0
    fake.rest_fault = "418"
    with pytest.raises(TemporaryExchangeError, match="blocked") as caught:
        await account.balances()
    assert caught.value.retry_after == 60.0
    assert fake.orders == {}


async def test_remaining_req_corrects_the_groups_budget(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    await account.place_order(order())
    # 8 a second, one used: the header said 7 remain of the order group.
    assert account.rest.budget("order").used == 1
    await account.balances()
    assert account.rest.budget("default").used == 30 - 29


async def test_querying_an_order_never_placed_is_permanent(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    with pytest.raises(PermanentExchangeError, match="not known to Upbit"):
        await account.query_order(order("arb99b"))


async def test_cancelling_a_final_or_unknown_order_is_quiet(
    fake: FakeUpbit, account: UpbitAccount
) -> None:
    await account.place_order(order())
    await account.cancel_order(order())
    await account.cancel_order(order("arb99b"))


async def test_secrets_never_in_errors_or_logs(
    fake: FakeUpbit, account: UpbitAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert all(s not in repr(account) for s in (ACCESS, SECRET))
    errors: list[Exception] = []
    for fault in ("500", "429"):
        fake.rest_fault = fault
        try:
            await account.place_order(order(f"arb{fault}b"))
        except TemporaryExchangeError as err:
            errors.append(err)
    fake.rest_fault = None
    try:
        await account.query_order(order("arb99b"))
    except PermanentExchangeError as err:
        errors.append(err)
    assert len(errors) == 3
    texts = [str(e) for e in errors] + [r.getMessage() for r in caplog.records]
    for text in texts:
        assert ACCESS not in text and SECRET not in text
