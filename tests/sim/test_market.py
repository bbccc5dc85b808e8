"""The simulated venues: a deterministic market, paced in trio time, with its config."""

from __future__ import annotations

import logging
import math
import statistics
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomlkit
import trio
import trio.testing

import arbotd
from arbotd import ConfigError, ExchangeAdapter, Quote
from arbotd._config import structure_document
from arbotd._plugins import collect_config_schema
from arbotd_sim import market, plugin
from arbotd_sim.config import SimulationConfig
from arbotd_sim.market import BLOCK_TICKS, VenueSimulator
from arbotd_sim.venue import SimSession, SimVenue

DEFAULTS = SimulationConfig()
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"]
QUIET = attrs.evolve(DEFAULTS, dislocation_per_hour=0.0)  # no dislocations


def run(config: SimulationConfig, venue: str, ticks: int, **kw: Any) -> list[list[Quote]]:
    sim = VenueSimulator(config, venue, **kw)
    return [quotes for _, quotes in sim.ticks(1_700_000_000.0, ticks)]


def best_gross(quotes: list[Quote]) -> float:
    """The best cross-venue spread among quotes of one symbol: (bid_B - ask_A) / ask_A."""
    return max((b.bid - a.ask) / a.ask for a in quotes for b in quotes if a is not b)


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_the_same_quotes() -> None:
    ticks = BLOCK_TICKS + 300  # across a block boundary
    assert run(DEFAULTS, "sim_alpha", ticks) == run(DEFAULTS, "sim_alpha", ticks)


def test_another_seed_or_venue_gives_other_quotes() -> None:
    base = run(DEFAULTS, "sim_alpha", 50)
    assert run(attrs.evolve(DEFAULTS, seed=43), "sim_alpha", 50) != base
    assert run(DEFAULTS, "sim_beta", 50) != base


def test_a_symbols_quotes_do_not_depend_on_the_other_symbols() -> None:
    alone = [q for (q,) in run(DEFAULTS, "sim_beta", 500, symbols=["SOLUSDT"])]
    together = [qs[2] for qs in run(DEFAULTS, "sim_beta", 500)]
    assert together[0].symbol == "SOLUSDT"
    assert alone == together


def test_seek_lands_on_the_state_stepping_reaches() -> None:
    # Dislocations longer than a block: a seek must regenerate the ones still running.
    config = attrs.evolve(DEFAULTS, dislocation_per_hour=120.0, dislocation_seconds=150.0)
    stepped = run(config, "sim_gamma", 3 * BLOCK_TICKS + 50)
    sim = VenueSimulator(config, "sim_gamma")
    for tick in (3 * BLOCK_TICKS + 7, 5, BLOCK_TICKS, 2 * BLOCK_TICKS - 1, 3 * BLOCK_TICKS + 7):
        sim.seek(tick)
        stamp = 1_700_000_000.0 + tick / config.updates_per_second
        assert sim.step(stamp) == stepped[tick], tick
        assert sim.step(stamp + 0.05) == [
            attrs.evolve(q, exchange_ts=stamp + 0.05, received_ts=stamp + 0.05)
            for q in stepped[tick + 1]
        ]


# --- shape of the market --------------------------------------------------------------------


def test_quotes_are_well_formed() -> None:
    for quotes in run(DEFAULTS, "sim_alpha", 2000):
        for q in quotes:
            assert 0 < q.bid < q.ask
            assert q.bid_size > 0 and q.ask_size > 0
            assert q.exchange == "sim_alpha"
            decimals = market.price_decimals(DEFAULTS.start_prices[q.symbol])
            assert round(q.bid, decimals) == q.bid and round(q.ask, decimals) == q.ask
            # half-spread 1 bp +/- 25 %, widened by at most a tick of rounding
            assert 1.4e-4 < (q.ask - q.bid) / q.mid < 2.6e-4 + 2 * 10**-decimals / q.mid


def test_venues_share_the_true_price() -> None:
    sims = {v: VenueSimulator(QUIET, v) for v in QUIET.venues}
    worst = 0.0
    for tick in range(3000):
        truths = [sim.true_prices() for sim in sims.values()]
        assert truths[0] == truths[1] == truths[2]  # every venue reproduces the same path
        rows = [sim.step(tick / 20) for sim in sims.values()]
        for quotes in zip(*rows, strict=True):
            mids = [q.mid for q in quotes]
            worst = max(worst, (max(mids) - min(mids)) / min(mids))
    # basis differences have a standard deviation of 3 bp * sqrt(2), about 4.2 bp
    assert worst < 0.0025


