"""The building blocks every exchange plugin shares: symbol rules and rounding, and the
request budget."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from arbotd.exchange import (
    RequestBudget,
    SymbolRules,
    common_quantity,
    decimal_text,
    parse_retry_after,
)

D = Decimal

BTC = SymbolRules("BTCUSDT", tick_size=D("0.01"), step_size=D("0.00001"), min_qty=D("0.00001"),
                  max_qty=D("9000"), min_notional=D("5"), max_market_qty=D("100"))


@pytest.mark.parametrize(("price", "side", "expected"), [
    ("65000.017", "buy", "65000.01"),   # a buy never pays more than its limit
    ("65000.011", "sell", "65000.02"),  # a sell never sells for less
    ("65000.01", "buy", "65000.01"),
    ("65000.01", "sell", "65000.01"),
])
def test_prices_are_put_on_the_tick_grid_without_crossing_the_limit(price, side, expected):
    assert BTC.round_price(D(price), side) == D(expected)


def test_quantities_are_rounded_down_to_the_lot_size():
    assert BTC.round_quantity(D("0.123456789")) == D("0.12345")
    assert BTC.round_quantity(D("0.000009")) == 0


@pytest.mark.parametrize(("quantity", "price", "market", "problem"), [
    ("0.001", "65000", False, None),
    ("0", "65000", False, "quantity rounds to 0"),
    ("0.00005", "65000", False, "notional 3.25 is below the minimum 5"),
    ("9001", "1", False, "quantity 9001 is above the maximum 9000"),
    ("101", "1", True, "quantity 101 is above the maximum 100"),
    ("101", "1", False, None),
])
def test_problems_name_the_rule_an_order_breaks(quantity, price, market, problem):
    found = BTC.problem(D(quantity), D(price), market=market)
    assert (found is None) if problem is None else (problem in found)


def test_a_symbol_that_is_not_trading_is_refused():
    halted = SymbolRules("BTCUSDT", trading=False, status="BREAK")
    assert halted.problem(D(1), D(1)) == "BTCUSDT is not trading (status BREAK)"


def test_both_legs_get_a_quantity_every_lot_size_accepts():
    a = SymbolRules("X", step_size=D("0.001"))
    b = SymbolRules("X", step_size=D("0.0004"))
    assert common_quantity(D("0.999"), a, b) == D("0.998")
    assert common_quantity(D("0.999"), a, SymbolRules("X")) == D("0.999")
    assert common_quantity(D("12.5"), SymbolRules("X", step_size=D("1")),
                           SymbolRules("X", step_size=D("0.1"))) == D("12")


@pytest.mark.parametrize(("value", "text"), [
    (D("1E+2"), "100"), (D("0.0100"), "0.01"), (D("65000.00"), "65000"), (D("0"), "0"),
    (D("0.00000001"), "0.00000001"),
])
def test_decimals_go_on_the_wire_without_exponents(value, text):
    assert decimal_text(value) == text


def test_retry_after_is_read_as_seconds():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-3") is None


async def test_the_budget_waits_for_the_next_window_instead_of_passing_the_limit(
    autojump_clock,
):
    budget = RequestBudget("test", limit=10, window=60, fraction=0.8)
    start = trio.current_time()
    for _ in range(8):
        await budget.acquire()
    assert trio.current_time() == start  # 8 of 10 allowed at once
    assert not budget.available()
    await budget.acquire()
    assert trio.current_time() >= start - start % 60 + 60  # waited for the next minute
    assert budget.waits == 1


async def test_the_budget_trusts_what_the_exchange_reports(autojump_clock):
    budget = RequestBudget("test", limit=6000, window=60, fraction=0.8)
    budget.observe_used(4790)
    assert budget.available(10) and not budget.available(11)
    budget.observe_remaining(5000)
    assert budget.used == 1000


async def test_a_429_stops_every_request_until_retry_after(autojump_clock):
    budget = RequestBudget("test", limit=100, window=1)
    start = trio.current_time()
    budget.block_for(30)
    assert not budget.available()
    await budget.acquire()
    assert trio.current_time() - start >= 30


async def test_a_request_that_can_never_fit_is_an_error():
    budget = RequestBudget("test", limit=10, window=1, fraction=0.5)
    with pytest.raises(ValueError, match="never fits"):
        await budget.acquire(6)


async def test_connections_are_spaced_by_connect_interval() -> None:
    from trio_websocket import serve_websocket

    from arbotd.exchange import Connection, WebSocketFeed

    opened: list[float] = []

    async def handler(request):  # type: ignore[no-untyped-def]
        opened.append(trio.current_time())
        ws = await request.accept()
        await trio.sleep_forever()
        await ws.aclose()

    class SpacedFeed(WebSocketFeed):
        name = "spaced"
        connect_interval = 0.2

        def connections(self, symbols):  # type: ignore[no-untyped-def]
            return [Connection(url, {s: s}) for s in symbols]

        def parse(self, raw, connection, state, received):  # type: ignore[no-untyped-def]
            return None

    class Sink:
        def on_quote(self, quote): ...  # type: ignore[no-untyped-def]
        def on_feed_state(self, exchange, usable, reason=""): ...  # type: ignore[no-untyped-def]

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        url = f"ws://127.0.0.1:{server.port}/"
        feed = SpacedFeed(None, taker_fee=0.001)
        with trio.fail_after(10):
            await nursery.start(feed.stream_quotes, ["A", "B", "C"], Sink())
        nursery.cancel_scope.cancel()
    assert len(opened) == 3
    # Each connection waited its turn: 0.4 s between the first and the third attempt,
    # seen here as handshakes that end a little later or earlier on a busy machine.
    assert opened[2] - opened[0] >= 0.3
