"""A scripted executor for tests: each order's outcome is chosen by its side and
purpose."""

from __future__ import annotations

from decimal import Decimal

import attrs
import trio

from arbotd import (
    Fill,
    Ledger,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Side,
    TemporaryExchangeError,
)

D = Decimal
FEE = D("0.001")

# What an order does, by (side, purpose): a fraction of it filled, "reject" or "unknown"
# (the exchange did not answer in time, but filled it).
Script = dict[tuple[str, str], object]


class ScriptedExecutor:
    def __init__(self, script: Script, prices: dict[str, tuple[float, float]],
                 mode: str = "simulation") -> None:
        self.script = script
        self.prices = prices  # exchange -> (bid, ask)
        self.mode = mode
        self.placed: list[Order] = []
        self.unknown: dict[str, tuple[Order, list[Fill]]] = {}
        self.hold = trio.Event()  # entry orders wait for it once `holding` is set
        self.holding = False

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        self.placed.append(order)
        if self.holding and order.purpose == "entry":
            await self.hold.wait()
        outcome = self.script.get((order.side.value, order.purpose), 1)
        if outcome == "reject":
            raise PermanentExchangeError(order.exchange, "insufficient liquidity")
        if outcome == "unknown":
            self.unknown[order.client_order_id] = self._fill(order, 1)
            raise TemporaryExchangeError(order.exchange, "timeout")
        return self._fill(order, outcome)

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        if order.client_order_id not in self.unknown:  # it never reached the exchange
            raise PermanentExchangeError(order.exchange, "order does not exist")
        return self.unknown.pop(order.client_order_id)

    def reference_price(self, exchange: str, symbol: str, side: str) -> float | None:
        bid, ask = self.prices[exchange]
        return ask if side == "buy" else bid

    def _fill(self, order: Order, fraction: object) -> tuple[Order, list[Fill]]:
        qty = order.quantity * D(str(fraction))
        if qty == 0:
            return attrs.evolve(order, status=OrderStatus.EXPIRED), []
        bid, ask = self.prices[order.exchange]
        price = D(str(ask if order.side is Side.BUY else bid))
        fill = Fill(order.client_order_id, order.trade_id, order.exchange, order.symbol,
                    order.side, price, qty, price * qty * FEE, "USDT", 0.0)
        status = OrderStatus.FILLED if qty == order.quantity else OrderStatus.PARTIALLY_FILLED
        return attrs.evolve(order, status=status, filled_quantity=qty), [fill]




def funded_ledger() -> Ledger:
    """Venues ``a`` and ``b`` with 10,000 USDT and 10 BTC each."""
    ledger = Ledger()
    for venue in ("a", "b"):
        ledger.set_balance(venue, "USDT", D("10000"))
        ledger.set_balance(venue, "BTC", D("10"))
    return ledger