def test_true_price_volatility_matches_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny blocks: every position inside a bridge is sampled thousands of times, so a
    # wrong bridge coefficient would show as a position with the wrong variance.
    monkeypatch.setattr(market, "BLOCK_TICKS", 8)
    config = attrs.evolve(QUIET, annual_volatility=2.0)
    sim = VenueSimulator(config, "sim_alpha", ["BTCUSDT"])
    logs = []
    for _ in range(8 * 4000 + 1):
        logs.append(math.log(sim.true_prices()["BTCUSDT"]))
        sim.step(0.0)
    expected = 2.0 * math.sqrt(0.05 / market.SECONDS_PER_YEAR)
    for position in range(8):
        returns = [logs[k + 1] - logs[k] for k in range(position, len(logs) - 1, 8)]
        assert statistics.pstdev(returns) == pytest.approx(expected, rel=0.05), position


def basis_series(config: SimulationConfig, ticks: int) -> list[float]:
    """The venue's mid relative to the true price, minus 1 (its basis; no dislocations)."""
    sim = VenueSimulator(config, "sim_beta", ["BTCUSDT"])
    out = []
    for _ in range(ticks):
        truth = sim.true_prices()["BTCUSDT"]
        (quote,) = sim.step(0.0)
        out.append(quote.mid / truth - 1)
    return out


def autocorrelation(xs: list[float], lag: int) -> float:
    mean = statistics.fmean(xs)
    var = statistics.fmean((x - mean) ** 2 for x in xs)
    pairs = zip(xs, xs[lag:], strict=False)
    return statistics.fmean((a - mean) * (b - mean) for a, b in pairs) / var


def test_basis_reverts_to_zero_with_the_configured_half_life() -> None:
    config = attrs.evolve(
        QUIET, annual_volatility=0.0, basis_bps_stddev=5.0, basis_half_life_seconds=2.0
    )
    basis = basis_series(config, 40_000)  # 2000 s, 1000 half-lives
    assert abs(statistics.fmean(basis)) < 0.25 * 5e-4
    assert statistics.pstdev(basis) == pytest.approx(5e-4, rel=0.15)
    assert autocorrelation(basis, 40) == pytest.approx(0.5, abs=0.1)  # 2 s = 40 ticks
    assert autocorrelation(basis, 400) < 0.15


