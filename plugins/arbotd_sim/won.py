"""The simulated venue quoted in KRW (``[simulation.krw]``).

It is built from the same deterministic, seekable generator as the other venues
(:mod:`arbotd_sim.market`), three times:

* the symbols, in USDT, like any simulated venue (its own small basis and dislocations;
  the true price path is the one every venue shares);
* the premium, a "symbol" priced 1 whose basis is the wandering part of the premium (an
  Ornstein-Uhlenbeck process of ``premium_bps_stddev`` and ``premium_half_life_seconds``),
  one for the whole venue, as a regional premium is;
* the rate market ``USDTKRW``, a "symbol" whose price starts at ``start_rate`` and walks
  with ``rate_annual_volatility``, without basis or dislocations.

Each tick the rate quote comes first, then every symbol's quote in KRW: its USDT prices
(and book levels) times ``(1 + premium_percent / 100)`` times the premium's wandering
factor times the rate's mid, bids rounded down and asks up to 0.01 KRW. So the venue's
converted prices sit near the true price times ``1 + premium``, and what converts them is
the market it quotes itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import attrs

from arbotd import Quote
from arbotd_sim.config import RATE_SYMBOL, KrwVenueConfig, SimulationConfig
from arbotd_sim.market import VenueSimulator

__all__ = ["KrwVenueSimulator", "to_krw"]

_KRW_SCALE = 100.0  # a tick of 0.01 KRW
_PREMIUM = "PREMIUMFACTOR"  # the premium's process, never quoted


def to_krw(quote: Quote, factor: float) -> Quote:
    """``quote`` (USDT) times ``factor`` (KRW per USDT, premium included), on 0.01 KRW
    ticks: bids down, asks up, so the book never narrows."""
    scale = _KRW_SCALE
    floor, ceil = math.floor, math.ceil
    bids, asks = quote.bids, quote.asks
    return Quote(
        quote.exchange, quote.symbol,
        floor(quote.bid * factor * scale) / scale, ceil(quote.ask * factor * scale) / scale,
        quote.bid_size, quote.ask_size, quote.exchange_ts, quote.received_ts,
        None if bids is None else tuple(
            (floor(p * factor * scale) / scale, s) for p, s in bids),
        None if asks is None else tuple(
            (ceil(p * factor * scale) / scale, s) for p, s in asks),
    )


class KrwVenueSimulator:
    """The quotes of the KRW venue, tick by tick, like
    :class:`~arbotd_sim.market.VenueSimulator` (``seek``, ``step``, ``emit``)."""

    def __init__(self, config: SimulationConfig, symbols: Sequence[str] | None = None) -> None:
        krw: KrwVenueConfig = config.krw
        self.venue = krw.venue
        market = config.market()
        self._symbols = VenueSimulator(market, krw.venue, symbols)
        self._wander = VenueSimulator(
            attrs.evolve(market, annual_volatility=0.0, basis_bps_stddev=krw.premium_bps_stddev,
                         basis_half_life_seconds=krw.premium_half_life_seconds,
                         dislocation_per_hour=0.0, depth_levels=1, half_spread_bps=0.01,
                         start_prices={_PREMIUM: 1.0}),
            krw.venue, [_PREMIUM])
        self._rate = VenueSimulator(
            attrs.evolve(market, annual_volatility=krw.rate_annual_volatility,
                         basis_bps_stddev=0.0, dislocation_per_hour=0.0, depth_levels=1,
                         half_spread_bps=krw.rate_half_spread_bps,
                         start_prices={RATE_SYMBOL: krw.start_rate}),
            krw.venue, [RATE_SYMBOL])
        self._premium = 1 + krw.premium_percent / 100
        self.symbols = self._symbols.symbols
        self.tick = 0

    def seek(self, tick: int) -> None:
        self._symbols.seek(tick)
        self._wander.seek(tick)
        self._rate.seek(tick)
        self.tick = tick

    def step(self, timestamp: float) -> list[Quote]:
        quotes: list[Quote] = []
        self.emit(timestamp, quotes.append)
        return quotes

    def emit(self, timestamp: float, deliver: Callable[[Quote], object]) -> None:
        """The rate quote, then each symbol's quote in KRW, to ``deliver``."""
        [rate] = self._rate.step(timestamp)
        [wander] = self._wander.step(timestamp)
        deliver(rate)
        factor = rate.mid * self._premium * wander.mid
        self._symbols.emit(timestamp, lambda quote: deliver(to_krw(quote, factor)))
        self.tick += 1
