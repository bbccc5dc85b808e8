"""The engine: latest quotes per (symbol, exchange), signals numbered and handed on, and
subscribers that can never slow it down."""

from __future__ import annotations

import attrs
import pytest
import trio

from arbotd import Bus, Engine, Ledger, Quote, Signal, SubscriptionClosed
from arbotd_xarb import ArbitrageConfig, CrossExchangeStrategy

NOW = 1_700_000_000.0


class EveryQuoteSignals:
    """A strategy that sees an opportunity in every quote of BTCUSDT."""

    name = "test"
    symbols = ("BTCUSDT",)

    def evaluate(self, quote: Quote, quotes: dict, market: object) -> list[Signal]:
        if quote.symbol != "BTCUSDT":
            market.reject("not_mine")
            return []
        return [Signal(0, quote.symbol, quote.exchange, quote.exchange, quote.ask, quote.bid,
                       1, 1, 1.0, 0.5, 0.5, 0.1, 0.1, 1.0, market.now)]


def quote(exchange: str = "a", symbol: str = "BTCUSDT", bid: float = 100.0) -> Quote:
    return Quote(exchange, symbol, bid, bid + 0.5, 1.0, 1.0, NOW, NOW)


def make_engine(**kwargs: object) -> Engine:
    engine = Engine(strategies=[EveryQuoteSignals()], bus=Bus(), ledger=Ledger(),
                    clock=lambda: NOW, **kwargs)
    engine.set_venues({"a": 0.001, "b": 0.001}, {})
    return engine


def test_keeps_the_latest_quote_per_symbol_and_exchange() -> None:
    engine = make_engine()
    engine.on_quote(quote("a", bid=100.0))
    engine.on_quote(quote("a", bid=101.0))
    engine.on_quote(quote("b", bid=99.0))
    assert {e: q.bid for e, q in engine.book["BTCUSDT"].items()} == {"a": 101.0, "b": 99.0}
    assert engine.quotes_processed == 3


def test_signals_are_numbered_handed_on_and_counted() -> None:
    seen: list[Signal] = []

    def handler(signal: Signal) -> Signal:
        seen.append(signal)
        return attrs.evolve(signal, executed=True)

    recorded: list[Signal] = []
    engine = make_engine(on_signal=handler, on_signal_recorded=recorded.append)
    engine.next_signal_id = 41
    engine.on_quote(quote())
    engine.on_quote(quote())
    assert [s.id for s in seen] == [41, 42]
    assert all(s.executed for s in recorded)
    assert engine.signals_detected == 2 and engine.signals_last_hour() == 2


def test_rejections_are_counted_by_reason() -> None:
    engine = make_engine()
    engine.on_quote(quote(symbol="ETHUSDT"))
    assert engine.rejection_counts() == {"not_mine": 1}


