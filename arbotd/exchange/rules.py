"""Exchange trading rules of a symbol: tick size, lot size, minimum quantity and notional.

Every exchange publishes them (Binance ``exchangeInfo`` filters, Bybit
``instruments-info``, OKX ``instruments``); each exchange plugin parses its own answer
into :class:`SymbolRules`, and the rounding and checking below is the same everywhere.
Prices and quantities sent to an exchange are always rounded here first, so that an
order is never refused for its precision.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import attrs

__all__ = ["SymbolRules", "ceil_to", "common_quantity", "decimal_text", "floor_to"]


def decimal_text(value: Decimal) -> str:
    """``value`` as exchanges want it in a request: plain notation, no exponent, no
    trailing zeros (``Decimal("1E+2")`` -> ``"100"``, ``Decimal("0.0100")`` -> ``"0.01"``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` not above ``value`` (``value`` itself when
    ``step`` is 0)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` not below ``value``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def _lcm_step(a: Decimal, b: Decimal) -> Decimal:
    """The least common multiple of two decimal steps (0.001 and 0.0004 -> 0.002)."""
    if a <= 0:
        return b
    if b <= 0:
        return a
    places = max(-a.as_tuple().exponent, -b.as_tuple().exponent, 0)
    scale = Decimal(10) ** places
    ia, ib = int(a * scale), int(b * scale)
    return Decimal(math.lcm(ia, ib)) / scale


@attrs.frozen
class SymbolRules:
    """What an exchange accepts for one symbol. Steps of 0 mean "no constraint"."""

    symbol: str
    tick_size: Decimal = Decimal(0)
    step_size: Decimal = Decimal(0)
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal | None = None
    min_notional: Decimal = Decimal(0)
    # Market orders may have their own maximum (Binance MARKET_LOT_SIZE).
    max_market_qty: Decimal | None = None
    trading: bool = True
    status: str = "TRADING"

    def round_price(self, price: Decimal, side: str) -> Decimal:
        """A limit price on the tick grid that never crosses the caller's limit: a buy is
        rounded down (never pays more), a sell up (never sells for less)."""
        if side == "buy":
            return floor_to(price, self.tick_size)
        return ceil_to(price, self.tick_size)

    def round_quantity(self, quantity: Decimal) -> Decimal:
        """``quantity`` rounded down to the lot size."""
        return floor_to(quantity, self.step_size)

    def problem(
        self, quantity: Decimal, price: Decimal | None, *, market: bool = False
    ) -> str | None:
        """Why an order of ``quantity`` (already rounded) at ``price`` would be refused, or
        ``None``. ``price`` is the limit price, or an estimate for a market order."""
        if not self.trading:
            return f"{self.symbol} is not trading (status {self.status})"
        if quantity <= 0:
            return f"quantity rounds to 0 at lot size {self.step_size}"
        if quantity < self.min_qty:
            return f"quantity {quantity} is below the minimum {self.min_qty}"
        limit = self.max_market_qty if market and self.max_market_qty else self.max_qty
        if limit is not None and limit > 0 and quantity > limit:
            return f"quantity {quantity} is above the maximum {limit}"
        if price is not None and price > 0 and quantity * price < self.min_notional:
            return (f"notional {decimal_text(quantity * price)} is below the minimum "
                    f"{self.min_notional}")
        return None


def common_quantity(quantity: Decimal, *rules: SymbolRules) -> Decimal:
    """The largest quantity not above ``quantity`` that every exchange's lot size
    accepts, so both legs of a trade can be the same size."""
    step = Decimal(0)
    for r in rules:
        step = _lcm_step(step, r.step_size)
    return floor_to(quantity, step)