def test_basis_bridge_is_an_ou_process_at_every_position(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(market, "BLOCK_TICKS", 8)
    config = attrs.evolve(
        QUIET, annual_volatility=0.0, basis_bps_stddev=5.0, basis_half_life_seconds=0.2
    )
    basis = basis_series(config, 8 * 5000 + 1)
    a = 0.5 ** (0.05 / 0.2)
    for position in range(8):
        here = basis[position:-1:8]
        after = basis[position + 1 :: 8]
        assert statistics.pstdev(here) == pytest.approx(5e-4, rel=0.06), position
        assert statistics.correlation(here, after) == pytest.approx(a, abs=0.04), position


# --- dislocations ---------------------------------------------------------------------------


def test_dislocations_come_at_the_configured_rate() -> None:
    config = attrs.evolve(
        DEFAULTS, updates_per_second=2.0, dislocation_per_hour=30.0, dislocation_seconds=5.0
    )
    sims = [VenueSimulator(config, v) for v in config.venues]
    away = {(v, s): False for v in config.venues for s in SYMBOLS}
    starts = 0
    for tick in range(2 * 3600):  # one hour
        for sim in sims:
            truth = sim.true_prices()
            for quote in sim.step(tick / 2):
                now_away = abs(quote.mid / truth[quote.symbol] - 1) > 30e-4
                starts += now_away and not away[quote.exchange, quote.symbol]
                away[quote.exchange, quote.symbol] = now_away
    expected = 30.0 * len(config.venues) * len(SYMBOLS)  # 450 in the hour
    assert 0.8 * expected < starts < 1.15 * expected


def opportunity_episodes(config: SimulationConfig, seconds: float, gross: float) -> int:
    """Times a cross-venue spread above ``gross`` opens (per symbol, counted once while
    it stays open)."""
    sims = [VenueSimulator(config, v) for v in config.venues]
    open_now = dict.fromkeys(SYMBOLS, False)
    episodes = 0
    for tick in range(int(seconds * config.updates_per_second)):
        rows = [sim.step(tick / config.updates_per_second) for sim in sims]
        for quotes in zip(*rows, strict=True):
            is_open = best_gross(list(quotes)) > gross
            episodes += is_open and not open_now[quotes[0].symbol]
            open_now[quotes[0].symbol] = is_open
    return episodes


def test_dislocations_open_profitable_opportunities_every_minute() -> None:
    # 0.4 % gross: more than 0.2 % net after a 0.1 % taker fee on both legs
    assert opportunity_episodes(DEFAULTS, 120, gross=0.004) >= 6
    assert opportunity_episodes(DEFAULTS, 60, gross=0.003) >= 1  # within the first minute


def test_without_dislocations_there_is_nothing_to_trade() -> None:
    assert opportunity_episodes(QUIET, 120, gross=0.001) == 0


# --- the venue as an exchange adapter -----------------------------------------------------


class RecordingSink:
    def __init__(self) -> None:
        self.quotes: list[tuple[float, Quote]] = []
        self.states: list[tuple[str, bool]] = []
        self.on_first_quote: Any = None

    def on_quote(self, quote: Quote) -> None:
        self.quotes.append((trio.current_time(), quote))
        if self.on_first_quote is not None and len(self.quotes) == 1:
            self.on_first_quote()

    def on_feed_state(self, exchange: str, usable: bool, reason: str = "") -> None:
        self.states.append((exchange, usable))


WALL = 1_700_000_000.0


def make_venues(config: SimulationConfig = DEFAULTS) -> list[SimVenue]:
    session = SimSession(wall_clock=lambda: WALL)
    n = len(config.venues)
    return [SimVenue(config, v, phase=i / n, session=session) for i, v in enumerate(config.venues)]


async def stream_for(venues: list[SimVenue], seconds: float, sink: RecordingSink) -> float:
    """Run the venues' feeds for ``seconds`` of trio time; return when they started."""
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for venue in venues:
            await nursery.start(venue.stream_quotes, SYMBOLS, sink)
        await trio.sleep_until(start + seconds)
        nursery.cancel_scope.cancel()
    return start


def test_sim_venue_is_an_exchange_adapter() -> None:
    venue = SimVenue(DEFAULTS, "sim_alpha")
    assert isinstance(venue, ExchangeAdapter)
    assert venue.taker_fee == 0.001 and venue.premium_baseline == 0.0
    assert venue.feed_status() == arbotd.FeedStatus(connected=False, latency_ms=0.0)


async def test_a_venue_counts_as_connected_once_its_first_tick_is_delivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    (venue,) = make_venues(attrs.evolve(DEFAULTS, venues=["sim_alpha"]))
    seen: list[bool] = []  # feed_status().connected when told connected, then per quote

    class Sink(RecordingSink):
        def on_feed_state(self, exchange: str, usable: bool, reason: str = "") -> None:
            seen.append(venue.feed_status().connected)
            super().on_feed_state(exchange, usable, reason)

        def on_quote(self, quote: Quote) -> None:
            seen.append(venue.feed_status().connected)
            super().on_quote(quote)

    sink = Sink()
    await stream_for([venue], 0.5, sink)
    assert sink.states == [("sim_alpha", True)]
    ticks = len(sink.quotes) // len(SYMBOLS)
    assert ticks >= 2
    # Not connected when it says so, nor during its first tick; connected after it.
    assert seen == [False] * (1 + len(SYMBOLS)) + [True] * (ticks - 1) * len(SYMBOLS)
    assert not venue.feed_status().connected  # stopped


async def test_stream_delivers_every_tick_on_time(autojump_clock: trio.testing.MockClock) -> None:
    venues = make_venues()
    sink = RecordingSink()
    start = await stream_for(venues, 1.99, sink)

    assert sink.states == [(v, True) for v in DEFAULTS.venues]
    assert len(sink.quotes) == 3 * 5 * 40  # 40 ticks in 1.99 s at 20/s, per venue and symbol
    for venue in venues:
        mine = [(t, q) for t, q in sink.quotes if q.exchange == venue.name]
        expected = run(DEFAULTS, venue.name, 40)
        for tick, quotes in enumerate(expected):
            due = (tick + venue.phase) / 20
            for symbol_index, want in enumerate(quotes):
                at, got = mine[tick * 5 + symbol_index]
                assert at - start == pytest.approx(due, abs=1e-9)
                assert got == attrs.evolve(want, exchange_ts=WALL + due, received_ts=WALL + due)
    # venues are staggered, so the delivery order is fixed: alpha, beta, gamma, alpha, ...
    order = [q.exchange for _, q in sink.quotes[::5]]
    assert order[:6] == ["sim_alpha", "sim_beta", "sim_gamma"] * 2
    assert venues[0].feed_status() == arbotd.FeedStatus(False, WALL + 39 * 0.05, 0.0)


async def test_two_runs_deliver_the_same_sequence(autojump_clock: trio.testing.MockClock) -> None:
    runs = []
    for _ in range(2):
        sink = RecordingSink()
        start = await stream_for(make_venues(), 2.99, sink)
        runs.append([(round(t - start, 9), q) for t, q in sink.quotes])
    assert runs[0] == runs[1]


async def test_a_late_feed_catches_up_without_skipping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    (venue,) = make_venues(attrs.evolve(DEFAULTS, venues=["sim_alpha"]))
    sink = RecordingSink()
    sink.on_first_quote = lambda: autojump_clock.jump(0.52)  # a stall of 10.4 ticks
    start = await stream_for([venue], 1.99, sink)
    ticks = [round((q.received_ts - WALL) * 20) for _, q in sink.quotes[::5]]
    assert ticks == list(range(40))  # none skipped, each stamped with its own due time
    late = [round(t - start, 9) for t, _ in sink.quotes[5:55:5]]
    assert late == [0.52] * 10  # ticks 1-10 delivered at once when the stall ended
    assert sink.quotes[55][0] - start == pytest.approx(0.55)  # then on schedule again


async def test_a_restarted_feed_resumes_the_same_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venues = make_venues()
    await stream_for(venues, 1.0, RecordingSink())
    await trio.sleep(2.0)
    again = RecordingSink()
    await stream_for(venues[1:2], 1.0, again)  # sim_beta alone, from t = 3 s
    _, quote = again.quotes[0]
    tick = round((quote.received_ts - WALL) * 20 - venues[1].phase)
    assert tick == 60
    sim = VenueSimulator(DEFAULTS, "sim_beta")
    sim.seek(tick)
    stamp = WALL + (tick + venues[1].phase) / 20
    assert [q for _, q in again.quotes[:5]] == sim.step(stamp)


async def test_symbols_without_a_price_are_skipped_and_logged_once(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    venues = make_venues()
    sink = RecordingSink()
    with caplog.at_level(logging.WARNING, logger="arbotd_sim"):
        async with trio.open_nursery() as nursery:
            for venue in venues:
                await nursery.start(venue.stream_quotes, ["DOGEUSDT", "ETHUSDT"], sink)
            await trio.sleep(0.49)
            nursery.cancel_scope.cancel()
    assert {q.symbol for _, q in sink.quotes} == {"ETHUSDT"}
    assert len(sink.quotes) == 3 * 10
    warnings = [r.getMessage() for r in caplog.records if "DOGEUSDT" in r.getMessage()]
    assert len(warnings) == 1 and "start_prices" in warnings[0]


# --- configuration ----------------------------------------------------------------------------


def structure(table: dict[str, Any]) -> SimulationConfig:
    sections = structure_document(
        {"simulation": table}, {"simulation": SimulationConfig}, file="arbot.toml"
    )
    return sections["simulation"]


def problems(table: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        structure(table)
    return [(p.path, p.message) for p in caught.value.problems]


def test_defaults() -> None:
    config = structure({})
    assert config == DEFAULTS
    assert config.enabled and config.seed == 42
    assert config.venues == ["sim_alpha", "sim_beta", "sim_gamma"]
    assert config.simulated_symbols() == SYMBOLS
    assert all(config.start_price(s) for s in SYMBOLS)
    assert config.paper.fill_delay_seconds == 0.25 and config.paper.balances == {"USDT": 10000}
    assert config.updates_per_second == 20.0 and config.taker_fee == 0.001


def test_start_prices_add_to_the_builtin_ones() -> None:
    config = structure({"start_prices": {"ADAUSDT": 0.45}})
    assert config.start_price("ADAUSDT") == 0.45
    assert config.start_price("BTCUSDT") == 65_000.0
    assert config.simulated_symbols() == [*SYMBOLS, "ADAUSDT"]
    sim = VenueSimulator(config, "sim_alpha", ["BTCUSDT", "ADAUSDT"])
    assert [q.symbol for q in sim.step(0.0)] == ["BTCUSDT", "ADAUSDT"]


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"updates_per_second": 0}, "simulation.updates_per_second", "in (0, 200]"),
        ({"updates_per_second": 1000}, "simulation.updates_per_second", "got 1000"),
        ({"taker_fee": -0.001}, "simulation.taker_fee", "in [0, 0.1)"),
        ({"half_spread_bps": 0.0}, "simulation.half_spread_bps", "in (0, 1000]"),
        ({"basis_half_life_seconds": 0}, "simulation.basis_half_life_seconds", "in (0, 86400]"),
        ({"annual_volatility": -0.1}, "simulation.annual_volatility", "in [0, 10]"),
        ({"seed": -1}, "simulation.seed", ">= 0"),
        ({"venues": ["binance", "sim_b"]}, "simulation.venues", "mistaken"),
        ({"venues": ["sim_a", "sim_a"]}, "simulation.venues", "unique"),
        ({"venues": []}, "simulation.venues", "at least one"),
        ({"start_prices": {"btc-usdt": 1.0}}, "simulation.start_prices", "BTCUSDT"),
        ({"paper": {"reject_rate": 2}}, "simulation.paper.reject_rate", "in [0, 1]"),
        ({"paper": {"balances": {"USDT": -5}}}, "simulation.paper.balances", ">= 0"),
        ({"start_prices": {"BTCUSDT": 0}}, "simulation.start_prices", "> 0"),
        ({"size_min_usd": 5000, "size_max_usd": 100}, "simulation.size_min_usd", "size_max"),
        ({"volatility": 0.5}, "simulation.volatility", "unknown key"),
    ],
)
def test_invalid_values_are_errors_naming_the_key(
    table: dict[str, Any], key: str, words: str
) -> None:
    found = problems(table)
    assert [p for p, _ in found] == [key]
    assert words in found[0][1]


