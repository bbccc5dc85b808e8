"""A feed that finds one symbol's book out of sync makes the engine forget that symbol's
quote of the venue, and nothing else."""

from __future__ import annotations

from arbotd import Bus, Engine, Ledger, Quote

NOW = 1_700_000_000.0


def quote(exchange: str, symbol: str, bid: float = 100.0) -> Quote:
    return Quote(exchange, symbol, bid, bid + 0.5, 1.0, 1.0, NOW, NOW,
                 ((bid, 1.0), (bid - 1, 2.0)), ((bid + 0.5, 1.0), (bid + 1.5, 2.0)))


def test_forget_symbol_drops_that_quote_only_until_the_next_one() -> None:
    engine = Engine(strategies=[], bus=Bus(), ledger=Ledger(), clock=lambda: NOW)
    engine.set_venues({"a": 0.001, "b": 0.001}, {})
    for venue in ("a", "b"):
        engine.on_feed_state(venue, True)
        engine.on_quote(quote(venue, "BTCUSDT"))
        engine.on_quote(quote(venue, "ETHUSDT"))
    revision = engine.book_revision
    engine.forget_symbol("a", "BTCUSDT")
    assert engine.fresh_quote("a", "BTCUSDT", 1e9) is None
    assert engine.book_revision > revision  # the /prices answer is rebuilt
    # The venue stays usable, with its other symbols; the other venue is untouched.
    assert engine.is_usable("a")
    assert engine.fresh_quote("a", "ETHUSDT", 1e9) is not None
    assert engine.fresh_quote("b", "BTCUSDT", 1e9) is not None
    # Forgetting what is not there changes nothing.
    revision = engine.book_revision
    engine.forget_symbol("a", "BTCUSDT")
    engine.forget_symbol("a", "SOLUSDT")
    assert engine.book_revision == revision
    # The quote from the fresh snapshot brings it back.
    engine.on_quote(quote("a", "BTCUSDT", bid=101.0))
    fresh = engine.fresh_quote("a", "BTCUSDT", 1e9)
    assert fresh is not None and fresh.bid == 101.0
