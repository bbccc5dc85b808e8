"""In-memory exchanges for the live executor's tests: a venue whose quotes the test
pushes, and a trading account that fills immediate-or-cancel and market orders against
the venue's book, with rules and balances the test sets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import trio

import arbotd
from arbotd import (
    FeedStatus,
    Fill,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Quote,
    Side,
    split_symbol,
)
from arbotd.exchange import SymbolRules

D = Decimal


class MemoryVenue:
    """An exchange adapter that only marks itself usable; the test delivers quotes. With
    ``quote_currency`` (``"KRW"``) it is a venue quoted in that currency, whose rate
    market is ``USDT<currency>``."""

    premium_baseline = 0.0

    def __init__(self, name: str, taker_fee: float = 0.001,
                 quote_currency: str | None = None,
                 opening: tuple[tuple[str, str, str], ...] = ()) -> None:
        self.name = name
        self.taker_fee = taker_fee
        # (symbol, bid, ask) delivered when the feed starts, before the daemon is ready.
        self.opening = opening
        if quote_currency is not None:
            self.quote_currency = quote_currency
            self.rate_symbol = f"USDT{quote_currency}"

    # Equal settings, equal adapters: a reload keeps the running feed (and the quotes the
    # test delivered) instead of restarting it.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemoryVenue):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.taker_fee, getattr(self, "quote_currency", None))

    async def stream_quotes(self, symbols: Any, sink: Any, *, task_status: Any) -> None:
        sink.on_feed_state(self.name, True)
        for symbol, bid, ask in self.opening:
            sink.on_quote(quote(self.name, bid, ask, symbol=symbol))
        task_status.started()
        await trio.sleep_forever()

    def feed_status(self) -> FeedStatus:
        return FeedStatus(True)


@attrs.define(eq=False)
class MemoryAccount:
    """A trading account filling against ``book`` (bid, ask, size per symbol, in the
    account's ``currency``: the symbols' quote currency unless set, as on a venue quoted
    in KRW). ``refuse`` refuses every order with that message. ``answered`` keeps the
    outcome of every order, which :meth:`query_order` gives back."""

    name: str
    rules_by_symbol: dict[str, SymbolRules]
    holdings: dict[str, Decimal]
    book: dict[str, tuple[Decimal, Decimal, Decimal]] = attrs.field(factory=dict)
    credentials: bool = True
    fee: Decimal = D("0.001")
    fail_open: str | None = None
    orders: list[Order] = attrs.field(factory=list)
    opened: int = 0
    closed: bool = False
    currency: str | None = None
    refuse: str | None = None
    answered: dict[str, tuple[Order, list[Fill]]] = attrs.field(factory=dict)

    def missing_credentials(self) -> list[str]:
        upper = self.name.upper()
        return [] if self.credentials else [f"{upper}_API_KEY", f"{upper}_API_SECRET"]

    async def open(self) -> None:
        if self.fail_open:
            raise arbotd.TemporaryExchangeError(self.name, self.fail_open)
        self.opened += 1

    async def close(self) -> None:
        self.closed = True

    def rules(self, symbol: str) -> SymbolRules | None:
        return self.rules_by_symbol.get(symbol) if self.opened else None

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {asset: (amount, D(0)) for asset, amount in self.holdings.items()}

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        self.orders.append(order)
        if self.refuse:
            raise PermanentExchangeError(self.name, self.refuse)
        result = self.fill(order)
        self.answered[order.client_order_id] = result
        return result

    def fill(self, order: Order) -> tuple[Order, list[Fill]]:
        bid, ask, size = self.book[order.symbol]
        buying = order.side is Side.BUY
        price = ask if buying else bid
        if order.price > 0 and (price > order.price if buying else price < order.price):
            return attrs.evolve(order, status=OrderStatus.EXPIRED), []
        quantity = min(order.quantity, size)
        base, quote = split_symbol(order.symbol)
        quote = self.currency or quote
        cost = price * quantity
        if buying and self.holdings.get(quote, D(0)) < cost:
            raise PermanentExchangeError(self.name, "insufficient balance")
        sign = 1 if buying else -1
        self.holdings[base] = self.holdings.get(base, D(0)) + sign * quantity
        fee = cost * self.fee
        self.holdings[quote] = self.holdings.get(quote, D(0)) - sign * cost - fee
        fill = Fill(order.client_order_id, order.trade_id, self.name, order.symbol, order.side,
                    price, quantity, fee, quote, 0.0)
        status = OrderStatus.FILLED if quantity == order.quantity else \
            OrderStatus.PARTIALLY_FILLED
        return attrs.evolve(order, status=status, filled_quantity=quantity,
                            exchange_order_id=f"{self.name}-{len(self.orders)}"), [fill]

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        if order.client_order_id in self.answered:
            return self.answered[order.client_order_id]
        raise PermanentExchangeError(self.name, f"order {order.client_order_id} does not exist")

    async def cancel_order(self, order: Order) -> None:
        return None


def quote(venue: str, bid: str, ask: str, size: str = "50", symbol: str = "BTCUSDT",
          now: float | None = None) -> Quote:
    import time

    ts = time.time() if now is None else now
    return Quote(venue, symbol, float(bid), float(ask), float(size), float(size), ts, ts)


class MemoryExchangesPlugin:
    """Provides the venues and accounts a test sets up."""

    def __init__(self, accounts: list[MemoryAccount], venues: list[str] | None = None,
                 currencies: dict[str, str] | None = None,
                 opening: dict[str, tuple[tuple[str, str, str], ...]] | None = None) -> None:
        self.accounts = accounts
        self.venues = venues if venues is not None else [a.name for a in accounts]
        # The venues quoted in another currency, and that currency.
        self.currencies = currencies or {}
        # Quotes each venue's feed delivers as it starts: (symbol, bid, ask).
        self.opening = opening or {}

    @arbotd.hookimpl
    def register_exchanges(self, config: Any, runtime: Any) -> list[MemoryVenue]:
        return [MemoryVenue(name, quote_currency=self.currencies.get(name),
                            opening=self.opening.get(name, ()))
                for name in self.venues]

    @arbotd.hookimpl
    def register_accounts(self, config: Any, runtime: Any) -> list[MemoryAccount]:
        return list(self.accounts)