# --- the plugin's hooks -------------------------------------------------------------------


def make_config(**simulation: Any) -> arbotd.Config:
    return arbotd.Config(
        path=Path("arbot.toml"),
        document=tomlkit.document(),
        sections={"simulation": attrs.evolve(DEFAULTS, **simulation)},
    )


class FakeRuntime:
    clock = staticmethod(lambda: WALL)

    def __init__(self) -> None:
        self.plugin_state: dict[str, Any] = {}


def test_the_plugin_owns_the_simulation_table() -> None:
    pm = arbotd.make_plugin_manager(plugins=[("sim", plugin)], entry_points=False)
    assert collect_config_schema(pm)["simulation"] is SimulationConfig


def test_register_exchanges_gives_the_staggered_venues() -> None:
    runtime = FakeRuntime()
    venues = plugin.register_exchanges(config=make_config(), runtime=runtime)
    assert [v.name for v in venues] == ["sim_alpha", "sim_beta", "sim_gamma"]
    assert [v.phase for v in venues] == [0.0, 1 / 3, 2 / 3]
    assert len({id(v.session) for v in venues}) == 1
    # a reload with the same table: equal venues (the feeds keep running), same session
    again = plugin.register_exchanges(config=make_config(), runtime=runtime)
    assert again == venues and again[0].session is venues[0].session
    changed = plugin.register_exchanges(config=make_config(seed=7), runtime=runtime)
    assert changed[0] != venues[0]
    assert plugin.register_exchanges(config=make_config(), runtime=None) == venues


def test_disabled_simulation_has_no_venues() -> None:
    assert plugin.register_exchanges(config=make_config(enabled=False), runtime=None) == []
