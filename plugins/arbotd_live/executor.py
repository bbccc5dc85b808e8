"""Live execution: real orders through the exchanges' trading accounts.

The core's trade runner drives both legs, partial fills, hedging and unwinding the same
way in every mode; this executor only places one order at a time on the right exchange,
after rounding it to that exchange's rules. It also

* admits a signal only when both legs, sized to a quantity both exchanges' lot sizes
  accept, meet the exchanges' minimums (``admit``: the engine's signal is otherwise
  rejected with the reason ``filters``);
* refuses to start without API keys for every exchange traded, naming the missing
  environment variables, or while an exchange has not answered yet;
* keeps the accounts ready as a service: clock offset and rules loaded at start and every
  ``rules_refresh_hours``, balances fetched every ``balance_refresh_seconds`` and after
  every trade, and put in the ledger while live trading is on;
* sends the orders of a venue quoted in another currency (:mod:`arbotd.fx`) in its
  currency: the order's limit times the order's rate, on the venue's tick without
  crossing the limit (the account's rules are the venue's, in its currency), and turns
  the fills it reports in that currency into fills priced in the quote currency at the
  same rate (:func:`arbotd.fx.converted_fill`, as paper fills are), so that the ledger
  moves the venue's own currency and the figures are in the quote currency;
* runs each open account's private order stream (an account's ``order_stream``, an
  :class:`arbotd.exchange.OrderStream`), from which the account learns of its orders'
  fills; an account replaced by a reload has its stream stopped with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs
import trio

from arbotd import (
    ExchangeAccount,
    ExchangeError,
    Fill,
    Order,
    OrderStatus,
    PermanentExchangeError,
    Quote,
    Runtime,
    Signal,
    TemporaryExchangeError,
    TradingError,
    split_symbol,
    to_decimal,
)
from arbotd.exchange import ProblemLog, SymbolRules, common_quantity
from arbotd.fx import Conversion, converted, converted_fill, native_limit
from arbotd_live.config import LiveConfig

__all__ = ["AccountState", "LiveExecutor"]

log = logging.getLogger(__name__)

# A venue whose last quote is older than this gives no reference price for a market order.
MAX_QUOTE_AGE_SECONDS = 10.0


@attrs.define
class AccountState:
    """What the executor knows of one account: whether it is open (rules loaded), when,
    the last error, and the last balances fetched."""

    opened_at: float | None = None
    last_error: str | None = None
    balances: dict[str, tuple[Decimal, Decimal]] | None = None
    lock: trio.Lock = attrs.field(factory=trio.Lock)


class LiveExecutor:
    """The executor of ``live`` mode, and the service that keeps its accounts ready."""

    mode = "live"
    name = "live"

    def __init__(self, settings: LiveConfig, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.accounts: dict[str, ExchangeAccount] = {}
        self.states: dict[str, AccountState] = {}
        self.filter_rejections = 0
        self._refresh_wanted = trio.Event()
        self._retired: list[ExchangeAccount] = []
        self._problems = ProblemLog("live", log)
        # Orders sent so far: a balance read while one was sent may predate its fills.
        self._orders_sent = 0
        # The service's nursery, where the accounts' order streams run, and the cancel
        # scope of each stream by the id of its account.
        self._nursery: trio.Nursery | None = None
        self._streams: dict[int, trio.CancelScope] = {}

    def set_accounts(self, accounts: Iterable[ExchangeAccount]) -> None:
        """Install the accounts of the enabled exchanges (at start and after a reload).
        An account that is the same object as before keeps its state."""
        new = {account.name: account for account in accounts}
        for name, account in new.items():
            if self.accounts.get(name) is not account:
                self.states[name] = AccountState()
        # Accounts replaced or gone are closed by the service (closing awaits).
        kept = {id(account) for account in new.values()}
        self._retired.extend(a for a in self.accounts.values() if id(a) not in kept)
        for name in set(self.states) - set(new):
            del self.states[name]
        self.accounts = new
        self._refresh_wanted.set()

    # --- starting --------------------------------------------------------------------------

    def start(self, venues: Sequence[str] | None = None) -> None:
        """Check that live trading can start on ``venues`` (every enabled venue when
        ``None``): each has an account, its keys are set, and it has answered. Raises
        :class:`arbotd.TradingError` saying what is missing."""
        engine = self.runtime.engine
        assert engine is not None
        venues = list(venues) if venues is not None else sorted(engine.market.fees)
        if not venues:
            raise TradingError("TRADING_DISABLED", "live trading needs an enabled exchange")
        without = [v for v in venues if v not in self.accounts]
        if without:
            raise TradingError(
                "TRADING_DISABLED",
                f"live trading needs a real exchange account for every exchange it trades "
                f"on; {', '.join(without)} {'has' if len(without) == 1 else 'have'} none "
                "(simulated venues trade on paper only: set simulation.enabled = false, "
                "or start with \"exchanges\" naming real exchanges only)",
                {"exchanges_without_account": without},
            )
        missing = {
            v: names for v in venues if (names := self.accounts[v].missing_credentials())
        }
        if missing:
            listed = "; ".join(f"{v} ({', '.join(names)})" for v, names in missing.items())
            raise TradingError(
                "TRADING_DISABLED",
                f"live trading needs API keys for every exchange it trades on; set these "
                f"environment variables: {listed}",
                {"missing_credentials": missing},
            )
        not_ready = {
            v: self.states[v].last_error or "not connected yet"
            for v in venues
            if self.states[v].opened_at is None or self.states[v].balances is None
        }
        if not_ready:
            listed = "; ".join(f"{v}: {why}" for v, why in not_ready.items())
            raise TradingError(
                "EXCHANGE_NOT_AVAILABLE",
                f"cannot trade live until every exchange has answered: {listed}",
                {"not_ready": not_ready},
            )
        for venue in venues:
            balances = self.states[venue].balances
            assert balances is not None
            self._apply_balances(venue, balances)
        log.info("live trading on %s", ", ".join(venues))

    # --- signals ---------------------------------------------------------------------------

    def admit(self, signal: Signal) -> Signal | str:
        """``signal`` sized to a quantity both exchanges accept, or the reason to reject it
        (``"filters"``, with the details logged). A leg on a venue quoted in another
        currency is checked at its price in that currency, at the signal's rate."""
        symbol = signal.symbol
        buy = self._rules(signal.buy_exchange, symbol)
        sell = self._rules(signal.sell_exchange, symbol)
        if buy is None or sell is None:
            where = signal.buy_exchange if buy is None else signal.sell_exchange
            return self._filter_reject(symbol, f"no trading rules for {symbol} on {where}")
        quantity = common_quantity(to_decimal(signal.quantity), buy, sell)
        tolerance = to_decimal(signal.price_tolerance)
        market = self.settings.entry_orders == "market"
        buy_limit = to_decimal(signal.buy_limit) * (1 + tolerance)
        sell_limit = to_decimal(signal.sell_limit) * (1 - tolerance)
        if signal.buy_rate is not None:
            buy_limit = native_limit(buy_limit, to_decimal(signal.buy_rate))
        if signal.sell_rate is not None:
            sell_limit = native_limit(sell_limit, to_decimal(signal.sell_rate))
        legs = (
            (signal.buy_exchange, buy, buy.round_price(buy_limit, "buy")),
            (signal.sell_exchange, sell, sell.round_price(sell_limit, "sell")),
        )
        for exchange, rules, price in legs:
            problem = rules.problem(quantity, price, market=market)
            if problem:
                return self._filter_reject(symbol, f"{exchange}: {problem}")
        if quantity == to_decimal(signal.quantity):
            return signal
        return attrs.evolve(signal, quantity=float(quantity))

    def _filter_reject(self, symbol: str, why: str) -> str:
        self.filter_rejections += 1
        self._problems.warning(f"filters:{symbol}", "signal on %s skipped: %s", symbol, why)
        return "filters"

    def _rules(self, exchange: str, symbol: str) -> SymbolRules | None:
        account = self.accounts.get(exchange)
        return account.rules(symbol) if account is not None else None

    # --- orders ------------------------------------------------------------------------------

    async def place_order(self, order: Order) -> tuple[Order, list[Fill]]:
        account = self.accounts.get(order.exchange)
        if account is None:
            raise PermanentExchangeError(order.exchange, "no trading account for this exchange")
        try:
            await self._ensure_open(account)
        except ExchangeError as err:
            # Nothing was sent: the order is refused, not unknown.
            raise PermanentExchangeError(order.exchange, f"not sent: {err}") from err
        rules = account.rules(order.symbol)
        if rules is None:
            return _refused(order, f"not sent: no trading rules for {order.symbol}"), []
        conversion = self._conversion(order.exchange)
        rate = None
        if conversion is not None:
            rate = self._rate(order)
            if rate is None:
                return _refused(order, f"not sent: no {conversion.currency} rate for "
                                f"{order.exchange} yet"), []
            order = attrs.evolve(order, rate=rate)
        quantity = rules.round_quantity(order.quantity)
        price = Decimal(0)
        if order.purpose == "entry" and self.settings.entry_orders == "market":
            price = Decimal(0)
        elif order.price > 0:
            price = self._venue_price(order, rules)
        estimate = price
        if price == 0:
            reference = self.reference_price(order.exchange, order.symbol, order.side.value)
            estimate = to_decimal(reference) if reference is not None else Decimal(0)
            if rate is not None:
                estimate = native_limit(estimate, rate)
        problem = rules.problem(quantity, estimate, market=price == 0)
        if problem:
            return _refused(order, f"not sent: {problem}"), []
        self._orders_sent += 1
        try:
            placed, fills = await account.place_order(
                attrs.evolve(order, quantity=quantity, price=price))
        finally:
            self._refresh_wanted.set()
        if conversion is not None:
            placed, fills = _from_native(placed, fills, conversion, order)
        return placed, self._value_fees(fills)

    async def query_order(self, order: Order) -> tuple[Order, list[Fill]]:
        account = self.accounts.get(order.exchange)
        if account is None:
            raise TemporaryExchangeError(order.exchange, "no trading account to ask (yet)")
        await self._ensure_open(account)
        conversion = self._conversion(order.exchange)
        if conversion is None:
            placed, fills = await account.query_order(order)
            return placed, self._value_fees(fills)
        # Recorded before it was sent, with its rate: asked about as it was sent (in the
        # venue's currency), its fills converted at that rate.
        rate = self._rate(order)
        if rate is None:
            raise TemporaryExchangeError(
                order.exchange, f"no {conversion.currency} rate to convert its fills at yet")
        order = attrs.evolve(order, rate=rate)
        native = order.native_price
        if native is None:
            rules = account.rules(order.symbol)
            native = Decimal(0) if rules is None or order.price <= 0 else \
                self._venue_price(order, rules)
        placed, fills = await account.query_order(attrs.evolve(order, price=native))
        placed, fills = _from_native(placed, fills, conversion, order)
        return placed, self._value_fees(fills)

    def _conversion(self, exchange: str) -> Conversion | None:
        engine = self.runtime.engine
        assert engine is not None
        return engine.conversion(exchange)

    def _rate(self, order: Order) -> Decimal | None:
        """The rate of an order on a venue quoted in another currency: the one it was
        recorded with, else (an order recorded before rates were kept) the live one."""
        if order.rate is not None:
            return order.rate
        engine = self.runtime.engine
        assert engine is not None
        return engine.order_rate(order.exchange, order.side.value)

    @staticmethod
    def _venue_price(order: Order, rules: SymbolRules) -> Decimal:
        """``order``'s limit as the venue takes it: in its currency when it has a rate,
        on its tick without crossing the limit (a buy rounded down, a sell up)."""
        price = order.price if order.rate is None else native_limit(order.price, order.rate)
        return rules.round_price(price, order.side.value)

    def _value_fees(self, fills: list[Fill]) -> list[Fill]:
        """Record with each fill whose fee is charged in a third asset (BNB on Binance)
        that fee's worth in the symbol's quote currency now, at the mid price of the
        fee asset against it on the fill's exchange or any other (``None`` without one)."""
        valued = []
        for fill in fills:
            base, quote = split_symbol(fill.symbol)
            if fill.fee and fill.fee_asset not in (base, quote) and fill.fee_value is None:
                price = self._mid(fill.exchange, fill.fee_asset + quote)
                if price is not None:
                    fill = attrs.evolve(fill, fee_value=fill.fee * to_decimal(price))
            valued.append(fill)
        return valued

    def _mid(self, exchange: str, symbol: str) -> float | None:
        engine = self.runtime.engine
        assert engine is not None
        quote = engine.fresh_quote(exchange, symbol, MAX_QUOTE_AGE_SECONDS)
        if quote is None:
            for venue in sorted(engine.book.get(symbol, {})):
                quote = engine.fresh_quote(venue, symbol, MAX_QUOTE_AGE_SECONDS)
                if quote is not None:
                    break
        return quote.mid if quote is not None else None

    def reference_price(self, exchange: str, symbol: str, side: str) -> float | None:
        quote = self._quote(exchange, symbol)
        if quote is None:
            return None
        return quote.ask if side == "buy" else quote.bid

    def _quote(self, exchange: str, symbol: str) -> Quote | None:
        engine = self.runtime.engine
        assert engine is not None
        return engine.fresh_quote(exchange, symbol, MAX_QUOTE_AGE_SECONDS)

    # --- the service ---------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Open the accounts whose keys are set (waiting up to ``connect_timeout_seconds``,
        so that live trading can start as soon as the daemon is up), then keep their rules
        and balances fresh until the daemon stops."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._stop_on_shutdown, nursery.cancel_scope)
                with trio.move_on_after(self.settings.connect_timeout_seconds):
                    await self._refresh()
                task_status.started()
                while True:
                    with trio.move_on_after(self.settings.balance_refresh_seconds):
                        await self._refresh_wanted.wait()
                    self._refresh_wanted = trio.Event()
                    await self._refresh()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self._close_retired()
                for account in list(self.accounts.values()):
                    try:
                        await account.close()
                    except Exception:
                        log.exception("%s: closing the account failed", account.name)

    async def _stop_on_shutdown(self, scope: trio.CancelScope) -> None:
        await self.runtime.shutdown_requested.wait()
        scope.cancel()

    async def _close_retired(self) -> None:
        while self._retired:
            account = self._retired.pop()
            stream = self._streams.pop(id(account), None)
            if stream is not None:
                stream.cancel()
            try:
                await account.close()
            except Exception:
                log.exception("%s: closing the replaced account failed", account.name)

    async def _refresh(self) -> None:
        await self._close_retired()
        async with trio.open_nursery() as nursery:
            for account in list(self.accounts.values()):
                if not account.missing_credentials():
                    nursery.start_soon(self._refresh_account, account)

    async def _refresh_account(self, account: ExchangeAccount) -> None:
        state = self.states.get(account.name)
        if state is None:
            return
        try:
            await self._ensure_open(account)
            self._start_order_stream(account)
            sent_before = self._orders_sent
            balances = await account.balances()
        except ExchangeError as err:
            state.last_error = str(err)
            self._problems.warning(f"refresh:{account.name}", "%s", err)
            return
        state.balances = balances
        state.last_error = None
        control = self.runtime.control
        # Balances go into the ledger only while live trading is on, and never while a
        # trade is in flight or when an order was sent while they were read (its fills
        # are booked as they come; a balance read before them would undo them, and the
        # refresh every placement asks for brings the balance after them).
        if control is not None and control.trading and control.mode == "live" \
                and not control.active and self._orders_sent == sent_before:
            self._apply_balances(account.name, balances)

    def _start_order_stream(self, account: ExchangeAccount) -> None:
        """Run the account's private order stream in the service's nursery, once (after
        the account opened: its login is signed with the clock offset measured then)."""
        stream = getattr(account, "order_stream", None)
        if stream is None or self._nursery is None or id(account) in self._streams:
            return
        scope = trio.CancelScope()
        self._streams[id(account)] = scope
        self._nursery.start_soon(self._run_order_stream, account, stream, scope)

    async def _run_order_stream(self, account: ExchangeAccount, stream: Any,
                                scope: trio.CancelScope) -> None:
        try:
            with scope:
                await stream.run()
        except Exception:
            # A bug in a stream must not stop the service: orders fall back to REST.
            log.exception("%s: the order stream failed; fills are learned through REST",
                          account.name)
        finally:
            if self._streams.get(id(account)) is scope:
                del self._streams[id(account)]

    async def _ensure_open(self, account: ExchangeAccount) -> None:
        """Open ``account`` if it is not open, or its rules are older than
        ``rules_refresh_hours``. Raises :class:`arbotd.ExchangeError`."""
        state = self.states.setdefault(account.name, AccountState())
        max_age = self.settings.rules_refresh_hours * 3600
        async with state.lock:
            now = trio.current_time()
            if state.opened_at is not None and now - state.opened_at < max_age:
                return
            try:
                await account.open()
            except ExchangeError as err:
                state.last_error = str(err)
                raise
            if state.opened_at is None:
                log.info("%s: trading account ready", account.name)
            state.opened_at = now

    def _apply_balances(self, exchange: str, balances: dict[str, tuple[Decimal, Decimal]]
                        ) -> None:
        """Make the ledger show what the exchange holds (free amounts: what is locked in
        other orders cannot be traded)."""
        ledger = self.runtime.ledger
        known = {b.asset for b in ledger.balances() if b.exchange == exchange}
        for asset, (free, _locked) in balances.items():
            ledger.set_balance(exchange, asset, free)
        for asset in known - set(balances):
            ledger.set_balance(exchange, asset, Decimal(0))

    def account_status(self) -> dict[str, dict[str, Any]]:
        """Per account: whether keys are set, whether it is ready, and the last error
        (for ``/health``); for an account with a private order stream, its state too
        (``order_stream``: ``connected``, ``connecting`` or ``down: why``)."""
        statuses: dict[str, dict[str, Any]] = {}
        for name, account in self.accounts.items():
            status: dict[str, Any] = {
                "credentials": not account.missing_credentials(),
                "ready": self.states[name].opened_at is not None,
                "last_error": self.states[name].last_error,
            }
            stream = getattr(account, "order_stream", None)
            if stream is not None:
                status["order_stream"] = stream.describe()
            statuses[name] = status
        return statuses


def _from_native(placed: Order, fills: list[Fill], conversion: Conversion, order: Order
                 ) -> tuple[Order, list[Fill]]:
    """What an account of a venue quoted in another currency answered (its order as sent,
    priced in its currency, and its fills in that currency), in the quote currency at
    ``order``'s rate: the order keeps the limit it was sent with as ``native_price``."""
    rate = order.rate
    assert rate is not None
    native = placed.price if placed.native_price is None else placed.native_price
    placed = attrs.evolve(placed, price=converted(native, rate) if native else Decimal(0),
                          native_price=native, rate=rate)
    return placed, [converted_fill(fill, conversion.currency, rate) for fill in fills]


def _refused(order: Order, reason: str) -> Order:
    return attrs.evolve(order, status=OrderStatus.REJECTED, reason=reason)
