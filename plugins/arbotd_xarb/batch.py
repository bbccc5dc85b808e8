"""The cross-exchange strategy's answer for a replayed batch (:mod:`arbotd.batch`): the
quotes every crossing of which ``evaluate`` turns down whatever happens in between.

Against every other venue's quote of its symbol, each route (bought here and sold there,
and the other way) either does not cross (against the premium baselines), or crosses
and is turned down:

- as ``below_threshold``, below ``min_profit_threshold * (1 - inventory_skew)``, the
  lowest threshold a route can have: before anything that depends on time, balances or
  trades;
- without inventory skew (the threshold is then the same for every route), once past
  the threshold and the ``anomaly`` and ``feed_down`` checks, as ``stale`` (a quote older
  than ``max_spread_age_seconds`` at the row's time) or ``cooldown`` (the route opened a
  signal less than ``cooldown_seconds`` before): a route's cool-down only ends with
  time, and only a signal, opened by a quote that is not quiet, starts one.

The tests are ``evaluate``'s and ``_consider``'s own, in the same floating-point
operations, in the same order; anything else (a non-positive price, an anomaly, a venue
down) is left to ``evaluate``. A row's time is its own ``received_ts``, as a replay's
clock is while the row is delivered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from arbotd import MarketView, Quote
from arbotd.batch import BookColumns, QuietRows, QuoteBatch, recoded

__all__ = ["quiet_rows", "trend_note", "trend_note_rows"]


def quiet_rows(view: BookColumns, market: MarketView, *,
               venues: Mapping[str, tuple[float, float]],
               default_terms: tuple[float, float], traded: frozenset[str], floor: float,
               slippage: float, skewed: bool, max_spread: float, max_age: float,
               cooldown: float, last_signal: Mapping[tuple[str, str, str], float]
               ) -> QuietRows:
    """``venues`` maps a venue to its taker fee and premium divisor (``default_terms``
    for the others), ``traded`` the strategy's symbols (quotes of other symbols are
    quiet and count nothing), ``last_signal`` each route's last signal time."""
    terms = [venues.get(name) or default_terms for name in view.exchanges]
    fee = np.array([fee for fee, _ in terms])
    divisor = np.array([divisor for _, divisor in terms])
    own = view.exchange
    bid, ask, now = view.own()
    own_fee, own_divisor = fee[own], divisor[own]
    own_bid, own_ask = bid / own_divisor, ask / own_divisor
    count, width = len(own), len(view.exchanges)
    usable = np.array([bool(market.usable.get(name)) for name in view.exchanges])
    # The last signal of each route (symbol, bought on, sold on); -inf for none.
    last = np.full((len(view.symbols), width, width), -np.inf)
    index = {name: i for i, name in enumerate(view.exchanges)}
    symbols = {name: i for i, name in enumerate(view.symbols)}
    for (symbol, buy, sell), when in last_signal.items():
        if symbol in symbols and buy in index and sell in index:
            last[symbols[symbol], index[buy], index[sell]] = when
    quiet = np.ones(count, dtype=bool)
    counts = {reason: np.zeros(count, dtype=np.int64)
              for reason in ("below_threshold", "stale", "cooldown")}

    def route(crosses: np.ndarray, buy_ask: np.ndarray, sell_bid: np.ndarray,
              buy_fee: np.ndarray, sell_fee: np.ndarray, buy_divisor: np.ndarray,
              sell_divisor: np.ndarray, buy_venue: np.ndarray | int,
              sell_venue: np.ndarray | int, buy_ts: np.ndarray, sell_ts: np.ndarray
              ) -> None:
        nonlocal quiet
        cost = buy_ask * buy_fee + sell_bid * sell_fee + slippage * buy_ask
        net = (sell_bid / sell_divisor - buy_ask / buy_divisor) - cost
        priced = (buy_ask > 0) & (sell_bid > 0)
        below = crosses & priced & (net / buy_ask < floor)
        counts["below_threshold"] += below
        settled = below
        if not skewed:
            past = crosses & priced & ~below
            past &= ~((sell_bid - buy_ask) / buy_ask > max_spread)
            past &= usable[buy_venue] & usable[sell_venue]
            stale = past & (now - np.minimum(buy_ts, sell_ts) > max_age)
            cooling = (past & ~stale
                       & (now - last[view.symbol, buy_venue, sell_venue] < cooldown))
            counts["stale"] += stale
            counts["cooldown"] += cooling
            settled = settled | stale | cooling
        quiet &= ~crosses | settled

    with np.errstate(invalid="ignore", divide="ignore"):
        for other in range(width):
            other_bid, other_ask = view.bid[:, other], view.ask[:, other]
            other_ts = view.received[:, other]
            elsewhere = own != other
            # Bought here, sold there: _consider(quote, other).
            route(elsewhere & (other_bid / divisor[other] > own_ask), ask, other_bid,
                  own_fee, fee[other], own_divisor, divisor[other], own, other, now,
                  other_ts)
            # Bought there, sold here: _consider(other, quote).
            route(elsewhere & (own_bid > other_ask / divisor[other]), other_ask, bid,
                  fee[other], own_fee, divisor[other], own_divisor, other, own, other_ts,
                  now)
    if len(traded) < len(view.symbols) or not traded.issuperset(view.symbols):
        untraded = np.array([symbol not in traded for symbol in view.symbols])[view.symbol]
        quiet |= untraded
        for per_row in counts.values():
            per_row[untraded] = 0
    return QuietRows(quiet, counts)


