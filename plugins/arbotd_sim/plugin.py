"""The hooks of the builtin ``sim`` plugin: the ``[simulation]`` table, its venues, and
the paper executor of ``simulation`` mode."""

from __future__ import annotations

import time
from typing import Any

import arbotd
from arbotd_sim.config import SimulationConfig
from arbotd_sim.paper import PaperExecutor
from arbotd_sim.venue import KrwSimVenue, SimSession, SimVenue


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"simulation": SimulationConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[SimVenue]:
    settings: SimulationConfig = config["simulation"]
    if not settings.enabled:
        return []
    session = _session_for(runtime)
    count = len(settings.venues) + (1 if settings.krw.enabled else 0)
    venues = [
        SimVenue(settings, name, phase=index / count, session=session)
        for index, name in enumerate(settings.venues)
    ]
    if settings.krw.enabled:
        venues.append(KrwSimVenue(settings, phase=len(venues) / count, session=session))
    return venues


@arbotd.hookimpl
def register_executors(config: arbotd.Config, runtime: arbotd.Runtime) -> list[PaperExecutor]:
    settings: SimulationConfig = config["simulation"]
    prices = {s: settings.start_price(s) or 0.0 for s in settings.simulated_symbols()}
    return [PaperExecutor(settings.paper, runtime, seed=settings.seed, reference_prices=prices,
                          reference_rates={"KRW": settings.krw.start_rate})]


@arbotd.hookimpl
def on_reload(new: arbotd.Config, changed: frozenset[str], runtime: arbotd.Runtime) -> None:
    if "simulation" not in changed or runtime.control is None:
        return
    for executor in runtime.control.executors.values():
        if isinstance(executor, PaperExecutor):
            executor.settings = new["simulation"].paper


def _session_for(runtime: Any) -> SimSession:
    """One session per running daemon, so that venues created at a reload resume the
    market where the running ones are (see SimSession)."""
    wall_clock = getattr(runtime, "clock", None) or time.time
    state = getattr(runtime, "plugin_state", None)
    if state is None:  # a runtime-like object of a test
        return SimSession(wall_clock)
    return state.setdefault("sim.session", SimSession(wall_clock))
