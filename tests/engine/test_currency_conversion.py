"""Venues quoted in another currency (``spec/behaviour.md``, "Venues quoted in another
currency"): their quotes are converted at the rate market's conservative side before the
book sees them, and are unusable without a fresh rate."""

from __future__ import annotations

import pytest

from arbotd import Bus, Engine, Ledger, Quote
from arbotd.fx import Conversion
from arbotd_xarb import ArbitrageConfig, CrossExchangeStrategy

NOW = 1_700_000_000.0
WON = Conversion("KRW", "USDTKRW", max_age=5.0)


def krw(symbol: str, bid: float, ask: float, ts: float = NOW, **kw: object) -> Quote:
    return Quote("won", symbol, bid, ask, 1.0, 2.0, ts, ts, **kw)


def make_engine(strategies: list | None = None) -> Engine:
    engine = Engine(strategies=strategies or [], bus=Bus(), ledger=Ledger(),
                    clock=lambda: NOW)
    engine.set_venues({"won": 0.001, "usd": 0.001}, {}, {"won": WON})
    engine.on_feed_state("won", True)
    engine.on_feed_state("usd", True)
    return engine


def test_asks_are_divided_by_the_rate_bid_and_bids_by_the_rate_ask() -> None:
    engine = make_engine()
    engine.on_quote(krw("USDTKRW", 1_350.0, 1_360.0))
    engine.on_quote(krw("BTCUSDT", 91_800_000.0, 92_480_000.0))
    quote = engine.book["BTCUSDT"]["won"]
    # Buying BTC with KRW: the KRW comes from selling USDT at the rate's bid (1,350).
    assert quote.ask == pytest.approx(92_480_000.0 / 1_350.0)  # 68,503.70
    # Selling BTC for KRW: the KRW buys USDT back at the rate's ask (1,360).
    assert quote.bid == pytest.approx(91_800_000.0 / 1_360.0)  # 67,500.00
    assert (quote.native_bid, quote.native_ask) == (91_800_000.0, 92_480_000.0)
    assert (quote.rate_bid, quote.rate_ask) == (1_350.0, 1_360.0)
    assert (quote.bid_size, quote.ask_size) == (1.0, 2.0)
    # The rate market is the venue's rate, not a symbol of the book.
    assert "USDTKRW" not in engine.book
    assert engine.rates["won"].bid == 1_350.0


def test_every_book_level_is_converted() -> None:
    engine = make_engine()
    engine.on_quote(krw("USDTKRW", 1_000.0, 1_250.0))
    engine.on_quote(krw("BTCUSDT", 50_000.0, 60_000.0,
                        bids=((50_000.0, 1.0), (45_000.0, 3.0)),
                        asks=((60_000.0, 2.0), (70_000.0, 4.0))))
    quote = engine.book["BTCUSDT"]["won"]
    assert quote.bids == ((40.0, 1.0), (36.0, 3.0))
    assert quote.asks == ((60.0, 2.0), (70.0, 4.0))


def test_a_quote_without_a_rate_is_not_used_and_counted() -> None:
    engine = make_engine()
    engine.on_quote(krw("BTCUSDT", 91_800_000.0, 92_480_000.0))
    assert "won" not in engine.book.get("BTCUSDT", {})
    assert engine.currencies()["won"]["quotes_without_rate"] == {
        "rate_missing": 1, "rate_stale": 0}


def test_a_stale_rate_makes_the_venue_unusable_until_a_fresh_one_arrives() -> None:
    engine = make_engine()
    engine.on_quote(krw("USDTKRW", 1_350.0, 1_360.0, ts=NOW))
    engine.on_quote(krw("BTCUSDT", 91_800_000.0, 92_480_000.0, ts=NOW + 5.0))
    assert "won" in engine.book["BTCUSDT"]  # 5 s old: still usable
    engine.on_quote(krw("BTCUSDT", 91_800_000.0, 92_480_000.0, ts=NOW + 5.5))
    # The rate is 5.5 s old: the symbol's last quote is forgotten, not kept.
    assert "won" not in engine.book["BTCUSDT"]
    assert engine.unconverted["won", "rate_stale"] == 1
    engine.on_quote(krw("USDTKRW", 1_400.0, 1_410.0, ts=NOW + 6.0))
    engine.on_quote(krw("BTCUSDT", 91_800_000.0, 92_480_000.0, ts=NOW + 6.0))
    assert engine.book["BTCUSDT"]["won"].ask == pytest.approx(92_480_000.0 / 1_400.0)