def trend_note(update: Callable[[str, str, float, float], None], traded: frozenset[str]
               ) -> Callable[[Quote, MarketView], None]:
    """The note of a quiet quote when the trend filter is on: its mid into the trend
    window, as ``evaluate`` does with every quote of a traded symbol."""

    def note(quote: Quote, market: MarketView) -> None:
        if quote.symbol in traded:
            update(quote.symbol, quote.exchange, (quote.bid + quote.ask) * 0.5, market.now)

    return note


def trend_note_rows(update: Callable[[str, str, float, float], None],
                    update_many: Callable[[str, str, list[float], list[float]], None],
                    traded: frozenset[str]) -> Callable[[Sequence[Quote], int, int], None]:
    """:func:`trend_note` of the quotes ``start`` to ``end`` of a batch at once, each at
    its own ``received_ts``: the mids of each symbol's quotes on each venue, in order,
    into its trend window (:meth:`~arbotd_xarb.trend.TrendTracker.update_many`; a short
    run quote by quote, with :meth:`~arbotd_xarb.trend.TrendTracker.update`). The batch's
    names, mids and times are read once, for all its runs."""
    read: list[Any] = []

    def note_rows(batch: Sequence[Quote], start: int, end: int) -> None:
        if not read or read[0] is not batch:
            read[:] = [batch, *_trend_rows(batch, traded)]
        _, venues, symbols, keys, traded_rows, mids, times = read
        if end - start < _GROUPED_FROM:
            for row in range(start, end):
                if traded_rows[row]:
                    key = keys[row]
                    update(symbols[key // len(venues)], venues[key % len(venues)], mids[row],
                           times[row])
            return
        run = np.asarray(keys[start:end])
        order = np.argsort(run, kind="stable")
        ordered = run[order]
        cuts = (np.flatnonzero(ordered[1:] != ordered[:-1]) + 1).tolist()
        rows = (order + start).tolist()
        for low, high in itertools.pairwise([0, *cuts, len(rows)]):
            first = rows[low]
            if traded_rows[first]:
                key = keys[first]
                picked = rows[low:high]
                update_many(symbols[key // len(venues)], venues[key % len(venues)],
                            [mids[row] for row in picked], [times[row] for row in picked])

    return note_rows


# Runs shorter than this go quote by quote: grouping costs more than it saves.
_GROUPED_FROM = 128


def _trend_rows(batch: Sequence[Quote], traded: frozenset[str]
                ) -> tuple[list[str], list[str], list[int], list[bool], list[float],
                           list[float]]:
    """A batch's distinct venue and symbol names, each row's key into them (symbol
    times venues plus venue), whether its symbol is traded, its mid and its time."""
    columns = getattr(batch, "columns", None)
    if columns is None:
        columns = QuoteBatch.of(batch).columns
    exchanges, exchange, symbols, symbol, bid, ask, received = columns
    # A reader's names may repeat: each name's rows go together.
    venue_index: dict[str, int] = {}
    symbol_index: dict[str, int] = {}
    venues = recoded(exchanges, exchange, venue_index)
    names = recoded(symbols, symbol, symbol_index)
    venue_names, symbol_names = list(venue_index), list(symbol_index)
    keys = names * len(venue_names) + venues
    traded_rows = np.array([name in traded for name in symbol_names], dtype=bool)[names]
    return (venue_names, symbol_names, keys.tolist(), traded_rows.tolist(),
            ((np.asarray(bid) + np.asarray(ask)) * 0.5).tolist(), np.asarray(received).tolist())
