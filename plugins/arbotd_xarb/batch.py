"""The cross-exchange strategy's answer for a replayed batch (:mod:`arbotd.batch`): the
quotes whose every crossing falls below the lowest threshold a route can have.

A quote is quiet when, against every other venue's quote of its symbol, neither route
crosses (against the premium baselines), or each that crosses stays below
``min_profit_threshold * (1 - inventory_skew)``: ``evaluate`` turns all of those down as
``below_threshold`` before anything that depends on time, balances or trades, so they
are the same whatever happens in between. The tests here are ``evaluate``'s and
``_consider``'s first ones, in the same floating-point operations, in the same order;
anything else (a non-positive price) is left to ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from arbotd import MarketView, Quote
from arbotd.batch import BookColumns, QuietRows

__all__ = ["quiet_rows"]


def quiet_rows(view: BookColumns, venues: Mapping[str, tuple[float, float]],
               default_terms: tuple[float, float], traded: frozenset[str], floor: float,
               slippage: float) -> QuietRows:
    """``venues`` maps a venue to its taker fee and premium divisor (``default_terms``
    for the others), ``traded`` the strategy's symbols (quotes of other symbols are
    quiet and count nothing)."""
    terms = [venues.get(name) or default_terms for name in view.exchanges]
    fee = np.array([fee for fee, _ in terms])
    divisor = np.array([divisor for _, divisor in terms])
    own = view.exchange
    bid, ask = view.own()
    own_fee, own_divisor = fee[own], divisor[own]
    own_bid, own_ask = bid / own_divisor, ask / own_divisor
    count = len(own)
    quiet = np.ones(count, dtype=bool)
    below = np.zeros(count, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for other in range(len(view.exchanges)):
            other_bid, other_ask = view.bid[:, other], view.ask[:, other]
            elsewhere = own != other
            # Bought here, sold there: _consider(quote, other).
            crosses = elsewhere & (other_bid / divisor[other] > own_ask)
            cost = ask * own_fee + other_bid * fee[other] + slippage * ask
            net = (other_bid / divisor[other] - ask / own_divisor) - cost
            turned_down = crosses & (ask > 0) & (other_bid > 0) & (net / ask < floor)
            quiet &= ~crosses | turned_down
            below += turned_down
            # Bought there, sold here: _consider(other, quote).
            crosses = elsewhere & (own_bid > other_ask / divisor[other])
            cost = other_ask * fee[other] + bid * own_fee + slippage * other_ask
            net = (bid / own_divisor - other_ask / divisor[other]) - cost
            turned_down = crosses & (other_ask > 0) & (bid > 0) & (net / other_ask < floor)
            quiet &= ~crosses | turned_down
            below += turned_down
    if len(traded) < len(view.symbols) or not traded.issuperset(view.symbols):
        untraded = np.array([symbol not in traded for symbol in view.symbols])[view.symbol]
        quiet |= untraded
        below[untraded] = 0
    return QuietRows(quiet, {"below_threshold": below})


def trend_note(update: object, traded: frozenset[str]) -> object:
    """The note of a quiet quote when the trend filter is on: its mid into the trend
    window, as ``evaluate`` does with every quote of a traded symbol."""

    def note(quote: Quote, market: MarketView) -> None:
        if quote.symbol in traded:
            update(quote.symbol, quote.exchange,  # type: ignore[operator]
                   (quote.bid + quote.ask) * 0.5, market.now)

    return note
