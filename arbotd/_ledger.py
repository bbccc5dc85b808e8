"""Balances per exchange and asset, changed only by fills.

A balance changes only through :meth:`Ledger.apply_fill` (and :meth:`Ledger.set_balance`
when an exchange reports its real balances), so for every venue and asset the change
equals the fills minus the fees, to the last decimal digit. Money promised to trades in
flight is *reserved*: it stays in the balance but is not available to new trades, and is
shown as ``locked``.
"""

from __future__ import annotations

import decimal
import logging
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal

from arbotd._model import Balance, Fill, Side, split_symbol

__all__ = ["USD_ASSETS", "Ledger"]

log = logging.getLogger(__name__)

USD_ASSETS = frozenset({"USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "USD"})

# Products of two exchange decimals need up to ~40 significant digits to stay exact.
_EXACT = decimal.Context(prec=60, traps=[decimal.InvalidOperation])


class Ledger:
    """Balances and reservations. ``available`` is the hot-path read (a float cache)."""

    def __init__(self) -> None:
        self._total: dict[tuple[str, str], Decimal] = {}
        self._reserved: dict[tuple[str, str], Decimal] = {}
        self._available: dict[tuple[str, str], float] = {}
        self.starting: dict[tuple[str, str], Decimal] = {}
        # Told of every paper funding, so that storage can rebuild the accounts.
        self.on_funding: Callable[[str, str, Decimal], None] | None = None

    # --- reading ---------------------------------------------------------------------

    def available(self, exchange: str, asset: str) -> float:
        """Free balance not reserved by a trade in flight (0 when unknown)."""
        return self._available.get((exchange, asset), 0.0)

    def total(self, exchange: str, asset: str) -> Decimal:
        return self._total.get((exchange, asset), Decimal(0))

    def reserved(self, exchange: str, asset: str) -> Decimal:
        return self._reserved.get((exchange, asset), Decimal(0))

    def balances(self) -> Iterator[Balance]:
        for (exchange, asset), total in sorted(self._total.items()):
            locked = self._reserved.get((exchange, asset), Decimal(0))
            yield Balance(exchange=exchange, asset=asset, free=total - locked, locked=locked)

    def exchanges(self) -> list[str]:
        return sorted({exchange for exchange, _ in self._total})

    def value_usd(
        self,
        price_of: Callable[[str], float | None],
        exchange: str | None = None,
        *,
        starting: bool = False,
    ) -> float:
        """The balances' worth in USD (of one exchange, or all), stablecoins at par, other
        assets at ``price_of(asset)`` (a USD price, or ``None`` when unknown: such assets
        are left out, so the figure is for display; use :meth:`full_value_usd` for
        anything that compares values over time). ``starting=True`` values the starting
        balances instead, at the same prices."""
        value, _ = self._valuation(price_of, exchange, starting)
        return value

    def full_value_usd(
        self,
        price_of: Callable[[str], float | None],
        exchange: str | None = None,
        *,
        starting: bool = False,
    ) -> float | None:
        """Like :meth:`value_usd`, but ``None`` when an asset held (a balance other than
        zero) has no price: a valuation that leaves an asset out would look like a loss
        (to drawdown limits, to the equity history) while its venues' market data is
        down."""
        value, complete = self._valuation(price_of, exchange, starting)
        return value if complete else None

    def unpriced_assets(
        self, price_of: Callable[[str], float | None], exchange: str | None = None
    ) -> list[str]:
        """The assets held (other than stablecoins) that ``price_of`` has no price for."""
        return sorted({
            asset for (venue, asset), total in self._total.items()
            if (exchange is None or venue == exchange) and total
            and asset not in USD_ASSETS and price_of(asset) is None
        })

    def _valuation(
        self, price_of: Callable[[str], float | None], exchange: str | None, starting: bool
    ) -> tuple[float, bool]:
        value = 0.0
        complete = True
        for (venue, asset), total in (self.starting if starting else self._total).items():
            if exchange is not None and venue != exchange:
                continue
            if asset in USD_ASSETS:
                value += float(total)
            else:
                price = price_of(asset)
                if price is not None:
                    value += float(total) * price
                elif total:
                    complete = False
        return value, complete

    # --- changing ----------------------------------------------------------------------

    def set_balance(self, exchange: str, asset: str, total: Decimal | float | str) -> None:
        """Set a balance outright: the starting balances of a paper account, or what a real
        exchange reports."""
        key = (exchange, asset)
        amount = Decimal(str(total)) if not isinstance(total, Decimal) else total
        self._total[key] = amount
        self.starting.setdefault(key, amount)
        self._refresh(key)

    def fund(self, exchange: str, asset: str, amount: Decimal) -> None:
        """Give a paper account its starting balance of ``asset`` (recorded, so that a
        restarted daemon continues with the same accounts)."""
        self.set_balance(exchange, asset, amount)
        if self.on_funding is not None:
            self.on_funding(exchange, asset, amount)

    def transfer(self, asset: str, source: str, destination: str, amount: Decimal,
                 network_fee: Decimal = Decimal(0)) -> None:
        """Move a paper balance between venues, as a person's withdrawal and deposit would:
        ``amount`` leaves ``source`` and ``amount - network_fee`` reaches
        ``destination``. Both changes are funding (recorded as such), not trading: the
        starting balances move with them, so profit figures stay those of the trades.
        Raises ``ValueError`` when ``source`` does not hold ``amount`` free."""
        if amount <= 0 or network_fee < 0 or network_fee > amount:
            raise ValueError(f"a transfer moves a positive amount and a fee below it, got "
                             f"{amount} with a fee of {network_fee}")
        free = self.total(source, asset) - self.reserved(source, asset)
        if amount > free:
            raise ValueError(f"{source} holds {free} {asset} free, not {amount}")
        for venue, change in ((source, -amount), (destination, amount - network_fee)):
            key = (venue, asset)
            self._total[key] = _EXACT.add(self._total.get(key, Decimal(0)), change)
            self.starting[key] = _EXACT.add(self.starting.get(key, Decimal(0)), change)
            self._refresh(key)
            if self.on_funding is not None:
                self.on_funding(venue, asset, change)

    def restore(
        self,
        starting: Mapping[tuple[str, str], Decimal],
        balances: Mapping[tuple[str, str], Decimal],
    ) -> None:
        """Put back the accounts a storage backend saved: what each asset started with
        and what it holds now."""
        for key, amount in starting.items():
            self.starting[key] = amount
        for key, amount in balances.items():
            self._total[key] = amount
            self.starting.setdefault(key, Decimal(0))
            self._refresh(key)

    def reserve(self, exchange: str, asset: str, amount: Decimal) -> bool:
        """Set ``amount`` aside for a trade; ``False`` (and nothing reserved) when not
        that much is available."""
        key = (exchange, asset)
        free = self._total.get(key, Decimal(0)) - self._reserved.get(key, Decimal(0))
        if amount > free:
            return False
        self._reserved[key] = self._reserved.get(key, Decimal(0)) + amount
        self._refresh(key)
        return True

    def release(self, exchange: str, asset: str, amount: Decimal) -> None:
        """Give back (part of) a reservation."""
        key = (exchange, asset)
        left = self._reserved.get(key, Decimal(0)) - amount
        if left < 0:
            log.warning("released more %s on %s than was reserved", asset, exchange)
            left = Decimal(0)
        self._reserved[key] = left
        self._refresh(key)

    def apply_fill(self, fill: Fill) -> None:
        """Book a fill: the bought asset comes in, the paid one goes out, the fee is taken
        from its asset."""
        base, quote = split_symbol(fill.symbol)
        notional = _EXACT.multiply(fill.price, fill.quantity)
        if fill.side is Side.BUY:
            self._add(fill.exchange, base, fill.quantity)
            self._add(fill.exchange, quote, -notional)
        else:
            self._add(fill.exchange, base, -fill.quantity)
            self._add(fill.exchange, quote, notional)
        if fill.fee:
            self._add(fill.exchange, fill.fee_asset, -fill.fee)

    def _add(self, exchange: str, asset: str, amount: Decimal) -> None:
        key = (exchange, asset)
        self._total[key] = _EXACT.add(self._total.get(key, Decimal(0)), amount)
        self.starting.setdefault(key, Decimal(0))
        if self._total[key] < 0:
            log.warning("balance of %s on %s is negative: %s", asset, exchange, self._total[key])
        self._refresh(key)

    def _refresh(self, key: tuple[str, str]) -> None:
        self._available[key] = float(
            self._total.get(key, Decimal(0)) - self._reserved.get(key, Decimal(0))
        )
