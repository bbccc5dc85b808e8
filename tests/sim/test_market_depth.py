"""The simulated venues' books in depth (``[simulation] depth_levels``): deterministic for
a seed, on the venue's tick, thicker away from the touch, and never changing the best
level a level-1 run quotes."""

from __future__ import annotations

import statistics
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from arbotd import ConfigError, Quote
from arbotd._config import structure_document
from arbotd_sim import market
from arbotd_sim.config import SimulationConfig
from arbotd_sim.market import BLOCK_TICKS, VenueSimulator
from arbotd_sim.venue import SimSession, SimVenue

LEVEL_ONE = SimulationConfig()
DEPTH = attrs.evolve(LEVEL_ONE, depth_levels=10)


def run(config: SimulationConfig, venue: str, ticks: int) -> list[list[Quote]]:
    sim = VenueSimulator(config, venue)
    return [quotes for _, quotes in sim.ticks(1_700_000_000.0, ticks)]


def test_a_seed_gives_the_same_books_and_another_seed_other_books() -> None:
    ticks = BLOCK_TICKS + 200  # across a block boundary
    first = run(DEPTH, "sim_alpha", ticks)
    assert first == run(DEPTH, "sim_alpha", ticks)
    assert all(len(q.bids) == len(q.asks) == 10 for qs in first for q in qs)
    assert run(attrs.evolve(DEPTH, seed=43), "sim_alpha", 50) != first[:50]
    # the levels behind the best are the venue's own
    assert [q.asks[1:] for q in run(DEPTH, "sim_beta", 1)[0]] != [
        q.asks[1:] for q in first[0]]


def test_a_seek_lands_on_the_book_stepping_reaches() -> None:
    stepped = run(DEPTH, "sim_gamma", 2 * BLOCK_TICKS + 20)
    sim = VenueSimulator(DEPTH, "sim_gamma")
    for tick in (2 * BLOCK_TICKS + 9, 3, BLOCK_TICKS - 1, BLOCK_TICKS + 500):
        sim.seek(tick)
        assert sim.step(1_700_000_000.0 + tick / DEPTH.updates_per_second) == stepped[tick]


def test_depth_never_changes_the_best_level() -> None:
    level_one = run(LEVEL_ONE, "sim_beta", 600)
    deep = run(DEPTH, "sim_beta", 600)
    for plain_quotes, deep_quotes in zip(level_one, deep, strict=True):
        for plain, quote in zip(plain_quotes, deep_quotes, strict=True):
            assert plain.bids is None and plain.asks is None
            assert attrs.evolve(quote, bids=None, asks=None) == plain
            assert quote.bids[0] == (quote.bid, quote.bid_size)
            assert quote.asks[0] == (quote.ask, quote.ask_size)


def test_books_are_sorted_on_the_tick_and_thicker_away_from_the_touch() -> None:
    sizes: dict[int, list[float]] = {k: [] for k in range(10)}
    for quotes in run(DEPTH, "sim_alpha", 1500):
        for q in quotes:
            decimals = market.price_decimals(DEPTH.start_prices[q.symbol])
            for side, descending in ((q.bids, True), (q.asks, False)):
                prices = [price for price, _ in side]
                assert prices == sorted(prices, reverse=descending)
                assert len(set(prices)) == len(prices)
                for k, (price, size) in enumerate(side):
                    assert price > 0 and round(price, decimals) == price
                    assert size > 0
                    sizes[k].append(size * q.mid)
            # levels a half spread (x 0.5-1.5) apart: 10 levels within ~15 half spreads
            assert (q.asks[-1][0] - q.bids[-1][0]) / q.mid < 2 * 15 * 1e-4
    means = [statistics.fmean(sizes[k]) for k in range(10)]
    assert means == sorted(means)
    assert means[9] / means[0] == pytest.approx(1 + market.DEPTH_GROWTH * 9, rel=0.1)


def test_a_cheap_coin_with_wide_levels_keeps_its_bids_above_zero() -> None:
    config = attrs.evolve(LEVEL_ONE, depth_levels=50, half_spread_bps=1000.0,
                          start_prices={"PEPEUSDT": 0.00001})
    quote = VenueSimulator(config, "sim_alpha", ["PEPEUSDT"]).step(0.0)[0]
    assert len(quote.asks) == 50
    assert 1 <= len(quote.bids) < 50 and all(price > 0 for price, _ in quote.bids)


async def test_a_venue_publishes_its_depth_to_the_engine(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Sink:
        def __init__(self) -> None:
            self.quotes: list[Quote] = []

        def on_quote(self, quote: Quote) -> None:
            self.quotes.append(quote)

        def on_feed_state(self, exchange: str, connected: bool, reason: str = "") -> None:
            pass

    sink = Sink()
    venue = SimVenue(attrs.evolve(LEVEL_ONE, depth_levels=3), "sim_alpha",
                     session=SimSession(lambda: 1_700_000_000.0))
    with trio.move_on_after(1.0):
        await venue.stream_quotes(["BTCUSDT"], sink)
    assert len(sink.quotes) == 20
    assert all(len(q.bid_levels) == len(q.ask_levels) == 3 for q in sink.quotes)
    changed = attrs.evolve(LEVEL_ONE, depth_levels=5)
    assert SimVenue(changed, "sim_alpha") != venue  # a reload restarts the feed


def structure(table: dict[str, Any]) -> SimulationConfig:
    sections = structure_document(
        {"simulation": table}, {"simulation": SimulationConfig}, file="arbot.toml"
    )
    return sections["simulation"]


@pytest.mark.parametrize(("value", "words"), [(0, "in [1, 50]"), (51, "got 51")])
def test_depth_levels_are_bounded(value: int, words: str) -> None:
    assert structure({}).depth_levels == 1
    assert structure({"depth_levels": 20}).depth_levels == 20
    with pytest.raises(ConfigError) as caught:
        structure({"depth_levels": value})
    [problem] = caught.value.problems
    assert problem.path == "simulation.depth_levels" and words in problem.message
