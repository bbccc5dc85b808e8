"""Sizing an opportunity by walking both books (``spec/behaviour.md``, "Depth").

The asks of the buying venue are taken from the best upwards and the bids of the selling
venue from the best downwards, unit by unit. The marginal unit bought at ask ``a`` and
sold at bid ``b`` earns::

    net = (b / premium_sell - a / premium_buy) - (a * fee_buy + b * fee_sell + slippage * a)

(the same expression, in the same order, as the best-level rule of
:mod:`arbotd_xarb.strategy`, so that one level on both sides gives exactly its figures).
A unit is taken only while ``net / a`` reaches the threshold, so every unit of the trade
pays, not only the average. Asks rise and bids fall, so the first unit that does not pay
ends the walk.

The walk is a *path*: one segment per pair of levels, ``(ask, bid, quantity, net)``,
best first. Caps cut it short: ``trade_amount_usd`` (money spent, at each level's price)
during the walk; balances afterwards (:func:`within_balances`), since the strategy
counts a quantity the books allow but the balances do not as ``balance``, not
``depth``. Then :func:`take` sums the path up to the final quantity.

This runs only for books whose best levels already pass the threshold: a few times per
thousand quotes; the cost of the hot path is the best-level test before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

__all__ = ["Segment", "Taken", "take", "walk_books", "within_balances"]

Segment = tuple[float, float, float, float]
"""``(ask, bid, quantity, net per unit)``: units bought at one ask and sold at one bid."""

# Quantities are whole steps of 1e-8; less than half a step left over is float noise,
# never a reason to go one level deeper (and set a worse limit price).
_NOISE = 0.5e-8


def walk_books(
    asks: Sequence[tuple[float, float]],
    bids: Sequence[tuple[float, float]],
    *,
    fee_buy: float,
    fee_sell: float,
    premium_buy: float,
    premium_sell: float,
    slippage: float,
    threshold: float,
    budget: float,
) -> list[Segment]:
    """The path of units that each reach ``threshold``, from ``asks`` and ``bids`` (best
    first, ``(price, size)``), spending at most ``budget`` in the quote currency.
    ``premium_*`` are divisors (``1 + premium_baseline / 100``)."""
    path: list[Segment] = []
    i = j = 0
    ask, ask_left = asks[0]
    bid, bid_left = bids[0]
    while ask > 0 and bid > 0:
        net = (bid / premium_sell - ask / premium_buy) - (
            ask * fee_buy + bid * fee_sell + slippage * ask
        )
        if net / ask < threshold:
            break
        units = ask_left if ask_left < bid_left else bid_left
        room = budget / ask
        if room <= units:
            if room > 0:
                path.append((ask, bid, room, net))
            break
        path.append((ask, bid, units, net))
        budget -= ask * units
        ask_left -= units
        bid_left -= units
        if ask_left <= 0:
            i += 1
            if i == len(asks):
                break
            ask, ask_left = asks[i]
        if bid_left <= 0:
            j += 1
            if j == len(bids):
                break
            bid, bid_left = bids[j]
    return path


def within_balances(
    path: Sequence[Segment], *, quote_available: float, base_available: float,
    fee_buy: float, tolerance: float,
) -> float:
    """The quantity of ``path`` the balances cover. The buy's limit is the worst ask it
    reaches, and the quote currency set aside for it is ``quantity * limit``, with the
    fee and the price tolerance; the sell needs the base coin. A deeper ask raises the
    limit of the whole order, so the walk stops before a level at which what it already
    holds would no longer be covered."""
    held = 0.0
    for ask, _bid, units, _net in path:
        ceiling = quote_available / (ask * (1 + fee_buy) * (1 + tolerance))
        if base_available < ceiling:
            ceiling = base_available
        if ceiling <= held:
            break
        held = min(held + units, ceiling)
    return held


@attrs.frozen(slots=True)
class Taken:
    """``quantity`` taken along a path: the money it spends and brings in, its expected
    net profit and fees, the worst levels it reaches (the orders' limit prices) and
    whether it goes past the best level of each side."""

    quantity: float
    spent: float
    received: float
    profit: float
    fees: float
    worst_ask: float
    worst_bid: float
    deeper: bool


def take(path: Sequence[Segment], quantity: float, *, fee_buy: float, fee_sell: float
         ) -> Taken:
    """The figures of the first ``quantity`` units of ``path``."""
    left = quantity
    spent = received = profit = fees = 0.0
    worst_ask, worst_bid = path[0][0], path[0][1]
    for index, (ask, bid, units, net) in enumerate(path):
        if index and left <= _NOISE:
            break
        part = units if units < left else left
        profit += net * part
        fees += (ask * fee_buy + bid * fee_sell) * part
        spent += ask * part
        received += bid * part
        worst_ask, worst_bid = ask, bid
        left -= part
    return Taken(quantity, spent, received, profit, fees, worst_ask, worst_bid,
                 deeper=worst_ask != path[0][0] or worst_bid != path[0][1])
