"""Paper execution: orders fill against the engine's book, on virtual balances.

An order waits ``fill_delay_seconds``, then:

- is rejected with probability ``reject_rate``;
- an immediate-or-cancel limit order (a trade's entry legs) fills at the venue's best
  price at that moment if it is at or better than the limit, up to the displayed size,
  and only ``partial_fill_ratio`` of it with probability ``partial_fill_rate``;
  otherwise it expires unfilled (the price moved away);
- a market order (a hedge or an unwind) fills completely at the best price.

The taker fee is charged in the quote currency. Every random choice comes from a
generator seeded with ``seed`` and the order's client id, so it does not depend on the
order in which concurrent legs happen to run.
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
from arbotd_sim.config import PaperConfig

__all__ = ["PaperExecutor"]

log = logging.getLogger(__name__)

# A venue whose last quote is older than this has no price to fill at.
MAX_QUOTE_AGE_SECONDS = 10.0


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
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.seed = seed
        self.reference_prices = dict(reference_prices)
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
            for asset, amount in sorted(assets.items()):
                ledger.fund(venue, asset, to_decimal(round(amount, 8)))
            self.funded.add(venue)
            log.info("paper account on %s: %s", venue,
                     ", ".join(f"{a} {to_decimal(round(v, 8))}" for a, v in sorted(assets.items())))

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
        price = to_decimal(quote.ask if buying else quote.bid)
        quantity = order.quantity
        if order.purpose == "entry":
            if (price > order.price) if buying else (price < order.price):
                return attrs.evolve(order, status=OrderStatus.EXPIRED,
                                    reason=f"price moved to {price}, beyond the limit"), []
            shown = to_decimal(quote.ask_size if buying else quote.bid_size)
            quantity = min(quantity, shown)
            if rng.random() < settings.partial_fill_rate:
                ratio = to_decimal(settings.partial_fill_ratio)
                quantity = (quantity * ratio).quantize(Decimal("1e-8"))
        if quantity <= 0:
            return attrs.evolve(order, status=OrderStatus.EXPIRED, reason="no size"), []
        _, quote_asset = split_symbol(order.symbol)
        fee_rate = to_decimal(self._fee(order.exchange))
        fill = Fill(
            order_id=order.client_order_id,
            trade_id=order.trade_id,
            exchange=order.exchange,
            symbol=order.symbol,
            side=order.side,
            price=price,
            quantity=quantity,
            fee=price * quantity * fee_rate,
            fee_asset=quote_asset,
            timestamp=self.runtime.clock(),
        )
        status = OrderStatus.FILLED if quantity == order.quantity else OrderStatus.PARTIALLY_FILLED
        return attrs.evolve(order, status=status, filled_quantity=quantity,
                            exchange_order_id=f"paper-{order.client_order_id}"), [fill]

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

    def _fee(self, exchange: str) -> float:
        engine = self.runtime.engine
        assert engine is not None
        return engine.market.fees.get(exchange, 0.001)
