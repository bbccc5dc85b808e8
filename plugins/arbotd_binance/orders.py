"""Binance's order statuses and what they make of an arbotd order, for the REST answers
and the user data stream alike.

``NEW``, ``PENDING_NEW`` and ``PARTIALLY_FILLED`` are open; an IOC or market order that
fills partly ends ``EXPIRED`` (exchange-protocols.md 1.2), here ``partially_filled``.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from arbotd import Order, OrderStatus
from arbotd.exchange import decimal_text

__all__ = ["ended", "final_status"]

_FINAL = {
    "FILLED": OrderStatus.FILLED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    "CANCELED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}
_OPEN = frozenset({"NEW", "PENDING_NEW", "PARTIALLY_FILLED"})


def final_status(status: str, executed: Decimal) -> OrderStatus | None:
    """A Binance order status (``X`` on the stream) and the quantity executed -> the
    order's final status, ``None`` while it is open."""
    if status in _OPEN:
        return None
    final = _FINAL.get(status)
    if final is None:
        raise ValueError(f"unknown order status {status!r}")
    if final is not OrderStatus.FILLED and executed > 0:
        return OrderStatus.PARTIALLY_FILLED
    return final


def ended(order: Order, final: OrderStatus, executed: Decimal, exchange_id: str | None,
          rejected_for: str | None = None) -> Order:
    """``order`` in its final status, with the reason a trader reads."""
    reason = None
    if final is OrderStatus.PARTIALLY_FILLED:
        reason = f"filled {decimal_text(executed)} of {decimal_text(order.quantity)}"
    elif final is OrderStatus.EXPIRED:
        reason = "no liquidity within the limit price (immediate-or-cancel expired)"
    elif final is OrderStatus.CANCELLED:
        reason = "cancelled"
    elif final is OrderStatus.REJECTED:
        reason = f"rejected by Binance ({rejected_for})" if rejected_for else (
            "rejected by Binance")
    return attrs.evolve(order, status=final, filled_quantity=executed,
                        exchange_order_id=exchange_id or order.exchange_order_id,
                        reason=reason)

