"""OKX's order states and what they make of an arbotd order, for the REST order details
and the private ``orders`` channel alike (exchange-protocols.md 3.2).

``state`` is ``live``, ``partially_filled``, ``filled``, ``canceled`` or
``mmp_canceled``; a partly filled IOC order ends ``canceled`` with ``accFillSz > 0``.
"""

from __future__ import annotations

from decimal import Decimal

from arbotd import OrderStatus
from arbotd.exchange import decimal_text

__all__ = ["FINAL_STATES", "final_status", "outcome_reason"]

FINAL_STATES = frozenset({"filled", "canceled", "mmp_canceled"})
_IMMEDIATE = frozenset({"ioc", "market", "fok"})


def final_status(state: str, filled: Decimal, ord_type: str | None) -> OrderStatus | None:
    """An OKX ``state``, the quantity filled and the ``ordType`` -> the order's final
    status, ``None`` while it is open."""
    if state not in FINAL_STATES:
        return None
    if state == "filled":
        return OrderStatus.FILLED
    if filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    if ord_type in _IMMEDIATE:
        return OrderStatus.EXPIRED
    return OrderStatus.CANCELLED


def outcome_reason(status: OrderStatus, filled: Decimal, quantity: Decimal) -> str | None:
    """Why an order ended as it did, for a trader."""
    if status is OrderStatus.PARTIALLY_FILLED:
        return f"filled {decimal_text(filled)} of {decimal_text(quantity)}"
    if status is OrderStatus.EXPIRED:
        return "no liquidity within the limit price (immediate-or-cancel expired)"
    if status is OrderStatus.CANCELLED:
        return "cancelled"
    return None
