"""Sizing by walking both books (``spec/behaviour.md``, "Depth"), against hand-computed
numbers.

Fees 0.1 % on both venues, slippage allowance 0.05 %, threshold 0.2 %: the unit bought
at ask ``a`` and sold at bid ``b`` earns ``0.999 b - 1.0015 a`` and pays when that is at
least ``0.002 a``, i.e. when ``b >= 1.0045045 a``.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest
from test_opportunity import NOW, config, evaluate, make_market

from arbotd import Ledger, Quote, Signal
from arbotd_xarb import CrossExchangeStrategy

Levels = tuple[tuple[float, float], ...]


def book(exchange: str, *, bids: Levels, asks: Levels, age: float = 0.0) -> Quote:
    """A quote from a feed that keeps an order book: its best level and its levels."""
    return Quote(exchange, "BTCUSDT", bids[0][0], asks[0][0], bids[0][1], asks[0][1],
                 NOW - age, NOW - age, bids=bids, asks=asks)


def unit_net(ask: float, bid: float) -> float:
    return bid * 0.999 - ask * 1.0015


def one_signal(strategy: CrossExchangeStrategy, *quotes: Quote, **market: object) -> Signal:
    signals = evaluate(strategy, make_market(**market), *quotes)  # type: ignore[arg-type]
    assert len(signals) == 1, signals
    return signals[0]


# --- the walk -------------------------------------------------------------------------------


def test_the_second_level_is_not_needed_when_the_first_fills_the_trade() -> None:
    # trade_amount_usd 50 buys 0.5 at 100: the second levels would pay, but are not needed,
    # and the signal is the best levels' own.
    strategy = CrossExchangeStrategy(config(trade_amount_usd=50.0))
    deep = one_signal(strategy,
                      book("a", bids=((99.5, 1.0),), asks=((100.0, 1.0), (100.1, 5.0))),
                      book("b", bids=((101.0, 1.0), (100.9, 5.0)), asks=((101.5, 1.0),)))
    top = one_signal(CrossExchangeStrategy(config(trade_amount_usd=50.0)),
                     book("a", bids=((99.5, 1.0),), asks=((100.0, 1.0),)),
                     book("b", bids=((101.0, 1.0),), asks=((101.5, 1.0),)))
    assert deep == top
    assert (deep.quantity, deep.buy_price, deep.sell_price) == (0.5, 100.0, 101.0)
    assert (deep.buy_limit, deep.sell_limit) == (100.0, 101.0)
    assert deep.profit == pytest.approx(0.5 * 0.749)


def test_a_second_level_that_does_not_pay_is_not_taken() -> None:
    # At 100.6 a unit needs a bid of 101.05: 101 does not pay, although the average of all
    # three units (bought at 100.4 on average) would.
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    signal = one_signal(strategy,
                        book("a", bids=((99.5, 1.0),), asks=((100.0, 1.0), (100.6, 2.0))),
                        book("b", bids=((101.0, 5.0),), asks=((101.5, 1.0),)))
    assert signal.quantity == 1.0
    assert (signal.buy_price, signal.sell_price) == (100.0, 101.0)
    assert (signal.buy_limit, signal.sell_limit) == (100.0, 101.0)
    assert signal.profit == pytest.approx(0.749)

    # When the first levels do not pay (100.4 < 1.0045045 x 100), nothing deeper can:
    # no opportunity at all.
    market = make_market()
    quotes = (book("a", bids=((99.5, 1.0),), asks=((100.0, 1.0), (100.1, 5.0))),
              book("b", bids=((100.4, 1.0), (100.3, 5.0)), asks=((100.9, 1.0),)))
    assert evaluate(CrossExchangeStrategy(config(trade_amount_usd=1000.0)), market,
                    *quotes) == []
    assert market.rejections == {"below_threshold": 1}


def test_the_threshold_met_by_the_first_units_only() -> None:
    # The walk, pair of levels by pair of levels:
    #   0.5 at 100   / 101.5: net 1.2485 each (1.25 %)
    #   0.3 at 100.2 / 101.5: net 1.0482 each
    #   0.2 at 100.2 / 101  : net 0.5487 each (0.55 %)
    #   at 100.6 / 101      : net 0.1481 (0.147 %): below 0.2 %, the walk ends.
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    signal = one_signal(
        strategy,
        book("a", bids=((99.5, 1.0),), asks=((100.0, 0.5), (100.2, 0.5), (100.6, 1.0))),
        book("b", bids=((101.5, 0.8), (101.0, 1.0)), asks=((102.0, 1.0),)),
    )
    assert signal.quantity == pytest.approx(1.0)
    # Spent 50 + 30.06 + 20.04 = 100.1; received 50.75 + 30.45 + 20.2 = 101.4.
    assert signal.buy_price == pytest.approx(100.1)
    assert signal.sell_price == pytest.approx(101.4)
    assert (signal.buy_limit, signal.sell_limit) == (100.2, 101.0)
    profit = 0.5 * unit_net(100.0, 101.5) + 0.3 * unit_net(100.2, 101.5) \
        + 0.2 * unit_net(100.2, 101.0)
    assert profit == pytest.approx(1.04845)
    assert signal.profit == pytest.approx(profit)
    # Gross 1.3 less fees 0.2015 and the slippage allowance 0.05005, the same figure.
    assert signal.profit == pytest.approx(1.3 - 0.2015 - 0.05005)
    assert signal.fees == pytest.approx(0.2015)
    assert signal.profit_percent == pytest.approx(1.04845 / 100.1 * 100)
    # The best levels' spread, as before.
    assert signal.spread_percent == pytest.approx(1.5)
    assert (signal.buy_size, signal.sell_size) == (0.5, 0.8)


def test_depth_on_the_selling_side_only() -> None:
    # a is a level-1 feed (5 at 100); b's bids pay down to 100.8 (100.4 < 100.45).
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    signal = one_signal(
        strategy,
        Quote("a", "BTCUSDT", 99.5, 100.0, 5.0, 5.0, NOW, NOW),
        book("b", bids=((101.0, 0.4), (100.8, 0.4), (100.4, 1.0)), asks=((101.5, 1.0),)),
    )
    assert signal.quantity == pytest.approx(0.8)
    assert (signal.buy_price, signal.buy_limit) == (100.0, 100.0)
    assert signal.sell_price == pytest.approx(100.9)
    assert signal.sell_limit == 100.8
    assert signal.profit == pytest.approx(0.4 * 0.749 + 0.4 * unit_net(100.0, 100.8))


def test_depth_on_the_buying_side_only() -> None:
    # b is a level-1 feed (5 at 101); a's asks pay up to 100.5 (101 >= 1.0045045 x 100.5,
    # 101 < 1.0045045 x 100.6).
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    signal = one_signal(
        strategy,
        book("a", bids=((99.5, 1.0),), asks=((100.0, 0.5), (100.5, 0.5), (100.6, 3.0))),
        Quote("b", "BTCUSDT", 101.0, 101.5, 5.0, 5.0, NOW, NOW),
    )
    assert signal.quantity == pytest.approx(1.0)
    assert signal.buy_price == pytest.approx(100.25)
    assert (signal.buy_limit, signal.sell_price, signal.sell_limit) == (100.5, 101.0, 101.0)
    assert signal.profit == pytest.approx(0.5 * 0.749 + 0.5 * unit_net(100.5, 101.0))


# --- caps in the middle of a level ------------------------------------------------------------


ASKS = ((100.0, 0.5), (100.2, 2.0))
BIDS = ((101.5, 5.0),)


def two_levels() -> tuple[Quote, Quote]:
    return (book("a", bids=((99.5, 1.0),), asks=ASKS),
            book("b", bids=BIDS, asks=((102.0, 1.0),)))


def test_trade_amount_usd_caps_in_the_middle_of_the_second_level() -> None:
    # 80 to spend: 50 on the first level, 30 on the second (30 / 100.2 units).
    strategy = CrossExchangeStrategy(config(trade_amount_usd=80.0))
    signal = one_signal(strategy, *two_levels())
    expected = math.floor((0.5 + 30 / 100.2) * 1e8) / 1e8
    assert signal.quantity == pytest.approx(expected, abs=1e-12)
    assert signal.quantity * signal.buy_price == pytest.approx(80.0, abs=1e-5)
    assert signal.quantity * signal.buy_price <= 80.0
    assert (signal.buy_limit, signal.sell_limit) == (100.2, 101.5)
    part = signal.quantity - 0.5
    assert signal.profit == pytest.approx(0.5 * unit_net(100.0, 101.5)
                                          + part * unit_net(100.2, 101.5))


def test_max_position_size_caps_like_trade_amount_usd() -> None:
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0, max_position_size=80.0))
    signal = one_signal(strategy, *two_levels())
    assert signal.quantity == pytest.approx(math.floor((0.5 + 30 / 100.2) * 1e8) / 1e8,
                                            abs=1e-12)


def funded(quote_on_a: str, base_on_b: str = "10") -> Ledger:
    ledger = Ledger()
    ledger.set_balance("a", "USDT", Decimal(quote_on_a))
    ledger.set_balance("b", "BTC", Decimal(base_on_b))
    return ledger


def test_the_quote_balance_caps_at_the_worst_level_reached() -> None:
    # 80 USDT: the buy's limit is 100.2 once it reaches the second level, so the whole
    # order must be covered at 100.2, with the fee and the tolerance.
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    signal = one_signal(strategy, *two_levels(), ledger=funded("80"), trading=True)
    cover = 80 / (100.2 * 1.001 * 1.0005)
    assert signal.quantity == pytest.approx(math.floor(cover * 1e8) / 1e8, abs=1e-12)
    assert signal.quantity <= cover
    assert signal.buy_limit == 100.2


def test_a_quote_balance_that_cannot_cover_the_next_level_stays_at_the_first() -> None:
    # 50.1 USDT covers 0.5 at 100 (0.50025 with fee and tolerance) but only 0.49925 at a
    # limit of 100.2: the trade keeps the first level's half unit and its limit.
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    signal = one_signal(strategy, *two_levels(), ledger=funded("50.1"), trading=True)
    assert signal.quantity == 0.5
    assert (signal.buy_price, signal.buy_limit) == (100.0, 100.0)
    # Balances too small for the smallest trade (10 USDT) turn it down for that reason
    # (a route that has not just opened a signal: one in its cool-down is not walked).
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    market = make_market(ledger=funded("5"), trading=True)
    assert evaluate(strategy, market, *two_levels()) == []
    assert market.rejections == {"balance": 1}


def test_a_route_in_its_cool_down_is_turned_down_as_such_before_its_balances() -> None:
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0, cooldown_seconds=60.0))
    one_signal(strategy, *two_levels(), ledger=funded("50.1"), trading=True)
    # The same route a moment later, with too little to trade: the cool-down says why,
    # and no opportunity is counted as lost for want of balance.
    market = make_market(ledger=funded("5"), trading=True)
    assert evaluate(strategy, market, *two_levels()) == []
    assert market.rejections == {"cooldown": 1}
    assert market.inventory.balance_rejections == 0
    assert market.inventory.lost_profit == 0


def test_the_base_balance_caps_in_the_middle_of_a_level() -> None:
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    signal = one_signal(strategy, *two_levels(), ledger=funded("10000", "0.7"), trading=True)
    assert signal.quantity == pytest.approx(0.7)
    assert signal.buy_price == pytest.approx((50 + 0.2 * 100.2) / 0.7)
    assert signal.buy_limit == 100.2


# --- premium baselines ---------------------------------------------------------------------------


def test_premium_baselines_apply_to_every_level() -> None:
    # b usually trades 1 % above: its bids count as bid / 1.01. Per unit bought at 100:
    #   102.5 -> 101.485 - 100 - (0.1 + 0.1025 + 0.05) = 1.2327 (pays)
    #   102   -> 100.990 - 100 - (0.1 + 0.102 + 0.05)  = 0.7381 (pays)
    #   101.3 -> 100.297 - 100 - (0.1 + 0.1013 + 0.05) = 0.0457 (0.05 %: does not pay,
    #            although without the premium it would earn about 1 %)
    def net(bid: float) -> float:
        return bid / 1.01 - 100.0 - (100.0 * 0.001 + bid * 0.001 + 0.0005 * 100.0)

    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    signal = one_signal(
        strategy,
        book("a", bids=((99.5, 1.0),), asks=((100.0, 2.0),)),
        book("b", bids=((102.5, 0.5), (102.0, 1.0), (101.3, 5.0)), asks=((103.0, 1.0),)),
        premium={"b": 1.0},
    )
    assert net(101.3) / 100 < 0.002 < net(102.0) / 100
    assert signal.quantity == pytest.approx(1.5)
    assert signal.sell_price == pytest.approx((0.5 * 102.5 + 102.0) / 1.5)
    assert (signal.buy_limit, signal.sell_limit) == (100.0, 102.0)
    assert signal.profit == pytest.approx(0.5 * net(102.5) + net(102.0))
    # Fees are the exchanges' own, on the prices paid (not premium-adjusted).
    assert signal.fees == pytest.approx(0.001 * (150.0 + 0.5 * 102.5 + 102.0))


# --- one level on both sides is the best-level rule, exactly ------------------------------------


def best_level_rule(buy: Quote, sell: Quote, *, fees: tuple[float, float],
                    premium: tuple[float, float], slippage: float, threshold: float,
                    cap: float, balances: tuple[float, float] | None = None
                    ) -> tuple[float, ...] | None:
    """The best-level rule as it was written before books had depth: (quantity, profit,
    fees, profit_percent, confidence) of the signal, or ``None``."""
    ask, bid = buy.ask, sell.bid
    fee_buy, fee_sell = fees
    cost_per_unit = ask * fee_buy + bid * fee_sell + slippage * ask
    net_per_unit = (bid / premium[1] - ask / premium[0]) - cost_per_unit
    profit_fraction = net_per_unit / ask
    if profit_fraction < threshold:
        return None
    depth = min(buy.ask_size, sell.bid_size)
    quantity = min(depth, cap / ask)
    if quantity * ask < min(cap, 10.0):
        return None
    if balances is not None:
        affordable = balances[0] / (ask * (1 + fee_buy) * (1 + slippage))
        quantity = min(quantity, affordable, balances[1])
        if quantity * ask < min(cap, 10.0):
            return None
    quantity = round(math.floor(quantity / 1e-8) * 1e-8, 8)
    depth_score = min(1.0, depth / (2 * quantity)) if quantity > 0 else 0.0
    return (quantity, net_per_unit * quantity, (ask * fee_buy + bid * fee_sell) * quantity,
            profit_fraction * 100, round(0.5 * depth_score + 0.5, 4))


@pytest.mark.parametrize("as_book", [False, True], ids=["level-1 feeds", "one-level books"])
@pytest.mark.parametrize("trading", [False, True], ids=["watching", "trading"])
def test_one_level_on_both_sides_gives_exactly_the_best_level_signal(
    as_book: bool, trading: bool
) -> None:
    rng = random.Random(7)
    compared = 0
    for _ in range(400):
        ask = rng.uniform(10, 70_000)
        bid = ask * (1 + rng.uniform(0.001, 0.02))
        sizes = (rng.uniform(0.001, 3), rng.uniform(0.001, 3))
        fees = (rng.choice((0.001, 0.00075, 0.002)), rng.choice((0.001, 0.0005)))
        premium = (1 + rng.choice((0.0, 0.5)) / 100, 1 + rng.choice((0.0, 1.0)) / 100)
        cap = rng.choice((100.0, 1000.0, 50_000.0))
        balances = (rng.uniform(5, 20_000), rng.uniform(0.0001, 2)) if trading else None
        levels = {"bids": ((bid, sizes[1]),), "asks": ((ask, sizes[0]),)} if as_book else {}
        buy = Quote("a", "BTCUSDT", ask * 0.999, ask, 1.0, sizes[0], NOW, NOW,
                    bids=((ask * 0.999, 1.0),) if as_book else None,
                    asks=levels.get("asks"))
        sell = Quote("b", "BTCUSDT", bid, bid * 1.001, sizes[1], 1.0, NOW, NOW,
                     bids=levels.get("bids"),
                     asks=((bid * 1.001, 1.0),) if as_book else None)
        strategy = CrossExchangeStrategy(config(trade_amount_usd=cap, max_position_size=1e9))
        ledger = None
        if balances is not None:
            ledger = Ledger()
            ledger.set_balance("a", "USDT", Decimal(repr(balances[0])))
            ledger.set_balance("b", "BTC", Decimal(repr(balances[1])))
        market = make_market(fees={"a": fees[0], "b": fees[1]},
                             premium={"a": (premium[0] - 1) * 100, "b": (premium[1] - 1) * 100},
                             ledger=ledger, trading=trading)
        expected = best_level_rule(
            buy, sell, fees=fees, premium=(market.premium["a"] / 100 + 1,
                                           market.premium["b"] / 100 + 1),
            slippage=0.0005, threshold=0.002, cap=cap,
            balances=(float(ledger.available("a", "USDT")), float(ledger.available("b", "BTC")))
            if ledger is not None else None)
        # Against the premiums the books may cross the other way too (b -> a): only
        # the route a -> b is modelled here.
        signals = [s for s in strategy.evaluate(sell, {"a": buy, "b": sell}, market)
                   if s.buy_exchange == "a"]
        if expected is None:
            assert signals == []
            continue
        [signal] = signals
        got = (signal.quantity, signal.profit, signal.fees, signal.profit_percent,
               signal.confidence)
        assert got == expected
        assert (signal.buy_price, signal.sell_price) == (ask, bid)
        assert (signal.buy_limit, signal.sell_limit) == (ask, bid)
        compared += 1
    assert compared > 100
