"""Bybit's order statuses and what they make of an arbotd order, for the REST order lists
and the private stream's ``order`` topic alike (Bybit's ``enum.mdx``).

An IOC order that filled partly ends ``PartiallyFilledCanceled``; one that did not fill
ends ``Cancelled``.
"""

from __future__ import annotations

from decimal import Decimal

from arbotd import OrderStatus

__all__ = ["NO_REASON", "OPEN_STATUSES", "order_status", "outcome_reason"]

OPEN_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered", "Created"})
# rejectReason values that say nothing.
NO_REASON = frozenset({"", "EC_NoError", "UNKNOWN"})


def order_status(bybit_status: str, filled: Decimal) -> OrderStatus | None:
    """A Bybit ``orderStatus`` -> the final status of an IOC/market order, ``None`` while
    it is open."""
    if bybit_status in OPEN_STATUSES:
        return None
    if bybit_status == "Filled":
        return OrderStatus.FILLED
    if filled > 0:
        return OrderStatus.PARTIALLY_FILLED  # PartiallyFilledCanceled, Cancelled after fills
    if bybit_status == "Rejected":
        return OrderStatus.REJECTED
    if bybit_status == "Cancelled":
        return OrderStatus.EXPIRED  # an immediate-or-cancel order that found nothing
    return OrderStatus.CANCELLED  # Deactivated, or a status Bybit adds later



def outcome_reason(bybit_status: str, reject_reason: str, status: OrderStatus) -> str | None:
    """Why an order ended as it did, for a trader: Bybit's ``rejectReason`` when it says
    something, else the status of an order that failed."""
    if reject_reason not in NO_REASON:
        return reject_reason
    if status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
        return bybit_status
    return None
