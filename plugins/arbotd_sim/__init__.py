"""arbotd_sim: simulated venues, the builtin default that lets arbotd run offline.

The venues (``sim_alpha``, ``sim_beta``, ``sim_gamma`` by default) quote the same symbols
around one common, randomly walking price, each with its own small basis, spread and
displayed sizes (with ``depth_levels`` > 1, an order book of that many levels a side),
and now and then a dislocation that opens a real arbitrage opportunity. Paper orders walk
those books (:mod:`arbotd_sim.paper`). Everything comes from a seeded generator: the
same seed and ``[simulation]`` table give the same quotes, however the tasks are
scheduled.
"""

from arbotd_sim.config import SimulationConfig
from arbotd_sim.market import VenueSimulator
from arbotd_sim.venue import SimSession, SimVenue

__all__ = ["SimSession", "SimVenue", "SimulationConfig", "VenueSimulator"]
