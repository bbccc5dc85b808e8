"""Upbit's order states and what they make of an arbotd order, for REST (``GET
/v1/order``) and the private ``myOrder`` stream alike (bitget-upbit-protocols.md 2.2, 2.4).

``state`` is ``wait``, ``watch`` (a reserved order), ``done`` or ``cancel`` (the stream also
says ``trade`` for each fill and ``prevented`` for self-match prevention). An IOC limit
order's unfilled rest is cancelled: it ends ``cancel`` with ``executed_volume > 0`` when
partly filled (unverified, the expected reading), ``cancel`` with nothing executed when
nothing crossed.
"""

from __future__ import annotations

from decimal import Decimal

from arbotd import OrderStatus
from arbotd.exchange import decimal_text

__all__ = ["FINAL_STATES", "final_status", "outcome_reason"]

FINAL_STATES = frozenset({"done", "cancel", "prevented"})


def final_status(state: str, executed: Decimal, volume: Decimal | None,
                 immediate: bool) -> OrderStatus | None:
    """An Upbit ``state``, the volume executed, the order's volume (``None`` for a market
    buy by price) and whether it was immediate (IOC, FOK, market) -> its final status;
    ``None`` while it is open."""
    if state not in FINAL_STATES:
        return None
    if state == "done" or (volume is not None and executed >= volume > 0):
        return OrderStatus.FILLED
    if executed > 0:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.EXPIRED if immediate else OrderStatus.CANCELLED


def outcome_reason(status: OrderStatus, filled: Decimal, quantity: Decimal) -> str | None:
    if status is OrderStatus.PARTIALLY_FILLED:
        return f"filled {decimal_text(filled)} of {decimal_text(quantity)}"
    if status is OrderStatus.EXPIRED:
        return "no liquidity within the limit price (immediate-or-cancel expired)"
    if status is OrderStatus.CANCELLED:
        return "cancelled"
    return None
