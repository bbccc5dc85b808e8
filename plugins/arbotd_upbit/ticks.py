"""KRW market trading rules: the tick size by price band, the minimum order, the volume
precision (bitget-upbit-protocols.md 2.2, ``docs/krw-market-info.md``, regime since
2025-07-31).

An off-tick price is refused by Upbit (``invalid_price_bid``/``invalid_price_ask``), so
every price is put on its band's grid here first.

Below 100 KRW the current rows could not be confirmed (unverified); the pre-2025-07-31
rows are used there, but never finer than the tick Upbit lists for the market
(``/v1/orderbook/instruments`` ``tick_size``, the truth at the current price): a coarser
grid whose step is a multiple of the real one is always accepted. KRW-USDT's 0.5 KRW tick
of 2025 (unverified whether it survived) is not relied on: the band's 1 KRW is a multiple.
The minimum order is 5,000 KRW (unverified: its section was truncated); ``/orders/chance``
tells the real ``min_total`` per market.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from arbotd.exchange import SymbolRules, ceil_to, floor_to

__all__ = ["MIN_TOTAL_KRW", "VOLUME_STEP", "KrwRules", "krw_tick"]

MIN_TOTAL_KRW = Decimal(5000)
# Volumes have at most 8 decimals.
VOLUME_STEP = Decimal("0.00000001")

# (lower bound of the band, its tick), highest first.
_BANDS: tuple[tuple[Decimal, Decimal], ...] = tuple(
    (Decimal(low), Decimal(tick)) for low, tick in (
        ("1000000", "1000"), ("500000", "500"), ("100000", "100"), ("50000", "50"),
        ("10000", "10"), ("5000", "5"), ("100", "1"),
        # Below 100 KRW: the rows before 2025-07-31 (unverified today).
        ("10", "0.01"), ("1", "0.001"), ("0.1", "0.0001"), ("0.01", "0.00001"),
        ("0.001", "0.000001"), ("0.0001", "0.0000001"), ("0", "0.00000001"),
    ))


def krw_tick(price: Decimal) -> Decimal:
    """The tick of the band ``price`` is in."""
    for low, tick in _BANDS:
        if price >= low:
            return tick
    return _BANDS[-1][1]


@attrs.frozen
class KrwRules(SymbolRules):
    """A KRW market's rules: ``tick_size`` is the tick Upbit listed (at the price then);
    prices are rounded to the tick of their own band."""

    def tick_at(self, price: Decimal) -> Decimal:
        band = krw_tick(price)
        if price < 100 and self.tick_size > band:
            return self.tick_size
        return band

    def round_price(self, price: Decimal, side: str) -> Decimal:
        """On the grid of the band the rounded price lands in, never crossing the limit:
        a buy down, a sell up."""
        if side == "buy":
            rounded = floor_to(price, self.tick_at(price))
            # Rounding down can cross into a lower band, whose grid is finer: still valid.
            return rounded
        rounded = ceil_to(price, self.tick_at(price))
        # Rounding up can land in a higher band (999,999 -> 1,000,000): its boundary is on
        # every grid, but a price past it must be on the coarser one.
        return ceil_to(rounded, self.tick_at(rounded))

    def price_problem(self, price: Decimal) -> str | None:
        """Why Upbit would refuse ``price`` for its tick, ``None`` when it is on it."""
        tick = self.tick_at(price)
        if price % tick:
            return (f"price {price} KRW is not on the tick of {tick} KRW of its band "
                    f"({self.symbol})")
        return None
