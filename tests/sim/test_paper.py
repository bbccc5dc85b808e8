"""Paper fills against the engine's book."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
import trio

from arbotd import Bus, Engine, Ledger, Order, OrderStatus, Quote, Side
from arbotd_sim.config import PaperConfig
from arbotd_sim.paper import PaperExecutor

D = Decimal
NOW = 1_750_000_000.0
CERTAIN = PaperConfig(fill_delay_seconds=0.5, partial_fill_rate=0.0, reject_rate=0.0)


class FakeRuntime:
    def __init__(self) -> None:
        self.ledger = Ledger()
        self.now = NOW
        self.engine = Engine(strategies=[], bus=Bus(), ledger=self.ledger, clock=self.clock)
        self.engine.set_venues({"a": 0.001, "b": 0.002}, {})
        self.engine.on_feed_state("a", True)
        self.engine.on_feed_state("b", True)
        self.engine.on_quote(Quote("a", "BTCUSDT", 99.9, 100.0, 2.0, 0.5, NOW, NOW))

    def clock(self) -> float:
        return self.now

    strategies = (type("Strategy", (), {"symbols": ["BTCUSDT"]})(),)


def order(side: Side = Side.BUY, price: str = "100.05", quantity: str = "0.3",
          purpose: str = "entry", order_id: str = "arb1b") -> Order:
    return Order(order_id, 1, "a", "BTCUSDT", side, D(price), D(quantity), purpose=purpose)


def executor(settings: PaperConfig = CERTAIN) -> tuple[PaperExecutor, FakeRuntime]:
    runtime = FakeRuntime()
    paper = PaperExecutor(settings, runtime, seed=42, reference_prices={"BTCUSDT": 65000.0})
    return paper, runtime


async def test_ioc_buy_fills_at_the_ask_after_the_delay(autojump_clock: object) -> None:
    paper, _ = executor()
    start = trio.current_time()
    placed, [fill] = await paper.place_order(order(price="100.05"))
    assert trio.current_time() - start == pytest.approx(0.5)
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("0.3")
    assert (fill.price, fill.quantity) == (D("100.0"), D("0.3"))
    assert fill.fee == D("100.0") * D("0.3") * D("0.001") and fill.fee_asset == "USDT"


async def test_ioc_buy_expires_when_the_price_moved_beyond_the_limit(
    autojump_clock: object,
) -> None:
    paper, _ = executor()
    placed, fills = await paper.place_order(order(price="99.95"))
    assert placed.status is OrderStatus.EXPIRED and fills == []
    assert "beyond the limit" in placed.reason


async def test_ioc_sell_fills_at_the_bid_up_to_the_displayed_size(autojump_clock: object) -> None:
    paper, _ = executor()
    placed, [fill] = await paper.place_order(order(Side.SELL, price="99.85", quantity="3"))
    assert (fill.price, fill.quantity) == (D("99.9"), D("2.0"))  # bid size 2.0
    assert placed.status is OrderStatus.PARTIALLY_FILLED


async def test_market_orders_fill_completely(autojump_clock: object) -> None:
    paper, _ = executor()
    placed, [fill] = await paper.place_order(order(Side.SELL, price="0", quantity="5",
                                                   purpose="unwind"))
    assert placed.status is OrderStatus.FILLED and fill.quantity == D("5")


async def test_rejects_and_partial_fills_at_their_rates(autojump_clock: object) -> None:
    paper, _ = executor(attrs.evolve(CERTAIN, reject_rate=1.0))
    placed, fills = await paper.place_order(order())
    assert placed.status is OrderStatus.REJECTED and fills == []
    paper, _ = executor(attrs.evolve(CERTAIN, partial_fill_rate=1.0, partial_fill_ratio=0.7))
    _, [fill] = await paper.place_order(order())
    assert fill.quantity == D("0.21")


async def test_the_same_order_id_makes_the_same_random_choice(autojump_clock: object) -> None:
    settings = attrs.evolve(CERTAIN, reject_rate=0.5)
    outcomes = set()
    for _ in range(5):
        paper, _ = executor(settings)
        placed, _ = await paper.place_order(order(order_id="arb77b"))
        outcomes.add(placed.status)
    assert len(outcomes) == 1
    different = set()
    for i in range(40):
        paper, _ = executor(settings)
        placed, _ = await paper.place_order(order(order_id=f"arb{i}b"))
        different.add(placed.status)
    assert different == {OrderStatus.FILLED, OrderStatus.REJECTED}


async def test_no_fill_without_a_recent_price(autojump_clock: object) -> None:
    paper, runtime = executor()
    runtime.now = NOW + 11  # the book's last quote is 11 s old
    placed, fills = await paper.place_order(order())
    assert placed.status is OrderStatus.REJECTED and "no recent price" in placed.reason
    assert fills == []
    runtime.now = NOW
    runtime.engine.on_feed_state("a", False, "reconnecting")
    placed, _ = await paper.place_order(order())
    assert placed.status is OrderStatus.REJECTED


def test_accounts_are_funded_once_per_venue() -> None:
    paper, runtime = executor(attrs.evolve(CERTAIN, balances={"USDT": 5000.0},
                                           coin_balance_usd=13000.0))
    paper.start()
    assert runtime.ledger.total("a", "USDT") == D("5000.0")
    assert runtime.ledger.total("b", "BTC") == D("0.2")  # 13000 at the start price 65000
    runtime.ledger.set_balance("a", "USDT", D("1"))
    paper.start()  # starting trading again keeps the account as it is
    assert runtime.ledger.total("a", "USDT") == D("1")


# --- fills across the levels of a book ------------------------------------------------------

ASKS = ((100.0, 0.5), (100.1, 1.0), (100.3, 2.0))
BIDS = ((99.9, 2.0), (99.8, 1.0), (99.5, 4.0))


def deep_executor(settings: PaperConfig = CERTAIN) -> PaperExecutor:
    paper, runtime = executor(settings)
    runtime.engine.on_quote(Quote("a", "BTCUSDT", 99.9, 100.0, 2.0, 0.5, NOW, NOW,
                                  BIDS, ASKS))
    return paper


def taken(fills: list) -> list[tuple[Decimal, Decimal, Decimal]]:
    return [(f.price, f.quantity, f.fee) for f in fills]


async def test_ioc_buy_walks_the_asks_one_fill_per_level(autojump_clock: object) -> None:
    placed, fills = await deep_executor().place_order(order(price="100.2", quantity="1.2"))
    # 0.5 at the best ask, the other 0.7 at the second level; fee 0.1 % of each notional
    assert taken(fills) == [(D("100.0"), D("0.5"), D("0.05")),
                            (D("100.1"), D("0.7"), D("0.07007"))]
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == D("1.2")
    vwap = sum(f.notional for f in fills) / placed.filled_quantity
    assert vwap == D("120.07") / D("1.2")


async def test_ioc_limit_stops_the_walk_at_its_price(autojump_clock: object) -> None:
    placed, fills = await deep_executor().place_order(order(price="100.2", quantity="3"))
    # the third level (100.3) is beyond the limit: 1.5 of 3 filled, the rest cancelled
    assert [(f.price, f.quantity) for f in fills] == [(D("100.0"), D("0.5")),
                                                     (D("100.1"), D("1.0"))]
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.filled_quantity == D("1.5")
    sold, fills = await deep_executor().place_order(
        order(Side.SELL, price="99.8", quantity="2.5", order_id="arb2s"))
    assert [(f.price, f.quantity) for f in fills] == [(D("99.9"), D("2.0")),
                                                     (D("99.8"), D("0.5"))]
    assert sold.status is OrderStatus.FILLED
    expired, fills = await deep_executor().place_order(order(price="99.95"))
    assert expired.status is OrderStatus.EXPIRED and fills == []
    assert expired.reason == "price moved to 100.0, beyond the limit"


async def test_a_partial_fill_takes_its_share_across_the_levels(autojump_clock: object
                                                                ) -> None:
    paper = deep_executor(attrs.evolve(CERTAIN, partial_fill_rate=1.0, partial_fill_ratio=0.5))
    placed, fills = await paper.place_order(order(price="100.2", quantity="1.2"))
    assert [(f.price, f.quantity) for f in fills] == [(D("100.0"), D("0.5")),
                                                     (D("100.1"), D("0.1"))]
    assert placed.status is OrderStatus.PARTIALLY_FILLED


async def test_market_orders_walk_until_filled_or_the_book_runs_out(
    autojump_clock: object,
) -> None:
    bought, fills = await deep_executor().place_order(
        order(price="0", quantity="2", purpose="hedge", order_id="arb3h"))
    assert [(f.price, f.quantity) for f in fills] == [
        (D("100.0"), D("0.5")), (D("100.1"), D("1.0")), (D("100.3"), D("0.5"))]
    assert bought.status is OrderStatus.FILLED
    sold, fills = await deep_executor().place_order(
        order(Side.SELL, price="0", quantity="10", purpose="unwind", order_id="arb3u"))
    assert [(f.price, f.quantity) for f in fills] == [
        (D("99.9"), D("2.0")), (D("99.8"), D("1.0")), (D("99.5"), D("4.0"))]
    assert sold.status is OrderStatus.PARTIALLY_FILLED and sold.filled_quantity == D("7.0")
    assert "3 levels ran out" in sold.reason
