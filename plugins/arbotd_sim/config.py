"""The ``[simulation]`` table: the simulated market, and ``[simulation.paper]``: paper
execution (on simulated or real venues' books).

Units are in the key names: ``_bps`` is basis points (1 bp = 0.01 %), ``_usd`` is quote
currency notional, ``_seconds`` and ``_per_hour`` are wall-clock (or, in a backtest,
virtual) time. ``annual_volatility`` and ``taker_fee`` are fractions, like every fee in
arbotd (``0.8`` = 80 % a year, ``0.001`` = 0.1 %).
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from arbotd import setting

__all__ = [
    "DEFAULT_START_PRICES",
    "MAX_DEPTH_LEVELS",
    "RATE_SYMBOL",
    "KrwVenueConfig",
    "PaperConfig",
    "SimulationConfig",
]

RATE_SYMBOL = "USDTKRW"
"""The simulated KRW venue's rate market: KRW per USDT."""

MAX_DEPTH_LEVELS = 50
"""Most levels a simulated venue's quotes carry per side (Bybit's deepest spot stream
has 50)."""

DEFAULT_START_PRICES: dict[str, float] = {
    "BTCUSDT": 65_000.0,
    "ETHUSDT": 3_400.0,
    "SOLUSDT": 150.0,
    "XRPUSDT": 0.55,
    "BNBUSDT": 600.0,
}
"""Where each default symbol's price starts. A ``start_prices`` table in the file adds to
these and overrides them; it does not need to repeat them."""

_VENUE_NAME = re.compile(r"sim[a-z0-9_]*")
_SYMBOL = re.compile(r"[A-Z0-9]{2,30}")


def _check_venues(venues: Any) -> str | None:
    if not venues:
        return "expected at least one venue name"
    bad = [v for v in venues if not _VENUE_NAME.fullmatch(v)]
    if bad:
        return (
            f'{bad[0]!r}: simulated venue names must start with "sim" and use only a-z, '
            "0-9 and _, so that they cannot be mistaken for real exchanges"
        )
    if len(set(venues)) != len(venues):
        return "venue names must be unique"
    return None


def _check_prices(prices: Any) -> str | None:
    for symbol, price in prices.items():
        if not _SYMBOL.fullmatch(symbol):
            return f'{symbol!r}: expected an exchange-neutral symbol such as "BTCUSDT"'
        if not (math.isfinite(price) and price > 0):
            return f"{symbol}: expected a price > 0, got {price}"
    return None


def _check_balances(balances: Any) -> str | None:
    for asset, amount in balances.items():
        if not (math.isfinite(amount) and amount >= 0):
            return f"{asset}: expected an amount >= 0, got {amount}"
    return None


@attrs.frozen
class PaperConfig:
    """``[simulation.paper]``: how paper orders fill, and the paper accounts.

    Used in ``simulation`` mode, on the simulated venues or on real exchanges' books.
    """

    # Time between sending an order and its fill (seconds).
    fill_delay_seconds: float = setting(0.25, ge=0, le=60)
    # Share of entry orders that fill only partially, and the share of the order they fill.
    partial_fill_rate: float = setting(0.1, ge=0, le=1)
    partial_fill_ratio: float = setting(0.7, gt=0, le=1)
    # Share of orders the simulated exchange rejects.
    reject_rate: float = setting(0.05, ge=0, le=1)
    # Starting balance of each asset on every venue; a coin not listed gets
    # coin_balance_usd worth of it at its start price.
    balances: dict[str, float] = setting(
        factory=lambda: {"USDT": 10_000.0}, check=_check_balances
    )
    coin_balance_usd: float = setting(10_000.0, ge=0)


def _check_venue_name(name: Any) -> str | None:
    return _check_venues([name])


@attrs.frozen
class KrwVenueConfig:
    """``[simulation.krw]``: a simulated venue quoted in KRW (a fictional name, like every
    simulated venue), for cross-currency arbitrage without a network.

    It quotes the same symbols as the other simulated venues, in KRW: the common true
    price (in USDT) times ``1 + premium``, times the USDT/KRW rate. It also quotes the rate
    market ``USDTKRW`` (KRW per USDT), whose mid is a geometric random walk from
    ``start_rate``. The premium, one for the whole venue, wanders around
    ``premium_percent``: an Ornstein-Uhlenbeck process with a long-run standard deviation
    of ``premium_bps_stddev`` and a half-life of ``premium_half_life_seconds``; the venue
    has its basis and dislocations like the others. Its premium baseline is followed as a
    rolling median (``premium_mode``).
    """

    enabled: bool = setting(False)
    venue: str = setting("sim_won", check=_check_venue_name)
    # KRW per USDT at the start, its volatility (annualised fraction) and its half-spread.
    start_rate: float = setting(1_350.0, gt=0, le=1e9)
    rate_annual_volatility: float = setting(0.08, ge=0, le=10)
    rate_half_spread_bps: float = setting(2.0, gt=0, le=1000)
    # The premium over the other venues: its centre (percent), spread and half-life.
    premium_percent: float = setting(2.0, ge=-50, le=50)
    premium_bps_stddev: float = setting(40.0, ge=0, le=5000)
    premium_half_life_seconds: float = setting(900.0, gt=0, le=86_400)
    # How the daemon learns the premium: "rolling" (the median of what it observes over
    # premium_window_seconds) or "fixed" (premium_percent, always).
    premium_mode: str = setting("rolling", check=lambda v: None if v in ("rolling", "fixed")
                                else 'expected "rolling" or "fixed"')
    premium_window_seconds: float = setting(1_800.0, ge=10, le=30 * 86_400)
    # A rate quote older than this makes the venue's prices unusable.
    rate_max_age_seconds: float = setting(5.0, gt=0, le=3600)


