"""The engine: latest quotes per (symbol, exchange), signals numbered and handed on, and
subscribers that can never slow it down."""

from __future__ import annotations

import attrs
import pytest

from arbotd import Bus, Engine, Ledger, Quote, Signal, SubscriptionClosed

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
        engine.on_feed_state("a", False, "sequence gap")
        events = [sub.receive_nowait().payload for _ in range(2)]
    assert [e["usable"] for e in events] == [True, False]
    assert "a: market data unusable: sequence gap" in caplog.text


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
