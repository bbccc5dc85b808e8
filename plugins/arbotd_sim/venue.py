"""Simulated venues as exchange adapters: the market generator, paced in (trio) time."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import trio

from arbotd import FeedStatus, QuoteSink
from arbotd_sim.config import RATE_SYMBOL, SimulationConfig
from arbotd_sim.market import VenueSimulator
from arbotd_sim.won import KrwVenueSimulator

__all__ = ["KrwSimVenue", "SimSession", "SimVenue"]

log = logging.getLogger(__name__)


class SimSession:
    """What the simulated venues of one daemon share: when the simulated market started.

    The origin is taken once, when the first feed starts, in trio's clock (to sleep until
    each tick is due; virtual under a ``MockClock``) and in wall time (to stamp quotes).
    Tick ``k`` is due ``k / updates_per_second`` after it. A feed that is restarted (after
    a failure, or because the symbol set changed on reload) resumes at the tick due now,
    on the same price path as the venues that kept running; restarting it from tick 0
    would open a false spread between the venues.
    """

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self.wall_clock = wall_clock
        self._origin: tuple[float, float] | None = None
        self._warned: set[str] = set()

    def origin(self) -> tuple[float, float]:
        """``(trio time, wall time)`` of tick 0. Call from inside trio."""
        if self._origin is None:
            self._origin = (trio.current_time(), self.wall_clock())
        return self._origin

    def warn_unsimulated(self, symbols: Iterable[str]) -> None:
        """Log once per symbol (not once per venue or restart) that it has no price."""
        new = [s for s in symbols if s not in self._warned]
        if new:
            self._warned.update(new)
            log.warning(
                "simulation: no start price for %s; the simulated venues do not quote it "
                "(add it to start_prices in [simulation])",
                ", ".join(new),
            )


class SimVenue:
    """One simulated venue: an ``arbotd.ExchangeAdapter`` without a network.

    ``phase`` (a fraction of a tick) staggers the venues' ticks so that no two publish at
    the same instant: real venues do not, and it gives quotes of different venues a fixed
    order in (virtual) time whatever order the scheduler runs their tasks in.

    Two venues compare equal when their name, phase and market settings (``[simulation]``
    but for ``[simulation.paper]``) are equal, so a reload that leaves them alone keeps the
    feeds running.
    """

    premium_baseline = 0.0
    # Whether the feed quotes a rate market besides the symbols (the KRW venue).
    quotes_rate = False

    def __init__(
        self,
        config: SimulationConfig,
        name: str,
        *,
        phase: float = 0.0,
        session: SimSession | None = None,
    ) -> None:
        if not 0.0 <= phase < 1.0:
            raise ValueError(f"phase must be in [0, 1), got {phase}")
        self.name = name
        self.taker_fee = config.taker_fee
        self.config = config
        self.phase = phase
        self.session = session if session is not None else SimSession()
        self._connected = False
        self._last_update: float | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SimVenue):
            return NotImplemented
        return (self.name, self.phase, self.config.market()) == (
            other.name,
            other.phase,
            other.config.market(),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.phase))

    def __repr__(self) -> str:
        return f"SimVenue({self.name!r})"

    def _simulator(self, symbols: Sequence[str]) -> VenueSimulator | KrwVenueSimulator:
        return VenueSimulator(self.config, self.name, symbols)

    def feed_status(self) -> FeedStatus:
        """Connected once the first tick since the feed (re)started is delivered, like a
        real feed whose data must flow before it counts. A simulated quote is "received"
        the instant it is made: no latency."""
        return FeedStatus(self._connected, self._last_update, 0.0)

    async def stream_quotes(
        self,
        symbols: Sequence[str],
        sink: QuoteSink,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver every tick's quotes of ``symbols`` to ``sink`` until cancelled.

        Each tick is delivered when it is due; a tick that is late (a busy event loop) is
        delivered at once, stamped with its due time, so lateness never accumulates and
        the sequence of quotes never depends on timing.
        """
        config = self.config
        wanted = list(dict.fromkeys(symbols))
        simulated = [s for s in wanted if config.start_price(s) is not None]
        self.session.warn_unsimulated(s for s in wanted if s not in simulated)
        sim = self._simulator(simulated)
        clock_origin, wall_origin = self.session.origin()
        rate = config.updates_per_second
        tick = max(0, math.ceil((trio.current_time() - clock_origin) * rate - self.phase))
        sim.seek(tick)
        deliver = sink.on_quote
        self._connected = False
        sink.on_feed_state(self.name, True)
        task_status.started()
        try:
            if not simulated and not self.quotes_rate:
                await trio.sleep_forever()
            while True:
                offset = (tick + self.phase) / rate
                await trio.sleep_until(clock_origin + offset)
                timestamp = wall_origin + offset
                sim.emit(timestamp, deliver)
                self._last_update = timestamp
                self._connected = True
                tick += 1
        finally:
            self._connected = False


class KrwSimVenue(SimVenue):
    """The simulated venue quoted in KRW (``[simulation.krw]``, :mod:`arbotd_sim.won`):
    its prices are converted by the engine at the ``USDTKRW`` market it quotes too
    (:mod:`arbotd.fx`), and its premium baseline is rolling or fixed as configured."""

    quote_currency = "KRW"
    rate_symbol = RATE_SYMBOL
    quotes_rate = True

    def __init__(self, config: SimulationConfig, *, phase: float = 0.0,
                 session: SimSession | None = None) -> None:
        krw = config.krw
        super().__init__(config, krw.venue, phase=phase, session=session)
        self.premium_baseline = krw.premium_percent
        self.premium_mode = krw.premium_mode
        self.premium_window_seconds = krw.premium_window_seconds
        self.rate_max_age_seconds = krw.rate_max_age_seconds

    def __repr__(self) -> str:
        return f"KrwSimVenue({self.name!r})"

    def _simulator(self, symbols: Sequence[str]) -> KrwVenueSimulator:
        return KrwVenueSimulator(self.config, symbols)
