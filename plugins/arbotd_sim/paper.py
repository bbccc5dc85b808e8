"""Paper execution: orders fill against the engine's book, on virtual balances.

An order waits ``fill_delay_seconds``, then:

- is rejected with probability ``reject_rate``;
- an immediate-or-cancel limit order (a trade's entry legs) walks the venue's book as it
  is at that moment, best level first: a buy takes the asks priced at or below its limit,
  a sell the bids at or above it, until its quantity is filled or no level within the
  limit is left; with probability ``partial_fill_rate`` it fills only
  ``partial_fill_ratio`` of what it could have taken. When even the best level is beyond
  the limit it expires unfilled (the price moved away);
- a market order (a hedge or an unwind) walks the book the same way without a limit, to
  its full quantity or until the book's levels run out (the rest is not filled). A venue
  that quotes its best level only (no ``bids``/``asks``) fills it completely at the best
  price, as nothing is known of the book behind it.

Each level taken is a :class:`~arbotd.Fill` of its own, at that level's price (as an
exchange reports the trades of one order), so the order's average price is the
volume-weighted price of the levels it took. With one level this is one fill at the best
price, up to the displayed size. The taker fee is charged on each fill's notional, in the
quote currency. On a venue quoted in another currency (:mod:`arbotd.fx`) the book is the
engine's converted one; the simulated venue fills at its own prices (the converted levels
times the rate the book was converted at), paid and charged in its currency, with its
limit in that currency (the order's limit times the order's rate), and its fills are
priced in the quote currency at the order's rate as live fills are
(:func:`arbotd.fx.converted_fill`).

Every random choice comes from a generator seeded with ``seed`` and the
order's client id, so it does not depend on the order in which concurrent legs happen to
run.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs
import trio

from arbotd import (
    Fill,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Quote,
    Runtime,
    Side,
    split_symbol,
    to_decimal,
)
from arbotd.fx import converted_fill
from arbotd_sim.config import PaperConfig

__all__ = ["PaperExecutor"]

log = logging.getLogger(__name__)

# A venue whose last quote is older than this has no price to fill at.
MAX_QUOTE_AGE_SECONDS = 10.0
_UNLIMITED = Decimal("Infinity")


class PaperExecutor:
    """The executor of ``simulation`` mode (and of backtests)."""

    def __init__(
        self,
        settings: PaperConfig,
        runtime: Runtime,
        *,
        seed: int,
        reference_prices: Mapping[str, float],
        mode: str = "simulation",
        reference_rates: Mapping[str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.seed = seed
        self.reference_prices = dict(reference_prices)
        # Units of a venue's own currency per unit of the quote currency (KRW: 1,350), to
        # fund a venue quoted in it before its rate market has quoted.
        self.reference_rates = dict(reference_rates or {})
        self.mode = mode
        self.funded: set[str] = set()
        # Orders waiting for their fill delay, by client order id: set to cancel them.
        self._pending: dict[str, trio.Event] = {}

    # --- accounts -------------------------------------------------------------------------

    def start(self, venues: Sequence[str] | None = None) -> None:
        """Give every enabled venue its starting paper balances, once (a venue whose
        account storage restored keeps it): the assets of ``balances``, and for any other
        coin the strategies trade, ``coin_balance_usd`` worth at its reference price (or
        its current price). Every venue is funded, not only ``venues`` (the ones this
        start trades on), so that a later start on other venues finds its accounts."""
        engine = self.runtime.engine
        assert engine is not None
        ledger = self.runtime.ledger
        assets = dict(self.settings.balances)
        for symbol in {s for strategy in self.runtime.strategies for s in strategy.symbols}:
            base, _ = split_symbol(symbol)
            if base in assets:
                continue
            price = self.reference_prices.get(symbol) or engine.price_usd(base)
            if price:
                assets[base] = self.settings.coin_balance_usd / price
            else:
                log.warning("no price for %s yet: paper balances start without it "
                            "(set simulation.paper.balances.%s)", base, base)
        restored = set(ledger.exchanges())  # accounts a restarted daemon got back
        for venue in sorted(engine.market.fees):
            if venue in self.funded or venue in restored:
                continue
            funding = self._funding(venue, assets)
            for asset, amount in sorted(funding.items()):
                ledger.fund(venue, asset, to_decimal(round(amount, 8)))
            self.funded.add(venue)
            log.info("paper account on %s: %s", venue, ", ".join(
                f"{a} {to_decimal(round(v, 8))}" for a, v in sorted(funding.items())))

    def _funding(self, venue: str, assets: dict[str, float]) -> dict[str, float]:
        """``assets``, but on a venue quoted in another currency its quote currency
        (USDT) is given as that currency (KRW), at its rate market's mid (or the
        reference rate before the first)."""
        engine = self.runtime.engine
        assert engine is not None
        conversion = engine.conversion(venue)
        if conversion is None or conversion.priced not in assets:
            return assets
        rate_quote = engine.rates.get(venue)
        rate = rate_quote.mid if rate_quote is not None else self.reference_rates.get(
            conversion.currency)
        if not rate:
            log.warning("no %s rate for %s yet: its paper account starts without %s",
                        conversion.currency, venue, conversion.priced)
            return {a: v for a, v in assets.items() if a != conversion.priced}
        funding = dict(assets)
        funding[conversion.currency] = funding.pop(conversion.priced) * rate
        return funding

    # --- orders -------------------------------------------------------------------------

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        settings = self.settings
        rng = random.Random(f"{self.seed}:{order.client_order_id}")
        cancelled = self._pending[order.client_order_id] = trio.Event()
        try:
            with trio.move_on_after(settings.fill_delay_seconds):
                await cancelled.wait()
        finally:
            del self._pending[order.client_order_id]
        if cancelled.is_set():
            return attrs.evolve(order, status=OrderStatus.CANCELLED,
                                reason="cancelled before it filled"), []
        if rng.random() < settings.reject_rate:
            return attrs.evolve(order, status=OrderStatus.REJECTED,
                                reason="rejected by the simulated exchange"), []
        quote = self._quote(order.exchange, order.symbol)
        if quote is None:
            return attrs.evolve(order, status=OrderStatus.REJECTED,
                                reason="no recent price on the venue"), []
        buying = order.side is Side.BUY
        levels = book_levels(quote, order.side, market=order.purpose != "entry")
        quantity = order.quantity
        native = self._native(order, quote)
        if order.purpose == "entry":
            limit = order.price
            if native is not None and order.rate is not None:
                # The venue's limit is in its currency (at the order's rate); its book,
                # converted at the book's rate, is compared with that limit converted back.
                limit = limit * order.rate / native[1]
            best = levels[0][0]
            if (best > limit) if buying else (best < limit):
                return attrs.evolve(order, status=OrderStatus.EXPIRED,
                                    reason=f"price moved to {best}, beyond the limit"), []
            levels = within_limit(levels, order.side, limit)
            quantity = min(quantity, sum(size for _, size in levels))
            if rng.random() < settings.partial_fill_rate:
                ratio = to_decimal(settings.partial_fill_ratio)
                quantity = (quantity * ratio).quantize(Decimal("1e-8"))
        taken = walk(levels, quantity)
        if not taken:
            return attrs.evolve(order, status=OrderStatus.EXPIRED, reason="no size"), []
        _, quote_asset = split_symbol(order.symbol)
        fee_rate = to_decimal(self._fee(order.exchange))
        now = self.runtime.clock()
        if native is None:
            fills = [
                Fill(
                    order_id=order.client_order_id,
                    trade_id=order.trade_id,
                    exchange=order.exchange,
                    symbol=order.symbol,
                    side=order.side,
                    price=price,
                    quantity=size,
                    fee=price * size * fee_rate,
                    fee_asset=quote_asset,
                    timestamp=now,
                )
                for price, size in taken
            ]
        else:
            currency, book_rate = native
            fills = [
                _native_fill(order, price, size, fee_rate, currency, book_rate, now)
                for price, size in taken
            ]
        filled = sum(size for _, size in taken)
        status = OrderStatus.FILLED if filled == order.quantity else OrderStatus.PARTIALLY_FILLED
        reason = None
        if filled < quantity:  # a market order that took every level the book shows
            reason = f"the book's {len(levels)} levels ran out after {filled}"
        if native is not None and order.rate is not None:
            # The limit the simulated venue was sent, in its currency (0: at market).
            order = attrs.evolve(order, native_price=order.price * order.rate)
        return attrs.evolve(order, status=status, filled_quantity=filled, reason=reason,
                            exchange_order_id=f"paper-{order.client_order_id}"), fills

    def cancel_order(self, client_order_id: str) -> bool:
        """Cancel a paper order still waiting for its fill delay; ``False`` when it is not
        waiting (it filled or ended already)."""
        pending = self._pending.get(client_order_id)
        if pending is None:
            return False
        pending.set()
        return True

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        # Paper orders always answer at once, so their outcome is never unknown.
        raise PermanentExchangeError(order.exchange, f"unknown order {order.client_order_id}")

    def reference_price(self, exchange: str, symbol: str, side: str) -> float | None:
        quote = self._quote(exchange, symbol)
        if quote is None:
            return None
        return quote.ask if side == "buy" else quote.bid

    def _quote(self, exchange: str, symbol: str) -> Quote | None:
        engine = self.runtime.engine
        assert engine is not None
        return engine.fresh_quote(exchange, symbol, MAX_QUOTE_AGE_SECONDS)

    def _native(self, order: Order, quote: Quote) -> tuple[str, Decimal] | None:
        """For a venue quoted in another currency: that currency and the rate of the book
        the order fills against (a buy's asks were divided by the rate's bid, a sell's
        bids by its ask); ``None`` for other venues."""
        rate = quote.rate_bid if order.side is Side.BUY else quote.rate_ask
        if rate is None:
            return None
        engine = self.runtime.engine
        assert engine is not None
        conversion = engine.conversion(order.exchange)
        if conversion is None:
            return None
        return conversion.currency, to_decimal(rate)

    def _fee(self, exchange: str) -> float:
        engine = self.runtime.engine
        assert engine is not None
        return engine.market.fees.get(exchange, 0.001)


def _native_fill(order: Order, price: Decimal, size: Decimal, fee_rate: Decimal,
                 currency: str, book_rate: Decimal, now: float) -> Fill:
    """A fill on a venue quoted in ``currency`` at its book level (``price`` in the quote
    currency times ``book_rate``, the rate the book was converted at), paid and charged
    in ``currency``, priced in the quote currency at the order's rate (the book's for an
    order without one)."""
    native_price = (price * book_rate).quantize(_NATIVE_STEP)
    fee = (native_price * size * fee_rate).quantize(_NATIVE_STEP)
    reported = Fill(
        order_id=order.client_order_id,
        trade_id=order.trade_id,
        exchange=order.exchange,
        symbol=order.symbol,
        side=order.side,
        price=native_price,
        quantity=size,
        fee=fee,
        fee_asset=currency,
        timestamp=now,
    )
    return converted_fill(reported, currency, order.rate or book_rate)


_NATIVE_STEP = Decimal("1e-8")


# --- walking the book -------------------------------------------------------------------------

Levels = list[tuple[Decimal, Decimal]]


def book_levels(quote: Quote, side: Side, *, market: bool = False) -> Levels:
    """The levels an order of ``side`` takes from, best first, as decimals: the asks for a
    buy, the bids for a sell. A quote of the best level only gives that level; for a
    ``market`` order its size is unlimited (nothing is known of the book behind it, and a
    hedge or unwind must not be left half done for want of a number)."""
    buying = side is Side.BUY
    if market and (quote.asks if buying else quote.bids) is None:
        best = quote.ask if buying else quote.bid
        return [(to_decimal(best), _UNLIMITED)]
    pairs = quote.ask_levels if buying else quote.bid_levels
    return [(to_decimal(price), to_decimal(size)) for price, size in pairs]


def within_limit(levels: Levels, side: Side, limit: Decimal) -> Levels:
    """The leading ``levels`` an order limited to ``limit`` may take: priced at or below it
    for a buy, at or above it for a sell."""
    buying = side is Side.BUY
    usable = []
    for price, size in levels:
        if (price > limit) if buying else (price < limit):
            break
        usable.append((price, size))
    return usable


def walk(levels: Levels, quantity: Decimal) -> Levels:
    """``(price, quantity)`` taken from each level in turn until ``quantity`` is filled or
    the levels run out; levels of no size are passed over."""
    taken = []
    remaining = quantity
    for price, size in levels:
        if remaining <= 0:
            break
        take = min(size, remaining)
        if take > 0:
            taken.append((price, take))
            remaining -= take
    return taken
