"""The Binance trading account against a fake Binance REST server that verifies real
signatures and matches IOC and market orders against a book the test sets."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from types import SimpleNamespace

import orjson
import pytest
import tomlkit
import trio
from fake_binance_rest import EXCHANGE_INFO, FakeBinanceRest, open_fake_binance_rest

import arbotd_binance.plugin as binance_plugin
from arbotd import (
    ConfigError,
    ExchangeAccount,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Side,
    TemporaryExchangeError,
)
from arbotd._config import CORE_SECTIONS, structure_document
from arbotd.exchange import RequestBudget, SymbolRules
from arbotd_binance import BinanceAccount, BinanceConfig, parse_exchange_info

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
KEY_ENV, SECRET_ENV = "ARBOTD_TEST_BINANCE_KEY", "ARBOTD_TEST_BINANCE_SECRET"
D = Decimal


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
async def fake(keys: None) -> AsyncIterator[FakeBinanceRest]:
    async with open_fake_binance_rest(KEY, SECRET) as server:
        server.balances["USDT"] = (D("10000"), D(0))
        server.set_book("BTCUSDT", bids=[("30000.00", "0.5"), ("29999.00", "1")],
                        asks=[("30001.00", "0.004"), ("30002.00", "1")])
        yield server


def make_account(fake: FakeBinanceRest, *, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
                 **settings: object) -> BinanceAccount:
    config = BinanceConfig(enabled=True, rest_url=fake.url, api_key_env=KEY_ENV,
                           api_secret_env=SECRET_ENV, **settings)  # type: ignore[arg-type]
    return BinanceAccount(config, symbols=lambda: symbols, poll_interval=0.01)


@pytest.fixture
async def account(fake: FakeBinanceRest) -> AsyncIterator[BinanceAccount]:
    acct = make_account(fake)
    await acct.open()
    yield acct
    await acct.close()


def order(cid: str = "arb1b", side: Side = Side.BUY, price: str = "30002",
          quantity: str = "0.01", symbol: str = "BTCUSDT") -> Order:
    return Order(cid, 1, "binance", symbol, side, D(price), D(quantity))


# --- rules ---------------------------------------------------------------------------------


def test_parses_the_filters_of_a_real_exchange_info() -> None:
    data = orjson.loads(EXCHANGE_INFO.read_bytes())
    wanted = {"BTCUSDT": "BTCUSDT", "BNBUSDT": "BNBUSDT", "LUNAUSDT": "LUNAUSDT"}
    rules = parse_exchange_info(data, wanted)
    assert set(rules) == set(wanted)  # ETHUSDT was not asked for
    assert rules["BTCUSDT"] == SymbolRules(
        symbol="BTCUSDT", tick_size=D("0.01"), step_size=D("0.00001"), min_qty=D("0.00001"),
        max_qty=D("9000"), min_notional=D("10"), max_market_qty=D("112.21108820"))
    # Today's NOTIONAL filter, as well as the older MIN_NOTIONAL.
    assert rules["BNBUSDT"].min_notional == D("5")
    assert rules["BNBUSDT"].step_size == D("0.001")
    assert not rules["LUNAUSDT"].trading and rules["LUNAUSDT"].status == "BREAK"


def test_orders_are_rounded_to_the_filters() -> None:
    data = orjson.loads(EXCHANGE_INFO.read_bytes())
    btc = parse_exchange_info(data, {"BTCUSDT": "BTCUSDT"})["BTCUSDT"]
    assert btc.round_price(D("30000.567"), "buy") == D("30000.56")
    assert btc.round_price(D("30000.561"), "sell") == D("30000.57")
    assert btc.round_quantity(D("0.0123456")) == D("0.01234")
    assert btc.problem(D("0.01234"), D("30000.56")) is None
    assert "below the minimum 10" in btc.problem(D("0.0003"), D("30000"))
    assert "above the maximum 112.21108820" in btc.problem(D("200"), None, market=True)
    assert btc.problem(D("200"), D("30000")) is None  # LOT_SIZE allows 9000 for limits
    luna = parse_exchange_info(data, {"LUNAUSDT": "LUNAUSDT"})["LUNAUSDT"]
    assert "not trading (status BREAK)" in luna.problem(D("100"), D("1"))


async def test_open_syncs_the_clock_and_loads_the_rules(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    paths = [r.path for r in fake.requests]
    assert paths == ["/api/v3/time", "/api/v3/exchangeInfo"]
    assert orjson.loads(fake.requests[1].params["symbols"]) == ["BTCUSDT", "ETHUSDT"]
    assert account.rules("BTCUSDT").tick_size == D("0.01")
    assert account.rules("ETHUSDT").step_size == D("0.0001")
    assert account.rules("SOLUSDT") is None


async def test_an_unlisted_symbol_does_not_lose_the_others(
    fake: FakeBinanceRest, caplog: pytest.LogCaptureFixture
) -> None:
    acct = make_account(fake, symbols=("BTCUSDT", "NOPEUSDT"))
    await acct.open()
    await acct.close()
    assert [r.params.get("symbols") is None for r in fake.requests[1:]] == [False, True]
    assert acct.rules("BTCUSDT") is not None and acct.rules("NOPEUSDT") is None
    assert "binance does not list NOPEUSDT" in caplog.text


# --- account and credentials ---------------------------------------------------------------


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    acct = BinanceAccount(BinanceConfig(api_key_env=KEY_ENV, api_secret_env=SECRET_ENV))
    assert isinstance(acct, ExchangeAccount)
    assert acct.missing_credentials() == [KEY_ENV, SECRET_ENV]
    monkeypatch.setenv(KEY_ENV, KEY)
    assert acct.missing_credentials() == [SECRET_ENV]


async def test_balances(fake: FakeBinanceRest, account: BinanceAccount) -> None:
    balances = await account.balances()
    assert balances["BTC"] == (D("0.5"), D("0.1"))
    assert balances["USDT"] == (D("10000"), D(0))
    assert fake.requests[-1].signature_valid is True


# --- placing orders ------------------------------------------------------------------------


async def test_ioc_limit_buy_filled_in_one_request(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    placed, fills = await account.place_order(order(quantity="0.01"))
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("0.01")
    assert placed.exchange_order_id is not None
    [sent] = fake.placements()
    assert sent.signature_valid is True
    params = sent.params
    assert {k: params[k] for k in ("symbol", "side", "type", "timeInForce", "price",
                                   "quantity", "newClientOrderId", "newOrderRespType")} == {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
        "price": "30002", "quantity": "0.01", "newClientOrderId": "arb1b",
        "newOrderRespType": "FULL"}
    assert [(f.price, f.quantity, f.fee, f.fee_asset) for f in fills] == [
        (D("30001"), D("0.004"), D("0.000004"), "BTC"),
        (D("30002"), D("0.006"), D("0.000006"), "BTC"),
    ]
    assert all(f.order_id == "arb1b" and f.trade_id == 1 and f.side is Side.BUY
               for f in fills)
    # The FULL answer carried the fills: no query, no myTrades.
    assert [r.path for r in fake.requests[2:]] == ["/api/v3/order"]
    balances = await account.balances()
    assert balances["BTC"][0] == D("0.5") + D("0.01") - D("0.00001")


async def test_ioc_partial_fill_when_the_book_is_smaller(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    placed, fills = await account.place_order(order(price="30001", quantity="0.01"))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.filled_quantity == D("0.004")
    assert "filled 0.004 of 0.01" in placed.reason
    assert sum(f.quantity for f in fills) == D("0.004")
    assert fake.order("arb1b").status == "EXPIRED"  # Binance's end of a partial IOC


async def test_ioc_with_nothing_at_its_price_expires(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    placed, fills = await account.place_order(order(price="30000.50"))
    assert placed.status is OrderStatus.EXPIRED and placed.filled_quantity == 0
    assert fills == []


async def test_market_orders_send_the_base_quantity(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    fake.balances["BTC"] = (D("2"), D(0))
    placed, fills = await account.place_order(order("arb1s", Side.SELL, price="0",
                                                    quantity="0.6"))
    assert placed.status is OrderStatus.FILLED
    assert [(f.price, f.quantity, f.fee_asset) for f in fills] == [
        (D("30000"), D("0.5"), "USDT"), (D("29999"), D("0.1"), "USDT")]
    assert fills[0].fee == D("15")  # 0.1 % of 15000 USDT
    params = fake.placements()[0].params
    assert params["type"] == "MARKET" and params["quantity"] == "0.6"
    assert "price" not in params and "timeInForce" not in params
    # A market buy: quantity in base currency too (Binance's quoteOrderQty is not used).
    placed, _ = await account.place_order(order("arb2b", Side.BUY, price="0", quantity="0.5"))
    assert placed.status is OrderStatus.FILLED
    params = fake.placements()[1].params
    assert params["quantity"] == "0.5" and "quoteOrderQty" not in params


async def test_insufficient_balance_is_a_rejected_order(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    fake.balances["USDT"] = (D("10"), D(0))
    placed, fills = await account.place_order(order())
    assert placed.status is OrderStatus.REJECTED and fills == []
    assert "insufficient balance" in placed.reason
    fake.balances["USDT"] = (D("10000"), D(0))
    fake.order_fault, fake.reject_message = "reject", "Order would immediately match and take."
    placed, _ = await account.place_order(order("arb2b"))
    assert placed.status is OrderStatus.REJECTED
    assert "would immediately match" in placed.reason


async def test_an_order_off_the_filters_is_refused_before_sending(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    placed, _ = await account.place_order(order(price="30002", quantity="0.0001"))
    assert placed.status is OrderStatus.REJECTED
    assert "notional 3.0002 is below the minimum 10" in placed.reason
    assert fake.placements() == []


async def test_a_filter_failure_from_binance_is_a_rejected_order(
    fake: FakeBinanceRest,
) -> None:
    acct = make_account(fake, symbols=())  # no rules loaded: Binance itself refuses
    await acct.open()
    placed, _ = await acct.place_order(order(quantity="0.000015"))
    await acct.close()
    assert placed.status is OrderStatus.REJECTED
    assert "Filter failure: LOT_SIZE" in placed.reason


# --- faults ----------------------------------------------------------------------------------


async def test_a_duplicate_client_order_id_is_looked_up_not_placed_again(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    first, first_fills = await account.place_order(order())
    # Another process (the daemon after a restart) sends the same order again.
    fake.order_fault = "duplicate"
    again = make_account(fake)
    await again.open()
    second, second_fills = await again.place_order(order())
    await again.close()
    assert len(fake.orders) == 1
    assert second == first
    assert [(f.price, f.quantity, f.fee) for f in second_fills] == [
        (f.price, f.quantity, f.fee) for f in first_fills]


async def test_a_stalled_placement_is_temporary_and_the_query_finds_the_order(
    fake: FakeBinanceRest,
) -> None:
    acct = make_account(fake, request_timeout_seconds=0.3)
    await acct.open()
    fake.order_fault, fake.stall_seconds = "stall", 3
    with pytest.raises(TemporaryExchangeError, match="timed out"):
        await acct.place_order(order())
    fake.order_fault = None
    found, fills = await acct.query_order(order())
    assert found.status is OrderStatus.FILLED and found.filled_quantity == D("0.01")
    assert sum(f.quantity for f in fills) == D("0.01")
    assert {f.fee_asset for f in fills} == {"BTC"}
    # A retried placement finds the order too: never a second one.
    retried, _ = await acct.place_order(order())
    assert retried == found
    assert len(fake.placements()) == 1 and len(fake.orders) == 1
    await acct.close()


async def test_a_retry_waits_while_a_lost_request_could_still_arrive(
    fake: FakeBinanceRest,
) -> None:
    acct = make_account(fake, request_timeout_seconds=0.2, recv_window_ms=300)
    await acct.open()
    fake.fault, fake.stall_seconds = "stall", 2  # the request never reaches the engine
    with pytest.raises(TemporaryExchangeError, match="timed out"):
        await acct.place_order(order())
    fake.fault = None
    assert fake.orders == {}
    with pytest.raises(TemporaryExchangeError, match="may still reach Binance") as caught:
        await acct.place_order(order())
    assert caught.value.retry_after is not None and caught.value.retry_after <= 0.3
    await trio.sleep(caught.value.retry_after + 0.05)
    placed, _ = await acct.place_order(order())
    assert placed.status is OrderStatus.FILLED and len(fake.orders) == 1
    await acct.close()


async def test_a_server_error_after_booking_is_temporary_then_found(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    fake.order_fault = "500"
    with pytest.raises(TemporaryExchangeError, match="outcome unknown"):
        await account.place_order(order())
    fake.order_fault = None
    found, fills = await account.query_order(order())
    assert found.status is OrderStatus.FILLED and len(fills) == 2


async def test_a_query_waits_while_a_lost_request_could_still_arrive(
    fake: FakeBinanceRest, monkeypatch: pytest.MonkeyPatch
) -> None:
    acct = make_account(fake, recv_window_ms=1000)
    await acct.open()
    fake.fault = "500"  # a gateway answers 500; the request is still on its way inside
    with pytest.raises(TemporaryExchangeError, match="outcome unknown"):
        await acct.place_order(order())
    fake.fault = None
    [lost] = fake.placements()
    first_answered = trio.Event()
    query = FakeBinanceRest.query

    def query_then_arrive(self: FakeBinanceRest, params: dict[str, str]
                          ) -> tuple[int, dict[str, str], object]:
        answer = query(self, params)
        first_answered.set()
        return answer

    async def arrives_after_the_first_query() -> None:
        await first_answered.wait()
        await fake.place(lost.params)

    monkeypatch.setattr(FakeBinanceRest, "query", query_then_arrive)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(arrives_after_the_first_query)
            # "Unknown" while the request's recvWindow runs does not mean "never placed":
            # the order arrived, and filled.
            found, fills = await acct.query_order(order())
    assert found.status is OrderStatus.FILLED
    assert sum(f.quantity for f in fills) == D("0.01")
    assert len(fake.orders) == 1
    await acct.close()


async def test_an_order_not_final_at_once_is_polled(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    fake.order_fault, fake.settle_after_queries = "pending", 3
    placed, fills = await account.place_order(order(price="30001"))
    assert placed.status is OrderStatus.PARTIALLY_FILLED and len(fills) == 1
    assert fake.order("arb1b").queries == 3
    trades = [r for r in fake.requests if r.path == "/api/v3/myTrades"]
    assert trades[0].params["orderId"] == placed.exchange_order_id


async def test_an_order_that_never_settles_is_temporary(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    fake.order_fault, fake.settle_after_queries = "pending", 1000
    account.poll_attempts = 3
    with pytest.raises(TemporaryExchangeError, match="not settled after 3 queries"):
        await account.place_order(order())
    # Still open: it can be cancelled, and then it is final.
    await account.cancel_order(order())
    assert fake.order("arb1b").status == "CANCELED"
    found, fills = await account.query_order(order())
    assert found.status is OrderStatus.CANCELLED and fills == []


async def test_cancelling_a_final_or_unknown_order_does_nothing(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    await account.place_order(order())
    await account.cancel_order(order())
    await account.cancel_order(order("arb9b"))
    assert [r.method for r in fake.requests if r.path == "/api/v3/order"] == [
        "POST", "DELETE", "DELETE"]


async def test_querying_an_order_never_placed_is_permanent(account: BinanceAccount) -> None:
    with pytest.raises(PermanentExchangeError, match=r"arb7b .*never placed"):
        await account.query_order(order("arb7b"))


async def test_invalid_timestamp_resyncs_and_is_temporary(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    fake.skew_ms = 20_000  # the exchange's clock jumps ahead
    with pytest.raises(TemporaryExchangeError, match="-1021"):
        await account.place_order(order())
    assert fake.requests[-1].path == "/api/v3/time"
    assert fake.orders == {}
    # The offset is re-measured: a retry is signed with the exchange's time and goes.
    placed, _ = await account.place_order(order())
    assert placed.status is OrderStatus.FILLED


@pytest.mark.parametrize("status", ["429", "418"])
async def test_rate_limit_answers_are_temporary_and_pause_requests(
    fake: FakeBinanceRest, account: BinanceAccount, status: str
) -> None:
    fake.fault, fake.retry_after = status, 300
    with pytest.raises(TemporaryExchangeError, match=f"HTTP {status}") as caught:
        await account.place_order(order())
    assert caught.value.retry_after == 300
    fake.fault = None
    sent = len(fake.requests)
    # A long pause: the next call fails at once without sending anything.
    with pytest.raises(TemporaryExchangeError, match="not sent") as caught:
        await account.balances()
    assert caught.value.retry_after is not None and 290 < caught.value.retry_after <= 300
    assert len(fake.requests) == sent


async def test_a_ban_stops_requests_until_retry_after_has_passed(
    fake: FakeBinanceRest, account: BinanceAccount
) -> None:
    fake.ban(1)
    with pytest.raises(TemporaryExchangeError, match="418") as caught:
        await account.balances()
    assert caught.value.retry_after == 1
    sent = len(fake.requests)
    with trio.move_on_after(0.3):
        await account.balances()  # waits for the ban to pass
    assert len(fake.requests) == sent
    balances = await account.balances()
    assert balances["BTC"][0] == D("0.5")
    assert fake.requests_during_ban == 1


class _OneBook:
    """A depth source for the fake: the same small book for every symbol."""

    def depth_snapshot(self, symbol: str, limit: int) -> dict:
        return {"lastUpdateId": 1, "bids": [["1.0", "1"]], "asks": [["1.1", "1"]]}


async def test_the_weight_budget_slows_down_before_binance_answers_429(
    fake: FakeBinanceRest,
) -> None:
    # Snapshots of 5000 levels weigh 250: three fit in 80 % of 1000, a fourth would not.
    # Heavy requests keep the test about the budget, not about how fast a loaded machine
    # sends many light ones.
    fake.weight_limit, fake.weight_window = 1000, 0.5
    fake.depth_source = _OneBook()
    budget = RequestBudget("binance test weight", 1000, 0.5, fraction=0.8, clock=time.time)
    config = BinanceConfig(enabled=True, rest_url=fake.url)
    acct = BinanceAccount(config, budget=budget)
    # 9 requests at 3 a window: however late in a window the burst starts, at least two
    # more windows must be waited for.
    for _ in range(9):
        await acct.rest.depth("BTCUSDT", 5000)
    await acct.close()
    assert budget.waits >= 2
    assert fake.used_weight <= 800
    # Without the budget's margin the same burst meets the limit.
    fake.used_weight = 0
    greedy = BinanceAccount(config, budget=RequestBudget(
        "binance greedy", 100_000, 0.5, fraction=1.0, clock=time.time))
    with pytest.raises(TemporaryExchangeError, match="429"):
        for _ in range(40):
            await greedy.rest.depth("BTCUSDT", 5000)
    await greedy.close()


async def test_secrets_never_reach_logs_or_errors(
    fake: FakeBinanceRest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acct = make_account(fake, request_timeout_seconds=0.3)
    await acct.open()
    errors: list[BaseException] = []
    fake.retry_after = 0
    scenarios = [("fault", "429"), ("fault", "418"), ("fault", "500"), ("fault", "-1022"),
                 ("order_fault", "stall"), ("order_fault", "reject"), (None, None)]
    for number, (switch, value) in enumerate(scenarios):
        fake.fault = fake.order_fault = None
        if switch is not None:
            setattr(fake, switch, value)
        fake.stall_seconds = 1
        try:
            await acct.place_order(order(f"arb{number}b"))
            await acct.query_order(order(f"arb{number}b"))
        except Exception as err:
            errors.append(err)
    await acct.close()
    assert len(errors) >= 5
    assert KEY not in repr(acct) and SECRET not in repr(acct.rest)
    for err in errors:
        for e in (err, err.__cause__, err.__context__):
            if e is not None:
                assert SECRET not in str(e) and SECRET not in repr(e) and KEY not in str(e)
    assert caplog.records
    for record in caplog.records:
        assert SECRET not in record.getMessage() and KEY not in record.getMessage()


# --- configuration and plugin ------------------------------------------------------------


def test_rest_url_defaults_follow_the_testnet_flag() -> None:
    assert BinanceConfig().resolved_rest_url() == "https://api.binance.com"
    assert BinanceConfig(testnet=True).resolved_rest_url() == "https://testnet.binance.vision"
    assert BinanceConfig(rest_url="http://127.0.0.1:1/").resolved_rest_url() == (
        "http://127.0.0.1:1")


def test_trading_settings_are_checked() -> None:
    schema = {**CORE_SECTIONS, **binance_plugin.register_config_sections()}
    good = structure_document(
        tomlkit.parse(
            "[exchanges.binance]\nrecv_window_ms = 10000\nrequest_budget_fraction = 0.5\n"),
        schema, file="arbot.toml")
    assert good["exchanges.binance"].recv_window_ms == 10000
    bad = tomlkit.parse(
        '[exchanges.binance]\nrest_url = "ws://x"\nrecv_window_ms = 70000\n'
        "request_budget_fraction = 1.5\n")
    with pytest.raises(ConfigError) as caught:
        structure_document(bad, schema, file="arbot.toml")
    message = str(caught.value)
    for key in ("rest_url", "recv_window_ms", "request_budget_fraction"):
        assert key in message


def test_hook_register_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    strategy = SimpleNamespace(symbols=["BTCUSDT", "ETHUSDT"])
    runtime = SimpleNamespace(plugin_state={}, strategies=[strategy])
    off = {"exchanges.binance": BinanceConfig()}
    assert binance_plugin.register_accounts(config=off, runtime=runtime) == []
    on = {"exchanges.binance": BinanceConfig(enabled=True)}
    [account] = binance_plugin.register_accounts(config=on, runtime=runtime)
    assert isinstance(account, BinanceAccount) and isinstance(account, ExchangeAccount)
    # Created without keys; it says which are missing.
    assert account.missing_credentials() == ["BINANCE_API_KEY", "BINANCE_API_SECRET"]
    assert account._symbols() == ["BTCUSDT", "ETHUSDT"]
    # A reload with the same settings keeps the very same account; new settings replace it.
    [same] = binance_plugin.register_accounts(
        config={"exchanges.binance": BinanceConfig(enabled=True)}, runtime=runtime)
    assert same is account
    [other] = binance_plugin.register_accounts(
        config={"exchanges.binance": BinanceConfig(enabled=True, recv_window_ms=9000)},
        runtime=runtime)
    assert other is not account and other != account
    assert runtime.plugin_state[binance_plugin.ACCOUNT_STATE] is other
