"""What a notification says: one value per event, with the text a person reads (Telegram)
and the data a program reads (the webhook's JSON).

Kinds: ``trade_completed``, ``trade_failed``, ``trade_unwound`` (at a loss),
``emergency_stop``, ``venue_down`` and ``venue_back``, ``risk_limit`` (a limit's state
changed: warning, critical, or back to normal) and ``daily_summary``. Money figures come
from :mod:`arbotd.figures`, rounded as everywhere else.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs

from arbotd import LimitUse, Trade, TradeState, describe_trade, iso_utc
from arbotd.figures import money, money_text, size, summarize, trade_figures

__all__ = [
    "KINDS",
    "DailySummary",
    "Notification",
    "daily_summary",
    "emergency_stop",
    "inventory_drift",
    "risk_limit",
    "trade_notification",
    "venue_back",
    "venue_down",
]

KINDS = ("trade_completed", "trade_failed", "trade_unwound", "emergency_stop",
         "venue_down", "venue_back", "risk_limit", "daily_summary", "inventory_drift")

_TRADE_KINDS = {TradeState.COMPLETED: "trade_completed", TradeState.FAILED: "trade_failed",
                TradeState.UNWOUND: "trade_unwound"}


@attrs.frozen
class Notification:
    """One thing to tell. ``suppressed``: notifications of the same kind the rate limit
    kept back since the last one sent."""

    kind: str
    text: str
    timestamp: float
    data: dict[str, Any] = attrs.field(factory=dict)
    suppressed: int = 0

    def payload(self, source: str) -> dict[str, Any]:
        """The webhook's JSON body."""
        return {"source": source, "event": self.kind, "text": self.text,
                "timestamp": iso_utc(self.timestamp), "time": self.timestamp,
                "suppressed": self.suppressed, "data": self.data}

    def message(self, label: str) -> str:
        """The text for a person: the label, the text, and what the rate limit held."""
        text = f"{label}: {self.text}" if label else self.text
        if self.suppressed:
            text += (f"\n({self.suppressed} more {self.kind} notification"
                     f"{'s were' if self.suppressed != 1 else ' was'} not sent: rate limit)")
        return text


def trade_notification(trade: Trade, now: float) -> Notification | None:
    """A finished trade worth telling: completed, failed, or unwound at a loss."""
    kind = _TRADE_KINDS.get(trade.state)
    figures = trade_figures(trade)
    if kind is None or (kind == "trade_unwound" and figures.net >= 0):
        return None
    currency = figures.currency
    return Notification(kind, describe_trade(trade), now, {
        "trade_id": trade.id, "symbol": trade.symbol, "state": str(trade.state),
        "buy_exchange": trade.buy_exchange, "sell_exchange": trade.sell_exchange,
        "quantity": size(figures.filled_quantity),
        "planned_quantity": size(figures.planned_quantity),
        "net": money(figures.net, currency), "fees": money(figures.fees, currency),
        "slippage": money(figures.slippage, currency), "currency": currency,
        "reason": trade.reason,
    })


def inventory_drift(event: dict[str, Any], now: float) -> Notification:
    """The bus's ``inventory`` event: a venue's share of an asset passed ``warn_drift``
    from its target (``past``), or came back under it."""
    asset, venue, drift = event["asset"], event["exchange"], float(event["drift"])
    if event.get("past"):
        text = (f"inventory: {asset} on {venue} is {drift * 100:+.1f} % from its target "
                f"share (warn_drift {float(event['warn_drift']) * 100:g} %); GET "
                "/api/v1/inventory has the transfers that restore the targets")
    else:
        text = f"inventory: {asset} on {venue} is back within warn_drift ({drift * 100:+.1f} %)"
    return Notification("inventory_drift", text, now, {
        "asset": asset, "exchange": venue, "drift": drift, "past": bool(event.get("past"))})


def emergency_stop(now: float) -> Notification:
    return Notification(
        "emergency_stop", "EMERGENCY STOP: trading is disabled and open trades were "
        "flattened; it stays disabled until trading is started again", now)


def venue_down(exchange: str, since: float, now: float, reason: str | None) -> Notification:
    down = now - since
    because = f" ({reason})" if reason else ""
    return Notification(
        "venue_down", f"{exchange}: market data down for {down:.0f} s{because}; nothing "
        "is traded there until it is back", now,
        {"exchange": exchange, "down_since": iso_utc(since), "down_seconds": round(down, 1),
         "reason": reason})


def venue_back(exchange: str, since: float, now: float) -> Notification:
    down = now - since
    return Notification(
        "venue_back", f"{exchange}: market data back after {down:.0f} s down", now,
        {"exchange": exchange, "down_since": iso_utc(since), "down_seconds": round(down, 1)})


def risk_limit(use: LimitUse, previous: str, now: float) -> Notification:
    state = "back to normal" if use.status == "normal" else f"at {use.status}"
    return Notification(
        "risk_limit", f"risk limit {use.name} {state}: {use.current:g} of {use.limit:g} "
        f"used ({use.ratio * 100:.0f} %)", now,
        {"limit": use.name, "state": use.status, "previous_state": previous,
         "current": round(use.current, 8), "value": round(use.limit, 8),
         "ratio": round(use.ratio, 6)})


@attrs.frozen
class DailySummary:
    """The trades of one UTC day that moved money (completed, unwound or failed with a
    fill, as ``/performance`` counts them), and their net and fees."""

    day: dt.date
    trades: int
    wins: int
    net: Decimal
    fees: Decimal

    @classmethod
    def of(cls, day: dt.date, nets_and_fees: list[tuple[Decimal, Decimal]]) -> DailySummary:
        summary = summarize(nets_and_fees)
        return cls(day, summary.trades, summary.wins, summary.net, summary.fees)

    @staticmethod
    def counts(trade: Trade) -> bool:
        """Whether a finished trade counts in the day's figures."""
        return trade.state in _TRADE_KINDS and bool(trade.fills)


def daily_summary(summary: DailySummary, currency: str, now: float) -> Notification:
    win_rate = 100.0 * summary.wins / summary.trades if summary.trades else 0.0
    net = money_text(summary.net, currency)
    text = (f"daily summary {summary.day.isoformat()} (UTC): {summary.trades} trade"
            f"{'s' * (summary.trades != 1)}, {summary.wins} won ({win_rate:.1f} %), net "
            f"{net if net.startswith('-') else '+' + net} {currency}, fees "
            f"{money_text(summary.fees, currency)} {currency}")
    return Notification("daily_summary", text, now, {
        "date": summary.day.isoformat(), "trades": summary.trades, "wins": summary.wins,
        "win_rate": round(win_rate, 4), "net": money(summary.net, currency),
        "fees": money(summary.fees, currency), "currency": currency})
