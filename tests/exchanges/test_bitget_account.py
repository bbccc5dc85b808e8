"""The Bitget trading account against the fake Bitget: rules and rounding, balances, IOC
and market orders filled by the fake's matching engine, rejections, lost answers and
duplicate client order ids (an order is never placed twice)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
import pytest
import trio
from exchanges.fake_bitget import FakeBitget, open_fake_bitget, symbol_info

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
from arbotd_bitget import BitgetAccount, BitgetConfig, bitget_client_oid
from arbotd_bitget.account import order_fee, parse_balances, parse_symbols
from arbotd_bitget.orders import final_status

KEY = "bg_9c1e7d52-test-key"
SECRET = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
PASSPHRASE = "Passphrase4Tests"
ENV = {"BITGET_API_KEY": KEY, "BITGET_API_SECRET": SECRET, "BITGET_API_PASSPHRASE": PASSPHRASE}
PLACE = "/api/v2/spot/trade/place-order"
ORDER_INFO = "/api/v2/spot/trade/orderInfo"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBitget]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with open_fake_bitget(KEY, SECRET, PASSPHRASE) as server:
        server.set_book("BTCUSDT", bids=[("99.9", "1"), ("99.5", "2")],
                        asks=[("100", "1"), ("100.5", "2")])
        yield server


def make_account(fake: FakeBitget, **kwargs: object) -> BitgetAccount:
    settings = BitgetConfig(enabled=True, rest_url=fake.rest_url,
                            testnet=bool(kwargs.pop("testnet", False)))
    options = {"timeout": 2.0, "poll_interval": 0.01, **kwargs}
    return BitgetAccount(settings, **options)  # type: ignore[arg-type]


@pytest.fixture
async def account(fake: FakeBitget) -> AsyncIterator[BitgetAccount]:
    account = make_account(fake)
    await account.open()
    yield account
    await account.close()


def order(cid: str = "arb12b", side: Side = Side.BUY, price: str = "100",
          quantity: str = "0.5") -> Order:
    return Order(cid, 12, "bitget", "BTCUSDT", side, Decimal(price), Decimal(quantity))


def placements(fake: FakeBitget) -> list[dict]:
    return [orjson.loads(r.body) for r in fake.requests
            if r.method == "POST" and r.path == PLACE]


# --- rules, balances, credentials ----------------------------------------------------------


async def test_open_loads_the_rules_and_they_round_orders(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    assert isinstance(account, ExchangeAccount)
    rules = account.rules("BTCUSDT")
    assert rules is not None and rules.trading
    # v2 has no tick or lot size: they are 10^-precision; minTradeUSDT is the minimum.
    assert (rules.tick_size, rules.step_size, rules.min_notional) == (
        Decimal("0.01"), Decimal("0.000001"), Decimal("1"))
    assert rules.round_price(Decimal("30243.476"), "buy") == Decimal("30243.47")
    assert rules.round_price(Decimal("30243.471"), "sell") == Decimal("30243.48")
    assert rules.round_quantity(Decimal("0.1234567")) == Decimal("0.123456")
    assert rules.problem(Decimal("0.00001"), Decimal("30000")) == (
        "notional 0.3 is below the minimum 1")
    eth = account.rules("ETHUSDT")
    assert eth is not None and eth.step_size == Decimal("0.0001")
    assert common_quantity(Decimal("1.2345678"), rules, eth) == Decimal("1.2345")
    xrp = account.rules("XRPUSDT")
    assert xrp is not None and not xrp.trading
    assert xrp.problem(Decimal("10"), Decimal("0.5")) == "XRPUSDT is not trading (status halt)"
    assert account.rules("DOGEUSDT") is None
    assert [r.path for r in fake.requests] == ["/api/v2/public/time",
                                               "/api/v2/spot/public/symbols"]


def test_symbols_of_the_documented_shape_are_parsed() -> None:
    data = [symbol_info("BTCUSDT", "BTC", "USDT"), symbol_info("ETHBTC", "ETH", "BTC", 6, 4),
            {"symbol": "BADUSDT"}, {**symbol_info("XUSDT", "X", "USDT"), "pricePrecision": "x"}]
    rules, bands = parse_symbols(data)
    assert set(rules) == {"BTCUSDT", "ETHBTC"}
    # minTradeUSDT is a USDT value: it bounds USDT pairs only.
    assert rules["ETHBTC"].min_notional == 0 and rules["ETHBTC"].tick_size == Decimal("0.000001")
    assert bands["BTCUSDT"] == Decimal("0.05")


def test_an_order_record_of_the_documented_shape() -> None:
    """orderInfo's example (bitget-upbit-protocols.md 1.2): ``feeDetail`` is a JSON
    string whose ``newFees.t`` is the total fee, negative; both spellings of cancelled
    end an order, ``live`` and ``new`` do not."""
    record = {"userId": "**", "symbol": "BTCUSDT", "orderId": "121211212122",
              "clientOid": "121211212122", "price": "0", "size": "10.0000000000000000",
              "orderType": "market", "side": "buy", "status": "filled",
              "priceAvg": "13000.0000000000000000", "baseVolume": "0.0007000000000000",
              "quoteVolume": "9.1000000000000000", "enterPointSource": "API",
              "feeDetail": '{"newFees":{"c":0,"d":0,"deduction":false,"r":-0.112079256,'
                           '"t":-0.112079256,"totalDeductionFee":0}}',
              "orderSource": "market", "cancelReason": "", "cTime": "1695865232127",
              "uTime": "1695865233051"}
    assert order_fee(record) == Decimal("-0.112079256")
    assert final_status(record["status"], Decimal(record["baseVolume"]), None) is (
        OrderStatus.FILLED)
    for cancelled in ("cancelled", "canceled"):
        assert final_status(cancelled, Decimal(0), "ioc") is OrderStatus.EXPIRED
        assert final_status(cancelled, Decimal(0), "gtc") is OrderStatus.CANCELLED
        assert final_status(cancelled, Decimal("0.1"), "ioc") is OrderStatus.PARTIALLY_FILLED
    assert final_status("live", Decimal(0), "ioc") is None
    assert final_status("new", Decimal(0), "ioc") is None
    assert final_status("partially_filled", Decimal("0.1"), "ioc") is None


def test_balances_of_the_documented_shape() -> None:
    assert parse_balances([{"coin": "USDT", "available": "10.5", "frozen": "2", "locked": "1",
                            "limitAvailable": "0", "uTime": "1622697148"}]) == {
        "USDT": (Decimal("10.5"), Decimal("3"))}


async def test_balances(fake: FakeBitget, account: BitgetAccount) -> None:
    fake.balances["ETH"] = [Decimal("1.5"), Decimal("0.25")]
    balances = await account.balances()
    assert balances == {"BTC": (Decimal(2), Decimal(0)), "USDT": (Decimal(100000), Decimal(0)),
                        "ETH": (Decimal("1.5"), Decimal("0.25"))}
    assert fake.requests[-1].signature_valid is True


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    assert BitgetAccount(BitgetConfig()).missing_credentials() == list(ENV)
    monkeypatch.setenv("BITGET_API_KEY", KEY)
    assert BitgetAccount(BitgetConfig()).missing_credentials() == [
        "BITGET_API_SECRET", "BITGET_API_PASSPHRASE"]


async def test_without_credentials_nothing_private_is_sent(
    fake: FakeBitget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BITGET_API_PASSPHRASE")
    account = make_account(fake)
    with pytest.raises(PermanentExchangeError, match="not all configured"):
        await account.balances()
    assert fake.requests == []
    await account.close()


async def test_demo_trading_sends_the_paptrading_header(fake: FakeBitget) -> None:
    account = make_account(fake, testnet=True)
    await account.balances()
    assert fake.requests[-1].headers["paptrading"] == "1"
    await account.close()


def test_accounts_with_equal_settings_are_equal_and_client_ids_fit() -> None:
    assert BitgetAccount(BitgetConfig()) == BitgetAccount(BitgetConfig())
    assert BitgetAccount(BitgetConfig()) != BitgetAccount(BitgetConfig(testnet=True))
    assert bitget_client_oid("arb12b") == "arb12b" == bitget_client_oid("arb12b")
    assert bitget_client_oid("arb-12_b#1") == "arb-12_b#1"
    mapped = bitget_client_oid("arb 12/b")
    assert mapped == bitget_client_oid("arb 12/b") and len(mapped) < 50 and mapped.isalnum()
    assert len(bitget_client_oid("a" * 50)) < 50


# --- orders ----------------------------------------------------------------------------


async def test_an_ioc_buy_fills_at_the_best_ask(fake: FakeBitget, account: BitgetAccount) -> None:
    placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    assert placed.filled_quantity == Decimal("0.5")
    assert placed.exchange_order_id == fake.orders["arb12b"]["orderId"]
    [fill] = fills
    assert fill == Fill("arb12b", 12, "bitget", "BTCUSDT", Side.BUY, Decimal("100"),
                        Decimal("0.5"), Decimal("0.0005"), "BTC", fill.timestamp)
    [body] = placements(fake)
    request_time = int(body.pop("requestTime"))
    assert body == {"symbol": "BTCUSDT", "side": "buy", "clientOid": "arb12b", "size": "0.5",
                    "orderType": "limit", "force": "ioc", "price": "100",
                    "receiveWindow": "2000"}
    assert abs(request_time - fake.now_ms()) < 5000
    seen = next(r for r in fake.requests if r.method == "POST")
    assert seen.signature_valid is True
    assert fake.balances["USDT"][0] == Decimal("99950")


async def test_an_ioc_order_larger_than_the_book_fills_partly(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    placed, fills = await account.place_order(order(price="100.5", quantity="5"))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.filled_quantity == Decimal("3") and "filled 3 of 5" in (placed.reason or "")
    assert [(f.price, f.quantity) for f in fills] == [(Decimal("100"), Decimal("1")),
                                                      (Decimal("100.5"), Decimal("2"))]
    assert sum(f.fee for f in fills) == Decimal("0.003")
    # Query parameters go sorted by name, as Bitget's signing example sends them.
    [listing] = [r for r in fake.requests if r.path == "/api/v2/spot/trade/fills"]
    assert listing.query == f"orderId={placed.exchange_order_id}&symbol=BTCUSDT"
    assert listing.signature_valid is True


async def test_an_ioc_order_that_finds_nothing_expires(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    placed, fills = await account.place_order(order(price="99"))
    assert placed.status is OrderStatus.EXPIRED and placed.filled_quantity == 0
    assert fills == [] and "no liquidity" in (placed.reason or "")


async def test_an_ioc_sell_pays_its_fee_in_quote(fake: FakeBitget, account: BitgetAccount) -> None:
    placed, [fill] = await account.place_order(order("arb13s", Side.SELL, "99.9", "0.8"))
    assert placed.status is OrderStatus.FILLED
    assert (fill.side, fill.price, fill.quantity, fill.fee, fill.fee_asset) == (
        Side.SELL, Decimal("99.9"), Decimal("0.8"), Decimal("0.07992"), "USDT")


async def test_a_market_buy_buys_the_base_quantity_within_the_price_band(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    # Bitget sizes market buys in the quote coin; the account buys the base quantity
    # with an IOC limit at the best ask raised by half the 5 % band.
    placed, fills = await account.place_order(order("arb14h", price="0", quantity="1.5"))
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == Decimal("1.5")
    assert [(f.price, f.quantity) for f in fills] == [(Decimal("100"), Decimal("1")),
                                                      (Decimal("100.5"), Decimal("0.5"))]
    [body] = placements(fake)
    assert (body["orderType"], body["force"], body["size"], body["price"]) == (
        "limit", "ioc", "1.5", "102.5")


async def test_a_market_sell(fake: FakeBitget, account: BitgetAccount) -> None:
    placed, fills = await account.place_order(order("arb15u0", Side.SELL, "0", "2"))
    assert placed.status is OrderStatus.FILLED
    assert [(f.price, f.quantity) for f in fills] == [(Decimal("99.9"), Decimal("1")),
                                                      (Decimal("99.5"), Decimal("1"))]
    [body] = placements(fake)
    assert (body["orderType"], body["size"]) == ("market", "2") and "price" not in body


async def test_a_refused_order_is_rejected_with_the_reason(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    fake.reject_next = ("43119", "Trading is not open")
    placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.REJECTED and fills == []
    assert "43119" in (placed.reason or "") and "not open" in (placed.reason or "")
    fake.balances["USDT"][0] = Decimal("10")
    placed, _ = await account.place_order(order("arb16b"))
    assert placed.status is OrderStatus.REJECTED and "43012" in (placed.reason or "")


async def test_an_order_the_rules_refuse_is_not_sent(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    placed, fills = await account.place_order(order(quantity="0.001"))
    assert placed.status is OrderStatus.REJECTED and fills == []
    assert "below the minimum" in (placed.reason or "")
    assert placements(fake) == []


async def test_an_order_still_live_is_polled_until_final(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    fake.pending_queries = 2
    placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    queries = [r for r in fake.requests if r.method == "GET" and r.path == ORDER_INFO]
    assert len(queries) == 3


async def test_an_order_that_never_becomes_final_is_temporary(fake: FakeBitget) -> None:
    account = make_account(fake, poll_attempts=3)
    await account.open()
    fake.pending_queries = 100
    with pytest.raises(TemporaryExchangeError, match="still live after 3 queries"):
        await account.place_order(order())
    await account.cancel_order(order())  # it was still open: the cancel goes through
    queried, _ = await account.query_order(order())
    assert queried.status is OrderStatus.FILLED
    await account.close()


async def test_fills_lagging_behind_the_order_fall_back_to_its_totals(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    fake.fills_lag = True
    placed, [fill] = await account.place_order(order(price="100.5", quantity="2"))
    assert placed.status is OrderStatus.FILLED
    # feeDetail of the order record is a JSON string: newFees.t, in the coin bought.
    assert (fill.quantity, fill.price, fill.fee, fill.fee_asset) == (
        Decimal("2"), Decimal("100.25"), Decimal("0.002"), "BTC")


async def test_a_lost_answer_is_found_by_a_query_and_never_sent_twice(
    fake: FakeBitget,
) -> None:
    account = make_account(fake, timeout=0.3)
    await account.open()
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


async def test_a_retry_sends_an_order_the_exchange_never_got(fake: FakeBitget) -> None:
    account = make_account(fake, timeout=0.3)
    await account.open()
    fake.rest_fault = "500"
    with pytest.raises(TemporaryExchangeError, match="HTTP 500"):
        await account.place_order(order())
    fake.rest_fault = None
    first = orjson.loads(fake.requests[-1].body)
    placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    assert len(fake.orders) == 1
    # The lookup waited until the first request's receive window had passed.
    lookup = next(r for r in fake.requests if r.method == "GET" and r.path == ORDER_INFO)
    assert int(lookup.headers["access-timestamp"]) >= (
        int(first["requestTime"]) + int(first["receiveWindow"]))
    await account.close()


async def test_a_request_arriving_after_its_window_is_never_executed(fake: FakeBitget) -> None:
    account = make_account(fake, timeout=0.3)
    await account.open()
    fake.rest_fault = "500"
    with pytest.raises(TemporaryExchangeError):
        await account.place_order(order())
    fake.rest_fault = None
    late = orjson.loads(fake.requests[-1].body)
    await trio.sleep(0.4)
    # The lost request turns up after its window: Bitget refuses it (40078).
    _, answer = fake.place(late)
    assert answer["code"] == "40078" and fake.orders == {}
    await account.close()


async def test_a_placement_that_left_after_its_window_is_temporary_then_sent_once(
    fake: FakeBitget, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(fake, timeout=0.3)
    await account.open()
    place = FakeBitget.place

    def late_first(self: FakeBitget, body: dict) -> tuple[int, dict]:
        # The first copy reaches Bitget after its receive window (a long wait on the
        # way): Bitget refuses it with 40078 and never executes it.
        if len(self.arrivals) == 0:
            body = {**body, "requestTime": str(int(body["requestTime"]) - 10_000)}
        return place(self, body)

    monkeypatch.setattr(FakeBitget, "place", late_first)
    with pytest.raises(TemporaryExchangeError, match="40078"):
        await account.place_order(order())
    assert fake.orders == {}
    placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED
    assert len(fake.arrivals) == 2 and len(fake.orders) == 1
    await account.close()


async def test_a_query_waits_while_a_lost_request_could_still_be_executed(
    fake: FakeBitget, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(fake, timeout=0.5)
    await account.open()
    fake.rest_fault = "500"  # answered 500 while the request is still on its way inside
    with pytest.raises(TemporaryExchangeError, match="HTTP 500"):
        await account.place_order(order())
    fake.rest_fault = None
    lost = orjson.loads(fake.requests[-1].body)
    first_answered = trio.Event()
    info = FakeBitget.order_info

    def info_then_arrive(self: FakeBitget, query: dict[str, str]) -> tuple[int, dict]:
        answer = info(self, query)
        first_answered.set()
        return answer

    async def arrives_after_the_first_query() -> None:
        await first_answered.wait()
        fake.place(lost)

    monkeypatch.setattr(FakeBitget, "order_info", info_then_arrive)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(arrives_after_the_first_query)
            # Before the request's window ends, "does not exist" is not "never placed".
            found, fills = await account.query_order(order())
    assert found.status is OrderStatus.FILLED and len(fills) == 1
    assert len(fake.orders) == 1
    await account.close()


async def test_a_duplicate_client_order_id_is_looked_up(fake: FakeBitget) -> None:
    first = make_account(fake)
    await first.open()
    placed, fills = await first.place_order(order())
    await first.close()
    # A restarted daemon (no memory of what it sent) retries the same order: Bitget
    # answers 43118 and the account looks the order up.
    second = make_account(fake)
    await second.open()
    again, fills_again = await second.place_order(order())
    assert again == placed and fills_again == fills
    assert len(placements(fake)) == 2 and len(fake.orders) == 1 and len(fake.fills) == 1
    await second.close()


async def test_an_order_known_by_its_id_is_asked_for_by_it(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    # Bitget finds a clientOid for 2 hours only: an order whose orderId is known is
    # looked up by it.
    placed, _ = await account.place_order(order())
    fresh = make_account(fake)
    await fresh.open()
    queried, _ = await fresh.query_order(placed)
    assert queried.status is OrderStatus.FILLED
    lookup = [r for r in fake.requests if r.path == ORDER_INFO][-1]
    assert lookup.query == f"orderId={placed.exchange_order_id}"
    await fresh.close()


async def test_a_rate_limited_placement_is_temporary(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    fake.rest_fault = "429"
    with pytest.raises(TemporaryExchangeError, match="rate limit") as caught:
        await account.place_order(order())
    assert caught.value.retry_after == 1.0
    assert fake.orders == {}


async def test_a_placement_during_a_release_is_temporary(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    fake.rest_fault = "45001"
    with pytest.raises(TemporaryExchangeError, match="45001"):
        await account.place_order(order())
    assert fake.orders == {}


async def test_querying_an_order_never_placed_is_permanent(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    with pytest.raises(PermanentExchangeError, match="not known to Bitget"):
        await account.query_order(order("arb99b"))


async def test_cancelling_a_final_or_unknown_order_is_quiet(
    fake: FakeBitget, account: BitgetAccount
) -> None:
    await account.place_order(order())
    await account.cancel_order(order())
    await account.cancel_order(order("arb99b"))
    cancels = [r for r in fake.requests if r.path == "/api/v2/spot/trade/cancel-order"]
    assert len(cancels) == 2 and all(r.signature_valid for r in cancels)


async def test_secrets_never_in_errors_or_logs(
    fake: FakeBitget, account: BitgetAccount, caplog: pytest.LogCaptureFixture
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
    fake.reject_next = ("43012", "Insufficient balance")
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
