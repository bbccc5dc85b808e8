"""The cross-exchange opportunity rules (``spec/behaviour.md``, "The opportunity").

For a symbol and an ordered pair of exchanges, buy at A's best ask and sell at B's best
bid. Per unit bought::

    net = (bid_B' - ask_A') - (ask_A * fee_A + bid_B * fee_B) - slippage * ask_A

where ``bid_B'`` and ``ask_A'`` are the prices divided by ``1 + premium_baseline / 100``
of their exchange (so a venue's usual regional premium is not mistaken for profit; a
rolling baseline is the engine's current median, :mod:`arbotd.fx`). A venue quoted in
another currency reaches the strategy converted (:mod:`arbotd.fx`), so every price here
is in the symbol's quote currency. The
opportunity is taken when ``net / ask_A`` reaches ``min_profit_threshold``. Fees and
slippage are proportional, so this test does not depend on the quantity.

Only then is the quantity found, by walking both books (:mod:`arbotd_xarb.depth`; a
level-1 feed's book is its best level): every unit taken reaches the threshold, capped
by ``trade_amount_usd``, ``max_position_size`` and, while trading, the balances (quote
currency on A, base currency on B). The signal's prices are the volume-weighted averages
of that quantity and its limits the worst levels it takes; with one level on both sides
they are the best ask and bid.

Only books that cross count as an opportunity (against the premium baselines, when a
venue has one); each one turned down is counted with
its reason, in the order the checks run: ``below_threshold`` (so that the other reasons
count only books that would have paid), ``inventory_skew`` (a book that reaches
``min_profit_threshold`` but not the higher threshold of a route that moves inventory away
from its targets), ``anomaly``, ``feed_down``, ``stale``, ``cooldown`` (the route opened a
signal less than ``cooldown_seconds`` ago), ``max_trades_per_hour``, ``depth``,
``balance``, ``trend``. A quote is ``stale`` when it is older
than ``max_spread_age_seconds``; a converted one (:mod:`arbotd.fx`) when it or the rate it
was converted at is.

With ``inventory_skew`` above 0 a route's threshold moves with the inventory
(:mod:`arbotd.inventory`): ``min_profit_threshold * (1 - inventory_skew * pull)``; the
signal records the threshold it was held to and why. A non-positive price is an
``anomaly`` before anything else.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from arbotd import MarketView, Quote, Signal, StoredState, split_symbol
from arbotd_xarb.config import ArbitrageConfig
from arbotd_xarb.depth import Segment, take, walk_books, within_balances
from arbotd_xarb.trend import TrendTracker

if TYPE_CHECKING:  # numpy is imported by a replay's first batch, not by the daemon
    from arbotd.batch import BookColumns, QuietRows

__all__ = ["CrossExchangeStrategy"]

log = logging.getLogger(__name__)

_DEFAULT_FEE = 0.001
_HOUR = 3600.0
_ANOMALY_LOG_INTERVAL = 60.0
_QTY_STEP = 1e-8
_EMPTY: list[Signal] = []
_NO_TERMS = (_DEFAULT_FEE, 1.0)


class CrossExchangeStrategy:
    """Buys where a symbol is cheap and sells where it is dear, across every pair of
    enabled exchanges."""

    name = "xarb"

    def __init__(self, config: ArbitrageConfig) -> None:
        self.trend = TrendTracker(config.moving_average_periods,
                                  config.trend_confirmation_threshold)
        self._last_signal: dict[tuple[str, str, str], float] = {}
        self._recent: collections.deque[float] = collections.deque()
        self._anomaly_logged: dict[tuple[str, str, str], float] = {}
        self._venues: dict[str, tuple[float, float]] = {}
        self._venues_of: tuple[object, object] = (None, None)
        self._premiums = False
        self.apply(config)

    def apply(self, config: ArbitrageConfig) -> None:
        """Install new settings in place (on reload); cool-downs and trend windows are
        kept."""
        self.config = config
        self.symbols = list(config.symbols)
        self._assets = {symbol: split_symbol(symbol) for symbol in config.symbols}
        self._trend_mode = config.trend_filter_mode if config.use_trend_filter else "disabled"
        self._min_trade_usd = min(config.trade_amount_usd, 10.0)
        # The settings _consider reads on every crossing book, as plain attributes.
        self._max_age = config.max_spread_age_seconds
        self._max_spread = config.max_spread_threshold
        self._slippage = config.slippage_tolerance
        self._threshold = config.min_profit_threshold
        self._skew = config.inventory_skew
        # The lowest threshold a route can be held to: books below it are no opportunity
        # whatever the inventory (the first, cheapest test).
        self._floor = config.min_profit_threshold * (1 - config.inventory_skew)
        self._trade_cap = min(config.trade_amount_usd, config.max_position_size)
        self.trend.resize(config.moving_average_periods, config.trend_confirmation_threshold)

    def restore(self, state: StoredState) -> None:
        """Count the last hour's signals of a previous run in ``max_trades_per_hour`` and
        the routes' cool-downs, so that a restart does not reset them."""
        for signal in state.recent_signals:
            if signal.symbol not in self._assets:
                continue
            self._last_signal[signal.route] = max(
                self._last_signal.get(signal.route, signal.timestamp), signal.timestamp
            )
            self._recent.append(signal.timestamp)
        if self._recent:
            self._recent = collections.deque(sorted(self._recent))

    # --- hot path ---------------------------------------------------------------------

    def evaluate(
        self, quote: Quote, quotes: Mapping[str, Quote], market: MarketView
    ) -> list[Signal]:
        assets = self._assets.get(quote.symbol)
        if assets is None:
            return _EMPTY
        now = market.now
        if self._trend_mode != "disabled":
            self.trend.update(quote.symbol, quote.exchange, (quote.bid + quote.ask) * 0.5, now)
        if len(quotes) < 2:
            return _EMPTY
        if market.fees is not self._venues_of[0] or market.premium is not self._venues_of[1]:
            self._index_venues(market)
        if self._premiums:
            return self._evaluate_with_premiums(quote, quotes, assets, market, now)
        found: list[Signal] | None = None
        exchange = quote.exchange
        bid, ask = quote.bid, quote.ask
        for other in quotes.values():
            if other.exchange == exchange:
                continue
            if other.bid > ask:
                signal = self._consider(quote, other, assets, market, now)
                if signal is not None:
                    found = (found or []) + [signal]
            if bid > other.ask:
                signal = self._consider(other, quote, assets, market, now)
                if signal is not None:
                    found = (found or []) + [signal]
        return found or _EMPTY

    def quiet(self, view: BookColumns, market: MarketView) -> QuietRows:
        """The quotes of a replayed batch that :meth:`evaluate` would turn down whatever
        happens in between (:mod:`arbotd_xarb.batch`)."""
        from arbotd_xarb.batch import quiet_rows, trend_note, trend_note_rows

        if market.fees is not self._venues_of[0] or market.premium is not self._venues_of[1]:
            self._index_venues(market)
        traded = frozenset(self._assets)
        answer = quiet_rows(
            view, market, venues=self._venues, default_terms=_NO_TERMS, traded=traded,
            floor=self._floor, slippage=self._slippage, skewed=bool(self._skew),
            max_spread=self._max_spread, max_age=self._max_age,
            cooldown=self.config.cooldown_seconds, last_signal=self._last_signal)
        if self._trend_mode == "disabled":
            return answer
        return attrs.evolve(answer, note=trend_note(self.trend.update, traded),
                            note_rows=trend_note_rows(self.trend.update,
                                                      self.trend.update_many, traded))

    def _evaluate_with_premiums(
        self, quote: Quote, quotes: Mapping[str, Quote], assets: tuple[str, str],
        market: MarketView, now: float,
    ) -> list[Signal]:
        """:meth:`evaluate` when some venue has a premium baseline: the books cross
        against the baselines, not raw (a venue at a 3 % premium whose price falls to 1 %
        above the others is a place to buy, though its ask is above their bids)."""
        venues = self._venues
        found: list[Signal] | None = None
        exchange = quote.exchange
        divisor = (venues.get(exchange) or _NO_TERMS)[1]
        bid, ask = quote.bid / divisor, quote.ask / divisor
        for other in quotes.values():
            if other.exchange == exchange:
                continue
            other_divisor = (venues.get(other.exchange) or _NO_TERMS)[1]
            if other.bid / other_divisor > ask:
                signal = self._consider(quote, other, assets, market, now)
                if signal is not None:
                    found = (found or []) + [signal]
            if bid > other.ask / other_divisor:
                signal = self._consider(other, quote, assets, market, now)
                if signal is not None:
                    found = (found or []) + [signal]
        return found or _EMPTY

    def _consider(
        self,
        buy: Quote,
        sell: Quote,
        assets: tuple[str, str],
        market: MarketView,
        now: float,
    ) -> Signal | None:
        # Most crossing books fall short of the threshold, and this runs for nearly every
        # quote: the threshold comes first (a book that is no opportunity is counted as
        # below_threshold whatever else is wrong with it), from plain attributes and locals.
        buy_ex, sell_ex = buy.exchange, sell.exchange
        ask, bid = buy.ask, sell.bid
        if ask <= 0 or bid <= 0:
            market.reject("anomaly")
            return None
        venues = self._venues
        fee_buy, premium_buy = venues.get(buy_ex) or (_DEFAULT_FEE, 1.0)
        fee_sell, premium_sell = venues.get(sell_ex) or (_DEFAULT_FEE, 1.0)
        cost_per_unit = ask * fee_buy + bid * fee_sell + self._slippage * ask
        net_per_unit = (bid / premium_sell - ask / premium_buy) - cost_per_unit
        profit_fraction = net_per_unit / ask
        if profit_fraction < self._floor:
            market.reject("below_threshold")
            return None
        threshold = self._threshold
        if self._skew:
            threshold, why = self._skewed_threshold(assets, buy_ex, sell_ex, market)
            if profit_fraction < threshold:
                market.reject("inventory_skew" if profit_fraction >= self._threshold
                              else "below_threshold")
                return None
        else:
            why = "min_profit_threshold"
        spread = (bid - ask) / ask
        if spread > self._max_spread:
            market.reject("anomaly")
            self._warn_anomaly(buy, sell, spread, now)
            return None
        usable = market.usable
        if not (usable.get(buy_ex) and usable.get(sell_ex)):
            market.reject("feed_down")
            return None
        max_age = self._max_age
        buy_ts, sell_ts = buy.received_ts, sell.received_ts
        # A converted price (arbotd.fx) is as old as the older of its quote and its rate.
        rate_ts = buy.rate_ts
        if rate_ts is not None and rate_ts < buy_ts:
            buy_ts = rate_ts
        rate_ts = sell.rate_ts
        if rate_ts is not None and rate_ts < sell_ts:
            sell_ts = rate_ts
        age = now - (buy_ts if buy_ts < sell_ts else sell_ts)
        if age > max_age:
            market.reject("stale")
            return None

        cfg = self.config
        # A route in its cool-down, or the hour's signals used up: turned down before its
        # books are walked (the walk costs most of a crossing book's time).
        route = (buy.symbol, buy_ex, sell_ex)
        last = self._last_signal.get(route)
        if last is not None and now - last < cfg.cooldown_seconds:
            market.reject("cooldown")
            return None
        recent = self._recent
        while recent and recent[0] <= now - _HOUR:
            recent.popleft()
        if len(recent) >= cfg.max_trades_per_hour:
            market.reject("max_trades_per_hour")
            return None

        asks, bids = buy.ask_levels, sell.bid_levels
        path = walk_books(
            asks, bids, fee_buy=fee_buy, fee_sell=fee_sell, premium_buy=premium_buy,
            premium_sell=premium_sell, slippage=self._slippage, threshold=threshold,
            budget=self._trade_cap,
        )
        quantity = sum(segment[2] for segment in path)
        if not path or _spent(path, quantity) < self._min_trade_usd:
            market.reject("depth")
            return None
        if market.trading:
            base, quote_asset = assets
            quantity = within_balances(
                path,
                quote_available=market.available(buy_ex, quote_asset),
                base_available=market.available(sell_ex, base),
                fee_buy=fee_buy,
                tolerance=cfg.slippage_tolerance,
            )
            if quantity <= 0 or _spent(path, quantity) < self._min_trade_usd:
                market.reject("balance")
                self._count_lost(path, (buy.symbol, buy_ex, sell_ex), fee_buy, fee_sell,
                                 market, now)
                return None
        # Whole steps of 1e-8, written as such: the float of floor(q / step) * step
        # carries binary noise (0.029264580000000002) into the trade's decimals.
        quantity = round(math.floor(quantity / _QTY_STEP) * _QTY_STEP, 8)

        if self._trend_mode != "disabled" and not self._trend_allows(buy.symbol, buy_ex, sell_ex):
            market.reject("trend")
            return None

        self._last_signal[route] = now
        recent.append(now)
        taken = take(path, quantity, fee_buy=fee_buy, fee_sell=fee_sell)
        if taken.deeper:
            buy_price = taken.spent / quantity if taken.worst_ask != ask else ask
            sell_price = taken.received / quantity if taken.worst_bid != bid else bid
            profit_fraction = taken.profit / taken.spent
            depth = min(sum(size for _, size in asks), sum(size for _, size in bids))
        else:
            buy_price, sell_price = ask, bid
            depth = min(buy.ask_size, sell.bid_size)
        age_score = max(0.0, 1.0 - age / max_age)
        depth_score = min(1.0, depth / (2 * quantity)) if quantity > 0 else 0.0
        return Signal(
            id=0,
            symbol=buy.symbol,
            buy_exchange=buy_ex,
            sell_exchange=sell_ex,
            buy_price=buy_price,
            sell_price=sell_price,
            buy_size=buy.ask_size,
            sell_size=sell.bid_size,
            quantity=quantity,
            profit=taken.profit,
            profit_percent=profit_fraction * 100,
            spread_percent=spread * 100,
            fees=taken.fees,
            confidence=round(0.5 * depth_score + 0.5 * age_score, 4),
            timestamp=now,
            price_tolerance=cfg.slippage_tolerance,
            buy_limit=taken.worst_ask,
            sell_limit=taken.worst_bid,
            threshold=threshold,
            threshold_reason=why,
            # A venue quoted in another currency: the same prices in its currency, at the
            # rates its quotes were converted with (arbotd.fx).
            buy_native_price=None if buy.rate_bid is None else buy_price * buy.rate_bid,
            sell_native_price=None if sell.rate_ask is None else sell_price * sell.rate_ask,
            buy_rate=buy.rate_bid,
            sell_rate=sell.rate_ask,
        )

    def _skewed_threshold(
        self, assets: tuple[str, str], buy_ex: str, sell_ex: str, market: MarketView
    ) -> tuple[float, str]:
        """The threshold of a route under ``inventory_skew``, and why (see
        :mod:`arbotd.inventory`)."""
        base, quote_asset = assets
        pull = market.inventory.route_pull(base, quote_asset, buy_ex, sell_ex)
        if pull == 0:
            return self._threshold, "min_profit_threshold"
        threshold = max(0.0, self._threshold * (1 - self._skew * pull))
        way = "toward" if pull > 0 else "away from"
        return threshold, (f"inventory_skew: pull {pull:+.3f}, the trade moves {base} and "
                           f"{quote_asset} {way} their targets")

    def _count_lost(
        self, path: Sequence[Segment], route: tuple[str, str, str], fee_buy: float,
        fee_sell: float, market: MarketView, now: float,
    ) -> None:
        """Tell the inventory what a signal turned down for balance would have made."""
        inventory = getattr(market, "inventory", None)
        if inventory is None:
            return
        wanted = sum(segment[2] for segment in path)
        profit = take(path, wanted, fee_buy=fee_buy, fee_sell=fee_sell).profit
        inventory.note_balance_rejection(route, profit, now, self.config.cooldown_seconds)

    def _index_venues(self, market: MarketView) -> dict[str, tuple[float, float]]:
        """Each venue's taker fee and premium divisor (``1 + premium_baseline / 100``),
        rebuilt when the engine installs new fees or premiums (a reload)."""
        fees, premium = market.fees, market.premium
        self._venues = {
            venue: (fees.get(venue, _DEFAULT_FEE), 1 + premium.get(venue, 0.0) / 100)
            for venue in {*fees, *premium}
        }
        self._venues_of = (fees, premium)
        self._premiums = any(divisor != 1.0 for _, divisor in self._venues.values())
        return self._venues

    # --- the rest -------------------------------------------------------------------------

    def _trend_allows(self, symbol: str, buy_ex: str, sell_ex: str) -> bool:
        """``uptrend_buy_low``: the buying venue trends up; ``downtrend_sell_high``: the
        selling venue trends down; ``both``: either venue shows a trend, either way."""
        mode = self._trend_mode
        if mode == "uptrend_buy_low":
            return self.trend.trend(symbol, buy_ex) == "up"
        if mode == "downtrend_sell_high":
            return self.trend.trend(symbol, sell_ex) == "down"
        return (
            self.trend.trend(symbol, buy_ex) != "neutral"
            or self.trend.trend(symbol, sell_ex) != "neutral"
        )

    def _warn_anomaly(self, buy: Quote, sell: Quote, spread: float, now: float) -> None:
        route = (buy.symbol, buy.exchange, sell.exchange)
        if now - self._anomaly_logged.get(route, -math.inf) < _ANOMALY_LOG_INTERVAL:
            return
        self._anomaly_logged[route] = now
        log.warning(
            "%s: spread %.1f %% between %s (ask %s) and %s (bid %s) is beyond "
            "max_spread_threshold: treated as bad data (wrong symbol mapping, delisting or "
            "a frozen book?)",
            buy.symbol, spread * 100, buy.exchange, buy.ask, sell.exchange, sell.bid,
        )


def _spent(path: Sequence[Segment], quantity: float) -> float:
    """The money the first ``quantity`` units of ``path`` spend."""
    if len(path) == 1:
        return quantity * path[0][0]
    spent, left = 0.0, quantity
    for ask, _bid, units, _net in path:
        part = units if units < left else left
        spent += ask * part
        left -= part
        if left <= 0:
            break
    return spent