def test_a_feed_going_down_forgets_the_rate() -> None:
    engine = make_engine()
    engine.on_quote(krw("USDTKRW", 1_350.0, 1_360.0))
    engine.on_feed_state("won", False, "disconnected")
    engine.on_feed_state("won", True)
    engine.on_quote(krw("BTCUSDT", 91_800_000.0, 92_480_000.0))
    assert "won" not in engine.book.get("BTCUSDT", {})
    assert engine.unconverted["won", "rate_missing"] == 1


def test_venues_quoted_in_the_symbols_currency_are_not_touched() -> None:
    engine = make_engine()
    same = Quote("usd", "BTCUSDT", 67_000.0, 67_001.0, 1.0, 1.0, NOW, NOW)
    engine.on_quote(same)
    assert engine.book["BTCUSDT"]["usd"] is same


def test_signals_record_native_prices_and_the_rates_used() -> None:
    config = ArbitrageConfig(symbols=["BTCUSDT"], min_profit_threshold=0.001,
                             use_trend_filter=False, cooldown_seconds=0)
    engine = make_engine([CrossExchangeStrategy(config)])
    engine.on_quote(krw("USDTKRW", 1_350.0, 1_360.0))
    # 67,500 USDT = 91,125,000 KRW at the rate bid: 1 % under the USDT venue's bid.
    engine.on_quote(krw("BTCUSDT", 90_000_000.0, 91_125_000.0))
    engine.on_quote(Quote("usd", "BTCUSDT", 68_175.0, 68_180.0, 1.0, 1.0, NOW, NOW))
    (signal,) = engine.last_signals
    assert (signal.buy_exchange, signal.sell_exchange) == ("won", "usd")
    assert signal.buy_price == pytest.approx(67_500.0)
    assert signal.buy_native_price == pytest.approx(91_125_000.0)
    assert signal.buy_rate == 1_350.0
    assert signal.sell_price == 68_175.0
    assert signal.sell_native_price is None and signal.sell_rate is None


def test_recordings_get_the_quotes_as_the_venue_sent_them_with_the_rate_market() -> None:
    observed: list[Quote] = []
    engine = Engine(strategies=[], bus=Bus(), ledger=Ledger(), clock=lambda: NOW,
                    observe=observed.append)
    engine.set_venues({"won": 0.001}, {}, {"won": WON})
    rate = krw("USDTKRW", 1_350.0, 1_360.0)
    native = krw("BTCUSDT", 91_800_000.0, 92_480_000.0)
    engine.on_quote(rate)
    engine.on_quote(native)
    # What a replay needs to convert them again (arbotd record, raw quote storage).
    assert observed == [rate, native]


def test_a_rate_older_than_max_spread_age_makes_the_prices_stale_at_decision_time() -> None:
    """The quote was converted while its rate was fresh (1 s old), and is itself 2 s
    old when the other venue's quote arrives; but its rate is 6 s old by then, beyond
    max_spread_age_seconds (5): no signal, the opportunity is ``stale``."""
    clock = [NOW]
    config = ArbitrageConfig(symbols=["BTCUSDT"], min_profit_threshold=0.001,
                             use_trend_filter=False, cooldown_seconds=0,
                             max_spread_age_seconds=5.0)
    engine = Engine(strategies=[CrossExchangeStrategy(config)], bus=Bus(), ledger=Ledger(),
                    clock=lambda: clock[0])
    engine.set_venues({"won": 0.001, "usd": 0.001}, {}, {"won": WON})
    engine.on_feed_state("won", True)
    engine.on_feed_state("usd", True)
    engine.on_quote(krw("USDTKRW", 1_350.0, 1_360.0, ts=NOW))
    clock[0] = NOW + 4.0
    engine.on_quote(krw("BTCUSDT", 90_000_000.0, 91_125_000.0, ts=NOW + 4.0))
    assert engine.book["BTCUSDT"]["won"].rate_ts == NOW
    clock[0] = NOW + 6.0
    engine.on_quote(Quote("usd", "BTCUSDT", 68_175.0, 68_180.0, 1.0, 1.0, NOW + 6.0,
                          NOW + 6.0))
    assert not engine.last_signals
    assert engine.rejection_counts().get("stale") == 1
    # A fresh rate, and the same prices: a signal.
    engine.on_quote(krw("USDTKRW", 1_350.0, 1_360.0, ts=NOW + 6.0))
    engine.on_quote(krw("BTCUSDT", 90_000_000.0, 91_125_000.0, ts=NOW + 6.0))
    (signal,) = engine.last_signals
    assert signal.buy_exchange == "won" and signal.buy_rate == 1_350.0
