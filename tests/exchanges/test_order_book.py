"""The local order book every depth feed keeps."""

from __future__ import annotations

import pytest

from arbotd.exchange import OrderBook


def test_a_snapshot_then_changes_keep_each_side_sorted_best_first() -> None:
    book = OrderBook()
    assert book.quote("x", "BTCUSDT", 5, 1.0, 2.0) is None  # no snapshot yet
    book.reset([("100.0", "1"), ("99.5", "2"), ("99.0", "3")],
               [("100.5", "1.5"), ("101.0", "2.5")], update_id=7)
    assert book.valid and book.update_id == 7
    book.apply([("99.8", "4"), ("99.5", "0")], [("100.5", "0"), ("100.7", "0.5")])
    bids, asks = book.top(10)
    assert bids == ((100.0, 1.0), (99.8, 4.0), (99.0, 3.0))
    assert asks == ((100.7, 0.5), (101.0, 2.5))
    quote = book.quote("x", "BTCUSDT", 2, 1.0, 2.0)
    assert quote is not None
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (100.0, 1.0, 100.7, 0.5)
    assert quote.bids == ((100.0, 1.0), (99.8, 4.0)) and quote.asks == asks
    assert quote.bid_levels == quote.bids and quote.ask_levels == quote.asks


def test_removing_a_level_that_is_not_there_changes_nothing() -> None:
    book = OrderBook()
    book.reset([("1", "1")], [("2", "1")])
    book.apply([("0.5", "0")], [])
    assert book.top(5) == (((1.0, 1.0),), ((2.0, 1.0),))


def test_invalid_and_crossed_books() -> None:
    book = OrderBook()
    book.reset([("100", "1")], [("101", "1")])
    book.apply([("101.5", "1")], [])
    assert book.crossed()
    book.invalidate()
    assert not book.valid and book.quote("x", "S", 5, 0, 0) is None
    assert book.top(5) == ((), ())
    with pytest.raises(ValueError):
        book.apply([("abc", "1")], [])


def test_the_exchanges_own_strings_are_kept_for_checksums() -> None:
    book = OrderBook(keep_text=True)
    book.reset([("8476.98", "415"), ("8477", "7")], [("8476.99", "0.5")])
    book.apply([("8477", "0")], [("8477.10", "1.2")])
    assert book.top_text(5) == ([("8476.98", "415")], [("8476.99", "0.5"),
                                                       ("8477.10", "1.2")])


def test_a_one_level_quote_walks_its_best_level() -> None:
    from arbotd import Quote

    quote = Quote("x", "S", 1.0, 2.0, 3.0, 4.0, 0.0, 0.0)
    assert quote.bid_levels == ((1.0, 3.0),) and quote.ask_levels == ((2.0, 4.0),)


def test_the_top_levels_follow_every_change_whatever_its_depth() -> None:
    """Against a plain dict of levels, through random changes at every depth, asked for
    the top at several depths in turn (the book keeps the last top it gave)."""
    import random

    rng = random.Random(5)
    book = OrderBook()
    bids = {100 - k: float(k) for k in range(1, 30)}
    asks = {101 + k: float(k + 1) for k in range(30)}
    book.reset([(str(p), str(q)) for p, q in bids.items()],
               [(str(p), str(q)) for p, q in asks.items()])
    for step in range(2000):
        levels, sign = (bids, -1) if rng.random() < 0.5 else (asks, 1)
        price = (100 - rng.randint(1, 40)) if sign < 0 else (101 + rng.randint(0, 40))
        size = 0.0 if rng.random() < 0.3 else float(rng.randint(1, 9))
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)
        change = [(str(price), str(size))]
        book.apply(change if sign < 0 else [], change if sign > 0 else [])
        depth = (1, 5, 20, 60)[step % 4] if step % 3 else 5
        expected_bids = tuple(sorted(((float(p), q) for p, q in bids.items()),
                                     reverse=True)[:depth])
        expected_asks = tuple(sorted((float(p), q) for p, q in asks.items())[:depth])
        assert book.top(depth) == (expected_bids, expected_asks), step
        assert book.top(depth) == (expected_bids, expected_asks), step  # kept, unchanged
    # A change deeper than the levels asked for leaves them as they were: the same
    # levels come back without being built again.
    kept = book.top(3)
    book.apply([(str(98 - len(bids)), "1")], [(str(102 + len(asks)), "1")])
    again = book.top(3)
    assert again[0] is kept[0] and again[1] is kept[1]
    book.apply([("100.5", "1")], [])  # a new best bid
    assert book.top(3)[0] is not kept[0] and book.top(3)[0][0] == (100.5, 1.0)
