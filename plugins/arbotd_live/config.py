"""The ``[live]`` table: how live mode sends orders and keeps its view of the accounts."""

from __future__ import annotations

from typing import Any

import attrs

from arbotd import setting

__all__ = ["LiveConfig"]

_ORDER_TYPES = ("ioc_limit", "market")


def _check_order_type(value: Any) -> str | None:
    if value not in _ORDER_TYPES:
        return f"expected one of {', '.join(_ORDER_TYPES)}, got {value!r}"
    return None


@attrs.frozen
class LiveConfig:
    """``[live]``: real orders on the exchanges whose ``[exchanges.*]`` table is enabled."""

    # How a trade's two entry legs are sent: "ioc_limit" (immediate-or-cancel at the
    # signal's price widened by arbitrage.slippage_tolerance; what does not fill at once
    # is cancelled) or "market" (always fills, at whatever the book gives).
    entry_orders: str = setting("ioc_limit", check=_check_order_type)
    # Balances are fetched from the exchanges this often (seconds), and after every trade.
    balance_refresh_seconds: float = setting(60.0, ge=5, le=86400)
    # Trading rules (tick size, lot size, minimums) are reloaded this often (hours).
    rules_refresh_hours: float = setting(24.0, gt=0, le=168)
    # At start, how long to wait for the accounts to answer (clock, rules, balances)
    # before live trading is refused (seconds).
    connect_timeout_seconds: float = setting(30.0, gt=0, le=600)