@attrs.frozen
class SimulationConfig:
    """``[simulation]``: the simulated venues and their market.

    Every venue quotes every symbol around a common true price (a geometric random walk
    without drift). Each venue adds its own basis, which wanders around zero and is pulled
    back to it (an Ornstein-Uhlenbeck process), a half-spread with a little noise, and
    random displayed sizes. Now and then one venue's price jumps away from the others for a
    few seconds: a dislocation, the opportunity an arbitrage daemon is there to catch.
    """

    enabled: bool = setting(True)
    seed: int = setting(42, ge=0)
    venues: list[str] = setting(
        factory=lambda: ["sim_alpha", "sim_beta", "sim_gamma"], check=_check_venues
    )
    # Symbol -> price in the quote currency at the start of the simulation.
    start_prices: dict[str, float] = setting(
        factory=lambda: dict(DEFAULT_START_PRICES), check=_check_prices
    )
    # Quote updates per second, per venue and symbol.
    updates_per_second: float = setting(20.0, gt=0, le=200)
    # Volatility of the common true price, annualised, as a fraction (0.8 = 80 % a year;
    # that is about 0.3 bp per 50 ms tick and 11 bp per minute).
    annual_volatility: float = setting(0.8, ge=0, le=10)
    # Each venue's basis around the true price: its long-run standard deviation in bp and
    # the time in which half of any deviation has faded.
    basis_bps_stddev: float = setting(3.0, ge=0, le=1000)
    basis_half_life_seconds: float = setting(30.0, gt=0, le=86_400)
    # Half the bid-ask spread, in bp of the price (each quote varies it by +/-25 %).
    half_spread_bps: float = setting(1.0, gt=0, le=1000)
    # Displayed size at the best bid and at the best ask, drawn uniformly between these
    # notionals in the quote currency and converted to base units at the quote's price.
    size_min_usd: float = setting(1_000.0, gt=0)
    size_max_usd: float = setting(20_000.0, gt=0)
    # Levels of the book each quote carries per side: 1 = the best bid and ask only (the
    # quotes of a level-1 feed); N > 1 adds N - 1 levels behind the best, each a half
    # spread (x U(0.5, 1.5)) further out, showing a notional drawn like the best level's
    # times 1 + k / 2 at level k (thicker away from the touch, on average). The best
    # level is the same whatever N is.
    depth_levels: int = setting(1, ge=1, le=MAX_DEPTH_LEVELS)
    # Dislocations, per venue and symbol: how many an hour on average (a Poisson process),
    # how far the venue's price moves away from the others (in bp, +/-20 % per event, up
    # or down), and for how long before it snaps back.
    dislocation_per_hour: float = setting(20.0, ge=0, le=3600)
    dislocation_bps: float = setting(60.0, ge=0, le=5000)
    dislocation_seconds: float = setting(5.0, gt=0, le=3600)
    # Taker fee of every simulated venue, a fraction (0.001 = 0.1 %).
    taker_fee: float = setting(0.001, ge=0, lt=0.1)

    # How paper orders fill and what the paper accounts hold: [simulation.paper].
    paper: PaperConfig = attrs.field(factory=PaperConfig)
    # A venue quoted in KRW: [simulation.krw].
    krw: KrwVenueConfig = attrs.field(factory=KrwVenueConfig)

    def market(self) -> SimulationConfig:
        """These settings without the paper ones: what the quotes depend on."""
        return attrs.evolve(self, paper=PaperConfig())

    def simulated_symbols(self) -> list[str]:
        """Every symbol the venues can quote: the builtin ones and ``start_prices``."""
        return list(dict.fromkeys([*DEFAULT_START_PRICES, *self.start_prices]))

    def start_price(self, symbol: str) -> float | None:
        """Where ``symbol`` starts: ``start_prices``, else the builtin default, else
        ``None`` (the symbol cannot be simulated)."""
        price = self.start_prices.get(symbol)
        return price if price is not None else DEFAULT_START_PRICES.get(symbol)

    def validate_config(self) -> list[tuple[str, str]]:
        """Problems between keys, as ``(key, message)`` pairs (the core adds the table)."""
        problems: list[tuple[str, str]] = []
        if self.krw.enabled and self.krw.venue in self.venues:
            problems.append(("krw.venue", f"{self.krw.venue!r} is one of venues already"))
        if self.size_min_usd > self.size_max_usd:
            problems.append(
                (
                    "size_min_usd",
                    f"must not exceed size_max_usd ({self.size_min_usd} > {self.size_max_usd})",
                )
            )
        return problems