def test_feed_state_changes_are_published_once(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()
    with engine.bus.subscribe(kinds=["status"]) as sub:
        engine.on_feed_state("a", True)
        engine.on_feed_state("a", True)
        engine.on_quote(quote("a"))
        engine.on_quote(quote("a"))
        engine.on_feed_state("a", True)
        engine.on_feed_state("a", False, "sequence gap")
        engine.on_feed_state("a", False, "still down")
        events = [sub.receive_nowait().payload for _ in range(2)]
        with pytest.raises(trio.WouldBlock):
            sub.receive_nowait()
    assert [e["usable"] for e in events] == [True, False]
    assert "a: market data unusable: sequence gap" in caplog.text


def connected(*venues: str) -> Engine:
    """An engine whose venues are connected and have each quoted BTCUSDT once."""
    engine = make_engine()
    for venue in venues:
        engine.on_feed_state(venue, True)
        engine.on_quote(quote(venue))
    return engine


def test_a_venue_is_usable_only_once_data_arrives_after_its_connect() -> None:
    engine = make_engine()
    engine.on_feed_state("a", True)
    assert not engine.is_usable("a") and not engine.market.usable["a"]
    assert engine.fresh_quote("a", "BTCUSDT", 5.0) is None
    engine.on_quote(quote("a", bid=101.0))
    assert engine.is_usable("a") and engine.market.usable["a"]
    fresh = engine.fresh_quote("a", "BTCUSDT", 5.0)
    assert fresh is not None and fresh.bid == 101.0


def test_quotes_from_before_a_disconnect_are_never_used_again() -> None:
    engine = connected("a", "b")
    engine.on_quote(quote("a", symbol="ETHUSDT"))
    revision = engine.book_revision
    engine.on_feed_state("a", False, "no message for 10 s (stale)")
    assert "a" not in engine.book["BTCUSDT"] and "a" not in engine.book["ETHUSDT"]
    assert engine.book_revision > revision  # the /prices answer is rebuilt
    # The socket is back but no data came: still nothing of a's is usable.
    engine.on_feed_state("a", True)
    assert not engine.is_usable("a")
    assert engine.fresh_quote("a", "BTCUSDT", 1e9) is None
    assert list(engine.book["BTCUSDT"]) == ["b"]
    # A fresh BTCUSDT quote makes a usable again, for BTCUSDT only: ETHUSDT has no quote
    # since the reconnect.
    engine.on_quote(quote("a", bid=102.0))
    assert engine.is_usable("a")
    assert engine.fresh_quote("a", "BTCUSDT", 5.0).bid == 102.0  # type: ignore[union-attr]
    assert engine.fresh_quote("a", "ETHUSDT", 1e9) is None


def test_a_symbol_whose_book_fell_out_of_sync_is_forgotten_alone() -> None:
    engine = connected("a", "b")
    engine.on_quote(quote("a", symbol="ETHUSDT"))
    revision = engine.book_revision
    engine.forget_symbol("a", "BTCUSDT")
    assert list(engine.book["BTCUSDT"]) == ["b"] and "a" in engine.book["ETHUSDT"]
    assert engine.fresh_quote("a", "BTCUSDT", 1e9) is None
    assert engine.is_usable("a") and engine.fresh_quote("a", "ETHUSDT", 1e9) is not None
    assert engine.book_revision > revision  # the /prices answer is rebuilt
    engine.forget_symbol("a", "BTCUSDT")  # nothing left to forget: nothing changes
    engine.forget_symbol("c", "XRPUSDT")
    assert engine.book_revision == revision + 1
    # A quote from the book in sync again is used at once.
    engine.on_quote(quote("a", bid=103.0))
    assert engine.fresh_quote("a", "BTCUSDT", 5.0).bid == 103.0  # type: ignore[union-attr]


def test_quotes_that_came_while_a_venue_was_down_are_dropped_at_its_connect() -> None:
    engine = connected("a", "b")
    engine.on_feed_state("a", False, "connection 1 closed")
    engine.on_quote(quote("a", bid=90.0))  # from a connection that stayed up
    assert engine.fresh_quote("a", "BTCUSDT", 1e9) is None and engine.price_usd("BTC") == 100.25
    engine.on_feed_state("a", True)
    assert "a" not in engine.book["BTCUSDT"]


def test_no_signal_uses_a_venue_while_it_waits_for_data() -> None:
    class CrossVenueSignals:
        """A signal for every quote that finds a usable other venue's quote beside it."""

        name = "cross"
        symbols = ("BTCUSDT",)

        def evaluate(self, quote: Quote, quotes: dict, market: object) -> list[Signal]:
            return [
                Signal(0, quote.symbol, other.exchange, quote.exchange, other.ask, quote.bid,
                       1, 1, 1.0, 0.5, 0.5, 0.1, 0.1, 1.0, market.now)  # type: ignore[attr-defined]
                for other in quotes.values()
                if other.exchange != quote.exchange
                and market.usable.get(other.exchange)  # type: ignore[attr-defined]
            ]

    signals: list[Signal] = []
    engine = Engine(strategies=[CrossVenueSignals()], bus=Bus(), ledger=Ledger(),
                    clock=lambda: NOW, on_signal_recorded=signals.append)
    engine.set_venues({"a": 0.001, "b": 0.001}, {})
    for venue in ("a", "b"):
        engine.on_feed_state(venue, True)
        engine.on_quote(quote(venue))
    signals.clear()
    engine.on_feed_state("b", False, "stale")
    engine.on_feed_state("b", True)
    engine.on_quote(quote("a"))
    assert signals == []


def test_prices_for_valuation_come_from_usable_venues_only() -> None:
    engine = connected("a", "b")
    engine.on_quote(quote("b", bid=200.0))
    assert engine.price_usd("BTC") == pytest.approx((100.25 + 200.25) / 2)
    engine.on_feed_state("b", False, "stale")
    assert engine.price_usd("BTC") == 100.25
    engine.on_feed_state("a", False, "stale")
    assert engine.price_usd("BTC") is None
    # A venue never said to be connected does not value anything either.
    engine.on_quote(quote("a"))
    assert engine.price_usd("BTC") is None
    engine.ledger.set_balance("a", "BTC", "1")
    engine.ledger.set_balance("a", "USDT", "50")
    assert engine.ledger.value_usd(engine.price_usd) == 50.0  # for display
    assert engine.ledger.full_value_usd(engine.price_usd) is None
    assert engine.ledger.unpriced_assets(engine.price_usd) == ["BTC"]
    engine.on_feed_state("a", True)
    engine.on_quote(quote("a"))
    assert engine.ledger.full_value_usd(engine.price_usd) == 150.25


def test_a_symbol_whose_book_is_unusable_is_forgotten_on_that_venue_only() -> None:
    signals: list[Signal] = []
    engine = connected("a", "b")
    engine.on_signal_recorded = signals.append
    engine.strategies = [CrossExchangeStrategy(ArbitrageConfig(
        symbols=["BTCUSDT", "ETHUSDT"], cooldown_seconds=0.0))]
    engine.on_quote(quote("b", bid=102.0))
    engine.on_quote(quote("b", symbol="ETHUSDT"))
    assert [s.route for s in signals] == [("BTCUSDT", "a", "b")]
    revision = engine.book_revision
    # b's BTCUSDT book failed its checksum: nothing trades on it, b's other books stay.
    engine.forget_symbol("b", "BTCUSDT")
    assert engine.book_revision > revision  # the /prices answer is rebuilt
    assert engine.fresh_quote("b", "BTCUSDT", 1e9) is None
    assert engine.fresh_quote("b", "ETHUSDT", 5.0) is not None
    assert engine.is_usable("b")
    signals.clear()
    engine.on_quote(quote("a"))
    assert signals == []
    engine.forget_symbol("b", "BTCUSDT")  # again, or a symbol never quoted: nothing
    engine.forget_symbol("b", "SOLUSDT")
    # Resynchronised: its next quote is used again.
    engine.on_quote(quote("b", bid=102.0))
    assert [s.route for s in signals] == [("BTCUSDT", "a", "b")]


def test_venues_no_longer_enabled_are_forgotten() -> None:
    engine = make_engine()
    engine.on_quote(quote("a"))
    engine.on_quote(quote("b"))
    engine.set_venues({"a": 0.001}, {})
    assert list(engine.book["BTCUSDT"]) == ["a"]


def test_a_stalled_subscriber_never_holds_the_engine_back() -> None:
    engine = make_engine()
    stalled_prices = engine.bus.subscribe(kinds=["price"])
    stalled_signals = engine.bus.subscribe(kinds=["signal"], max_pending=100)
    for i in range(20_000):
        engine.on_quote(quote("a" if i % 2 else "b", bid=100.0 + i % 7))
    assert engine.quotes_processed == 20_000
    # Prices coalesce per (symbol, exchange): two keys, however many quotes.
    first = stalled_prices.receive_nowait()
    second = stalled_prices.receive_nowait()
    assert {first.payload.exchange, second.payload.exchange} == {"a", "b"}
    assert stalled_prices.coalesced == 20_000 - 2
    # Signals are never coalesced: the subscriber that fell too far behind is cut off.
    with pytest.raises(SubscriptionClosed, match="too slow"):
        stalled_signals.receive_nowait()
