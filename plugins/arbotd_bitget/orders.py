"""Bitget's order states and what they make of an arbotd order, for the REST order
details and the private ``orders`` channel alike (bitget-upbit-protocols.md 1.2, 1.4).

``status`` is ``live`` (the unfilled-orders example writes ``new``),
``partially_filled``, ``filled`` or ``cancelled`` (hummingbot also meets ``canceled``:
both spellings are accepted). A partly filled IOC order ends ``cancelled`` with a
filled quantity above 0.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

from arbotd import OrderStatus
from arbotd.exchange import decimal_text

__all__ = ["FINAL_STATES", "bitget_client_oid", "final_status", "outcome_reason"]

FINAL_STATES = frozenset({"filled", "cancelled", "canceled"})
# clientOid: letters, digits and -+_#, fewer than 50 (bitget-upbit-protocols.md 1.2).
_CLIENT_OID = re.compile(r"[0-9A-Za-z+_#-]{1,49}")


def bitget_client_oid(client_order_id: str) -> str:
    """``client_order_id`` as Bitget accepts it: itself when it fits, otherwise ``x``
    and 40 hex digits of its SHA-256, so the same id always maps to the same
    ``clientOid``."""
    if _CLIENT_OID.fullmatch(client_order_id):
        return client_order_id
    return "x" + hashlib.sha256(client_order_id.encode()).hexdigest()[:40]


def final_status(state: str, filled: Decimal, force: str | None) -> OrderStatus | None:
    """A Bitget ``status``, the quantity filled and the order's ``force`` (its time in
    force; ``ioc``, or ``None`` for a market order) -> the order's final status, ``None``
    while it is open."""
    if state not in FINAL_STATES:
        return None
    if state == "filled":
        return OrderStatus.FILLED
    if filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    if force in (None, "ioc", "fok"):
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
