"""The opportunity rules of the cross-exchange strategy, against hand-computed numbers."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from arbotd import Ledger, Quote
from arbotd._engine import Market
from arbotd.inventory import InventoryConfig
from arbotd_xarb import ArbitrageConfig, CrossExchangeStrategy

NOW = 1_700_000_000.0


def quote(exchange: str, bid: float, ask: float, size: float = 5.0, *, age: float = 0.0,
          symbol: str = "BTCUSDT") -> Quote:
    return Quote(exchange, symbol, bid, ask, size, size, NOW - age, NOW - age)


def make_market(*, fees: dict[str, float] | None = None, premium: dict[str, float] | None = None,
                ledger: Ledger | None = None, trading: bool = False) -> Market:
    market = Market(ledger or Ledger())
    market.now = NOW
    market.fees = fees or {"a": 0.001, "b": 0.001}
    market.premium = premium or {}
    market.usable = dict.fromkeys(market.fees, True)
    market.trading = trading
    return market


def config(**changes: object) -> ArbitrageConfig:
    base = ArbitrageConfig(
        symbols=["BTCUSDT"],
        min_profit_threshold=0.002,
        trade_amount_usd=100.0,
        max_position_size=1000.0,
        slippage_tolerance=0.0005,
        cooldown_seconds=60.0,
    )
    return attrs.evolve(base, **changes)


def evaluate(strategy: CrossExchangeStrategy, market: Market, *quotes: Quote) -> list:
    book = {q.exchange: q for q in quotes}
    return strategy.evaluate(quotes[-1], book, market)


def test_hand_computed_opportunity() -> None:
    # Buy 1 BTC on a at 100.0, sell on b at 101.0:
    #   gross 1.0, fees 100 * 0.001 + 101 * 0.001 = 0.201, slippage 0.0005 * 100 = 0.05
    #   net 0.749 on 100 spent = 0.749 %
    strategy = CrossExchangeStrategy(config())
    market = make_market()
    [signal] = evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert (signal.buy_exchange, signal.sell_exchange) == ("a", "b")
    assert (signal.buy_price, signal.sell_price) == (100.0, 101.0)
    assert signal.quantity == pytest.approx(1.0)
    assert signal.profit == pytest.approx(0.749)
    assert signal.fees == pytest.approx(0.201)
    assert signal.profit_percent == pytest.approx(0.749)
    assert signal.spread_percent == pytest.approx(1.0)
    assert signal.price_tolerance == 0.0005
    assert 0 < signal.confidence <= 1
    assert market.rejections == {}


def test_both_directions_are_evaluated() -> None:
    strategy = CrossExchangeStrategy(config())
    [signal] = evaluate(strategy, make_market(), quote("b", 101.0, 101.5), quote("a", 99.5, 100.0))
    assert (signal.buy_exchange, signal.sell_exchange) == ("a", "b")


def test_below_threshold() -> None:
    strategy = CrossExchangeStrategy(config(min_profit_threshold=0.008))
    market = make_market()
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"below_threshold": 1}


def test_fees_per_exchange() -> None:
    # A 0.5 % taker fee on b: fees 0.1 + 0.505 = 0.605, net 1 - 0.605 - 0.05 = 0.345.
    strategy = CrossExchangeStrategy(config())
    market = make_market(fees={"a": 0.001, "b": 0.005})
    [signal] = evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert signal.profit == pytest.approx(0.345)


def test_premium_baseline_is_not_profit() -> None:
    # b usually trades 1 % above: 101 / 1.01 = 100.0, so there is no spread at all.
    strategy = CrossExchangeStrategy(config())
    market = make_market(premium={"b": 1.0})
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5)) == []
    # Against the baseline the books do not even cross: no opportunity to count.
    assert market.rejections == {}
    # 1.3 % above its usual 1 %: crossing against it, but short of the threshold.
    market = make_market(premium={"b": 1.0})
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.3, 102.0)) == []
    assert market.rejections == {"below_threshold": 1}
    # 2.5 % above its usual 1 %: 102.5 / 1.01 = 101.4851..., net per unit
    # 1.4851 - (0.1 + 0.1025) - 0.05 = 1.2326...
    market = make_market(premium={"b": 1.0})
    [signal] = evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 102.5, 103.0))
    assert signal.profit == pytest.approx(102.5 / 1.01 - 100.0 - 0.2025 - 0.05)


def test_quantity_limited_by_displayed_depth() -> None:
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0))
    [signal] = evaluate(strategy, make_market(),
                        quote("a", 99.5, 100.0, size=0.3), quote("b", 101.0, 101.5))
    assert signal.quantity == pytest.approx(0.3)
    assert signal.profit == pytest.approx(0.749 * 0.3)


def test_quantity_limited_by_max_position_size() -> None:
    strategy = CrossExchangeStrategy(config(trade_amount_usd=1000.0, max_position_size=250.0))
    [signal] = evaluate(strategy, make_market(), quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert signal.quantity == pytest.approx(2.5)


def test_too_little_depth_is_rejected() -> None:
    strategy = CrossExchangeStrategy(config())
    market = make_market()
    assert evaluate(strategy, market,
                    quote("a", 99.5, 100.0, size=0.01), quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"depth": 1}


def test_balances_limit_quantity_while_trading() -> None:
    ledger = Ledger()
    ledger.set_balance("a", "USDT", Decimal("50"))
    ledger.set_balance("b", "BTC", Decimal("2"))
    strategy = CrossExchangeStrategy(config())
    market = make_market(ledger=ledger, trading=True)
    [signal] = evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    # 50 USDT buys 50 / (100 * 1.001 * 1.0005) BTC, rounded down to 1e-8.
    assert signal.quantity == pytest.approx(50 / (100 * 1.001 * 1.0005), abs=1e-8)
    assert signal.quantity <= 50 / (100 * 1.001 * 1.0005)


def test_base_balance_on_the_selling_exchange_limits_quantity() -> None:
    ledger = Ledger()
    ledger.set_balance("a", "USDT", Decimal("10000"))
    ledger.set_balance("b", "BTC", Decimal("0.4"))
    strategy = CrossExchangeStrategy(config())
    [signal] = evaluate(strategy, make_market(ledger=ledger, trading=True),
                        quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert signal.quantity == pytest.approx(0.4)


def test_no_balance_is_rejected() -> None:
    ledger = Ledger()
    ledger.set_balance("a", "USDT", Decimal("10000"))
    strategy = CrossExchangeStrategy(config())
    market = make_market(ledger=ledger, trading=True)
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"balance": 1}


def test_stale_quote_is_never_traded() -> None:
    strategy = CrossExchangeStrategy(config(max_spread_age_seconds=5.0))
    market = make_market()
    assert evaluate(strategy, market,
                    quote("a", 99.5, 100.0, age=5.5), quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"stale": 1}


def test_unusable_feed_is_never_traded() -> None:
    strategy = CrossExchangeStrategy(config())
    market = make_market()
    market.usable["b"] = False
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"feed_down": 1}


def test_spread_beyond_max_spread_threshold_is_bad_data(caplog: pytest.LogCaptureFixture) -> None:
    strategy = CrossExchangeStrategy(config(max_spread_threshold=0.5))
    market = make_market()
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 160.0, 161.0)) == []
    assert market.rejections == {"anomaly": 1}
    assert "max_spread_threshold" in caplog.text


def test_route_cooldown() -> None:
    strategy = CrossExchangeStrategy(config(cooldown_seconds=60.0))
    market = make_market()
    quotes = (quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert len(evaluate(strategy, market, *quotes)) == 1
    for later, expected in ((59.0, 0), (60.0, 1)):
        market.now = NOW + later
        fresh = [attrs.evolve(q, received_ts=market.now) for q in quotes]
        assert len(evaluate(strategy, market, *fresh)) == expected
    assert market.rejections == {"cooldown": 1}


def test_max_trades_per_hour() -> None:
    strategy = CrossExchangeStrategy(config(cooldown_seconds=0.0, max_trades_per_hour=2))
    market = make_market()
    quotes = (quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert len(evaluate(strategy, market, *quotes)) == 1
    assert len(evaluate(strategy, market, *quotes)) == 1
    assert evaluate(strategy, market, *quotes) == []
    assert market.rejections == {"max_trades_per_hour": 1}


def test_symbols_not_configured_are_ignored() -> None:
    strategy = CrossExchangeStrategy(config())
    market = make_market()
    eth = (quote("a", 99.5, 100.0, symbol="ETHUSDT"), quote("b", 101.0, 101.5, symbol="ETHUSDT"))
    assert evaluate(strategy, market, *eth) == []
    assert market.rejections == {}


def test_reload_applies_new_threshold_in_place() -> None:
    strategy = CrossExchangeStrategy(config())
    strategy.apply(config(min_profit_threshold=0.05))
    market = make_market()
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"below_threshold": 1}


# --- inventory skew ---------------------------------------------------------------------
# The hand-computed book above: buy on a at 100.0, sell on b at 101.0, net 0.749 %.


def skewed_market(btc_a: str, btc_b: str, usdt_a: str = "10000", usdt_b: str = "10000",
                  ) -> Market:
    ledger = Ledger()
    for venue, asset, amount in (("a", "BTC", btc_a), ("b", "BTC", btc_b),
                                 ("a", "USDT", usdt_a), ("b", "USDT", usdt_b)):
        ledger.set_balance(venue, asset, Decimal(amount))
    market = make_market(ledger=ledger, trading=True)
    market.inventory.configure(InventoryConfig(), ["BTCUSDT"])
    return market


def test_skew_lowers_the_threshold_of_a_route_toward_the_targets() -> None:
    # BTC all on b, USDT even: buying on a moves BTC back (pull (1 + 0) / 2 = 0.5).
    # With a threshold of 0.8 % and a skew of 0.4 the route needs 0.8 * (1 - 0.2) = 0.64 %:
    # the 0.749 % book trades, although it is below min_profit_threshold.
    strategy = CrossExchangeStrategy(config(min_profit_threshold=0.008, inventory_skew=0.4))
    market = skewed_market("0", "10")
    [signal] = evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert signal.threshold == pytest.approx(0.0064)
    assert signal.threshold_reason.startswith("inventory_skew: pull +0.500")
    assert "toward" in signal.threshold_reason


def test_skew_raises_the_threshold_of_a_route_away_from_the_targets() -> None:
    # BTC all on a: buying more on a takes it further away (pull -0.5). Threshold 0.6 %,
    # skew 0.5: the route needs 0.6 * 1.25 = 0.75 % > 0.749 %: turned down for the skew.
    strategy = CrossExchangeStrategy(config(min_profit_threshold=0.006, inventory_skew=0.5))
    market = skewed_market("10", "0")
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"inventory_skew": 1}
    # Below even the unskewed threshold, the book is below_threshold as before.
    strategy = CrossExchangeStrategy(config(min_profit_threshold=0.008, inventory_skew=0.5))
    market = skewed_market("10", "0")
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"below_threshold": 1}


def test_skew_at_full_drift_and_never_below_the_fees() -> None:
    # Full drift (pull 1: BTC all on b, USDT all on a) and skew 1: threshold 0. A book
    # whose net after fees and slippage is below 0 is still no trade.
    strategy = CrossExchangeStrategy(config(min_profit_threshold=0.01, inventory_skew=1.0))
    market = skewed_market("0", "10", usdt_a="20000", usdt_b="0")
    [signal] = evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert signal.threshold == 0.0
    # 100.0 -> 100.25: gross 0.25 < fees 0.20025 + slippage 0.05: a loss, turned down.
    market = skewed_market("0", "10", usdt_a="20000", usdt_b="0")
    assert evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 100.25, 100.5)) == []
    assert market.rejections == {"below_threshold": 1}


def test_no_skew_no_drift_gives_the_plain_threshold() -> None:
    strategy = CrossExchangeStrategy(config(inventory_skew=0.5))
    market = skewed_market("5", "5")
    [signal] = evaluate(strategy, market, quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert (signal.threshold, signal.threshold_reason) == (0.002, "min_profit_threshold")
    [plain] = evaluate(CrossExchangeStrategy(config()), make_market(),
                       quote("a", 99.5, 100.0), quote("b", 101.0, 101.5))
    assert (plain.threshold, plain.threshold_reason) == (0.002, "min_profit_threshold")
    assert attrs.evolve(plain, threshold=None, threshold_reason=None) == attrs.evolve(
        signal, threshold=None, threshold_reason=None, id=plain.id, confidence=plain.confidence)


def test_balance_rejections_count_their_lost_profit() -> None:
    # No USDT on a: the route cannot buy; its profit (0.749) is counted once per cool-down.
    strategy = CrossExchangeStrategy(config())
    market = skewed_market("0", "10", usdt_a="0")
    for _ in range(3):
        assert evaluate(strategy, market, quote("a", 99.5, 100.0),
                        quote("b", 101.0, 101.5)) == []
    assert market.rejections == {"balance": 3}
    assert market.inventory.balance_rejections == 3
    assert market.inventory.lost_profit == pytest.approx(0.749)


@pytest.mark.parametrize("symbols, message", [
    (["BTCUSDT", "Ä"], "upper case, no separator"),
    (["btcusdt"], "upper case, no separator"),
    (["BTC-USDT"], "upper case, no separator"),
    (["BTCXYZ"], "'BTCXYZ' does not end in a quote currency arbotd knows"),
])
def test_symbols_that_cannot_be_traded_are_refused_by_name(tmp_path, symbols, message) -> None:
    from arbotd import ConfigError, make_plugin_manager
    from arbotd._runtime import load_with_plugins

    path = tmp_path / "arbot.toml"
    path.write_text("[arbitrage]\nsymbols = [" + ", ".join(f'"{s}"' for s in symbols) + "]\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_with_plugins(path, make_plugin_manager())
    assert message in str(caught.value)
