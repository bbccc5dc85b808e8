"""The control facade: start, stop, emergency stop and status.

Everything that steers trading goes through :class:`Control` (the API handlers call only
this). It also sits between the engine and the executors: the engine hands it every
signal, and while trading is on it runs the risk checks, reserves the money the trade
needs, and starts the trade as its own task.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs
import trio

from arbotd._bus import Bus
from arbotd._engine import Engine
from arbotd._errors import ArbotError, TradingError
from arbotd._execution import TradeRunner
from arbotd._ids import IdBlocks
from arbotd._interfaces import DurableStorage, Executor, RiskCheck, Storage, StoredState
from arbotd._ledger import Ledger
from arbotd._model import (
    FINAL_STATES,
    OrderStatus,
    Signal,
    Trade,
    TradeState,
    split_symbol,
    to_decimal,
)
from arbotd._timefmt import iso_utc
from arbotd.figures import money_text, size, trade_figures

__all__ = ["Control", "TradingStats"]

log = logging.getLogger(__name__)

MODES = ("simulation", "live", "backtest")

EMERGENCY_KEY = "control.emergency_stop"
"""The saved-state key of an emergency stop in force: ``{"since": epoch seconds}``."""


def _utc_day(timestamp: float) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date()


@attrs.define
class TradingStats:
    """Running totals of closed trades, for ``/status`` and the risk checks. The daily
    figures restart at 00:00 UTC."""

    day: dt.date | None = None
    trades_today: int = 0
    realized_today: Decimal = Decimal(0)
    realized_total: Decimal = Decimal(0)
    trades_closed: int = 0
    trades_completed: int = 0
    positions_unwound: int = 0
    # Since the daemon started, for GET /metrics: closed trades by final state, and the
    # fees they paid (quote currency, as in arbotd.figures).
    closed_by_state: dict[str, int] = attrs.field(factory=dict)
    fees_total: Decimal = Decimal(0)

    def roll(self, now: float) -> None:
        today = _utc_day(now)
        if today != self.day:
            self.day = today
            self.trades_today = 0
            self.realized_today = Decimal(0)

    def add(self, trade: Trade, now: float) -> None:
        self.roll(now)
        profit = trade.realized_profit
        self.trades_today += 1
        self.trades_closed += 1
        self.realized_today += profit
        self.realized_total += profit
        state = str(trade.state)
        self.closed_by_state[state] = self.closed_by_state.get(state, 0) + 1
        self.fees_total += trade_figures(trade).fees
        if trade.state is TradeState.COMPLETED:
            self.trades_completed += 1
        elif trade.state is TradeState.UNWOUND:
            self.positions_unwound += 1


@attrs.frozen
class _Reservation:
    exchange: str
    asset: str
    amount: Decimal


class Control:
    """Steers trading. ``run`` is a core service that owns the nursery trades run in."""

    name = "control"

    def __init__(
        self,
        *,
        engine: Engine,
        ledger: Ledger,
        bus: Bus,
        clock: Callable[[], float],
        risk_checks: Sequence[RiskCheck] = (),
        executors: Iterable[Executor] = (),
        storage: Storage | None = None,
        durable: DurableStorage | None = None,
        symbols: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.bus = bus
        self.clock = clock
        self.risk_checks = list(risk_checks)
        self.executors = {executor.mode: executor for executor in executors}
        self.storage = storage
        # With ``durable`` (storage's durable writes), trades are recorded on disk before
        # their orders leave and numbered from durably reserved blocks; without, they are
        # recorded through the writer and numbered in memory.
        self.durable = durable
        self.trade_ids = IdBlocks(
            "trade", reserve=self.durable.reserve_ids if self.durable is not None else None
        )
        self.symbols: list[str] = list(symbols)
        self.mode: str | None = None
        self.trading = False
        self.emergency = False
        self.started_at: float | None = None
        self.selected_symbols: frozenset[str] | None = None
        self.selected_exchanges: frozenset[str] | None = None
        self.active: dict[int, Trade] = {}
        self.recent_trades: dict[int, Trade] = {}
        self.stats = TradingStats()
        self._completed_at_start = 0
        self._signals: dict[int, Signal] = {}  # by trade id, until the trade is recorded
        self._runner: TradeRunner | None = None
        self._nursery: trio.Nursery | None = None
        self.unreconciled: list[Trade] = []
        self._idle = trio.Event()
        self._idle.set()
        engine.on_signal = self.consider

    # --- the service --------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._refill_ids()
            task_status.started()
            await trio.sleep_forever()

    def restore(self, state: StoredState) -> None:
        """Take back what a previous run left: trade numbering, today's closed trades and
        their profit (the daily loss limit), and an emergency stop in force."""
        if self.durable is None:
            self.trade_ids = IdBlocks("trade", first=state.next_trade_id)
        if state.day is not None:
            self.stats.day = state.day
            self.stats.trades_today = state.trades_today
            self.stats.realized_today = state.realized_today
        stopped = state.saved.get(EMERGENCY_KEY)
        if stopped is not None:
            self.emergency = True
            since = stopped.get("since") if isinstance(stopped, dict) else None
            log.warning(
                "an emergency stop is in force%s: trading stays disabled until it is "
                "started again (POST /api/v1/trading/start)",
                f" since {iso_utc(since)}" if isinstance(since, int | float) else "",
            )

    async def _refill_ids(self) -> None:
        try:
            await self.trade_ids.refill()
        except ArbotError as err:
            log.error("cannot reserve trade ids: %s; no trade starts until storage "
                      "answers", err)

    async def wait_idle(self) -> None:
        """Return once no trade is in flight."""
        await self._idle.wait()

    async def drain(self) -> None:
        """Stop trading and wait until the trades in flight reach a final state."""
        self.trading = False
        self.engine.market.trading = False
        await self.wait_idle()

    # --- steering -------------------------------------------------------------------------

    def start(
        self,
        mode: str,
        symbols: Sequence[str] | None = None,
        exchanges: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Start trading in ``mode`` on all configured symbols and enabled exchanges, or on
        the given subsets. Raises :class:`TradingError` with an API error code."""
        if mode not in MODES:
            raise TradingError(
                "VALIDATION_ERROR",
                f"mode must be one of {', '.join(MODES)}, got {mode!r}",
                {"field": "mode", "allowed": list(MODES)},
            )
        executor = self.executors.get(mode)
        if executor is None:
            raise TradingError(
                "TRADING_DISABLED",
                f"no executor for {mode} mode is installed or enabled",
                {"mode": mode, "available_modes": sorted(self.executors)},
            )
        venues = sorted(self.engine.market.fees)
        if symbols:
            unknown = [s for s in symbols if s not in self.symbols]
            if unknown:
                raise TradingError(
                    "INVALID_SYMBOL",
                    f"Symbol {unknown[0]!r} is not supported",
                    {"valid_symbols": list(self.symbols), "provided_symbol": unknown[0]},
                )
        if exchanges:
            missing = [e for e in exchanges if e not in venues]
            if missing:
                raise TradingError(
                    "EXCHANGE_NOT_AVAILABLE",
                    f"Exchange {missing[0]!r} is not enabled",
                    {"available_exchanges": venues, "provided_exchange": missing[0]},
                )
        if self._nursery is None:
            raise TradingError("TRADING_DISABLED", "the daemon is not running")
        if self.unreconciled:
            ids = ", ".join(str(t.id) for t in self.unreconciled)
            raise TradingError(
                "TRADING_DISABLED",
                f"trades {ids} were left unfinished (by a crash, or an exchange that never "
                "told the outcome of an order) and could not be reconciled; check them on "
                "the exchanges, then restart the daemon",
                {"trade_ids": [t.id for t in self.unreconciled]},
            )
        prepare = getattr(executor, "start", None)
        if callable(prepare):
            prepare(list(exchanges) if exchanges else venues)
        self.mode = mode
        self.selected_symbols = frozenset(symbols) if symbols else None
        self.selected_exchanges = frozenset(exchanges) if exchanges else None
        self._runner = TradeRunner(
            executor=executor,
            ledger=self.ledger,
            report=self.report,
            clock=self.clock,
            stop_loss_fraction=self._stop_loss_fraction,
            commit=self._commit,
            order_rate=self.engine.order_rate,
        )
        self.trading = True
        self._completed_at_start = self.stats.trades_completed
        if self.emergency:
            self.emergency = False
            self._nursery.start_soon(self._forget_emergency)
        self.engine.market.trading = True
        self.started_at = self.clock()
        symbol_count = len(self.selected_symbols or self.symbols)
        exchange_count = len(self.selected_exchanges or venues)
        log.info("trading started: %s mode, %d symbols on %d exchanges",
                 mode, symbol_count, exchange_count)
        self.bus.publish("status", {"event": "trading_started", "mode": mode})
        return {
            "mode": mode,
            "start_time": iso_utc(self.started_at),
            "symbols_count": symbol_count,
            "exchanges_count": exchange_count,
        }

    def stop(self) -> dict[str, Any]:
        """Stop opening trades; trades in flight run to their end."""
        was_trading = self.trading
        self.trading = False
        self.engine.market.trading = False
        if was_trading:
            log.info("trading stopped; %d trades still finishing", len(self.active))
            self.bus.publish("status", {"event": "trading_stopped"})
        return {
            "stop_time": iso_utc(self.clock()),
            # Since trading was last started: what this run of trading did.
            "trades_completed": self.stats.trades_completed - self._completed_at_start,
            "pending_trades": len(self.active),
        }

    async def emergency_stop(self) -> dict[str, Any]:
        """Disable trading until it is started again (a restart keeps it disabled), and
        flatten every trade in flight: a trade whose orders have not left is cancelled, no
        hedging, whatever filled is unwound at market. Returns once no trade is open,
        with what the stop itself did: the trades it cut short and the positions it
        closed."""
        self.trading = False
        self.emergency = True
        self.engine.market.trading = False
        stopped_at = self.clock()
        in_flight = set(self.active)
        log.warning("EMERGENCY STOP: trading disabled, flattening %d trades", len(in_flight))
        if self.durable is not None:
            try:
                await self.durable.save_state(EMERGENCY_KEY, {"since": stopped_at})
            except ArbotError as err:
                log.error("the emergency stop could not be recorded (%s): a restart would "
                          "not know of it", err)
        runner = self._runner
        if runner is not None:
            runner.flatten_only = True
            runner.stop_cancelled.clear()
            runner.stop_flattened.clear()
        try:
            await self._idle.wait()
        finally:
            if runner is not None:
                runner.flatten_only = False
        cancelled: set[int] = set()
        closed = 0
        if runner is not None:
            cancelled = (runner.stop_cancelled | runner.stop_flattened) & in_flight
            for trade_id in runner.stop_flattened & in_flight:
                trade = self.recent_trades.get(trade_id)
                if trade is None:
                    continue
                unwinds = {o.client_order_id for o in trade.orders if o.purpose == "unwind"}
                if any(fill.order_id in unwinds for fill in trade.fills):
                    closed += 1
        log.warning("emergency stop: %d trades cancelled, %d positions closed",
                    len(cancelled), closed)
        self.bus.publish("status", {"event": "emergency_stop"})
        return {
            "trades_cancelled": len(cancelled),
            "positions_closed": closed,
            "timestamp": iso_utc(self.clock()),
        }

    async def _forget_emergency(self) -> None:
        if self.durable is None:
            return
        try:
            await self.durable.save_state(EMERGENCY_KEY, None)
        except ArbotError as err:
            log.error("could not record that the emergency stop was lifted (%s): after a "
                      "restart trading stays disabled until started again", err)

    async def cancel_trade(self, trade_id: int, *, timeout: float = 10.0) -> tuple[bool, str]:
        """Cancel a trade in flight: one whose orders have not left is not sent; one whose
        orders wait to fill is cancelled where the executor can (paper orders during their
        fill delay; an exchange's immediate-or-cancel orders end by themselves). Whatever
        filled is unwound. Returns whether the trade ended ``cancelled``, and what
        happened, once the trade is over (or ``timeout`` seconds passed)."""
        trade = self.active.get(trade_id)
        if trade is None or self._runner is None:
            known = self.recent_trades.get(trade_id)
            if known is not None and known.is_final:
                return False, f"Trade already finished ({known.state})"
            return False, "Trade not found"
        runner = self._runner
        runner.cancel_requested.add(trade_id)
        cancel = getattr(runner.executor, "cancel_order", None)
        if callable(cancel):
            for order in trade.orders:
                if order.status is OrderStatus.NEW:
                    cancel(order.client_order_id)
        with trio.move_on_after(timeout):
            while trade_id in self.active:
                await trio.sleep(0.01)
        final = self.recent_trades.get(trade_id, trade)
        if trade_id in self.active:
            return False, "Trade is still running: its orders are out and have not ended yet"
        if final.state is TradeState.CANCELLED:
            return True, final.reason or "cancelled"
        return False, (f"Trade could not be cancelled: its orders had gone out and it "
                       f"ended {final.state}" + (f" ({final.reason})" if final.reason else ""))

    def balance_shortfall(self, signal: Signal) -> dict[str, Any] | None:
        """What the balances lack to execute ``signal`` (the first asset short:
        ``exchange``, ``asset``, ``required``, ``available``), or ``None``."""
        for item in self._wanted(signal):
            available = self.ledger.total(item.exchange, item.asset) - self.ledger.reserved(
                item.exchange, item.asset)
            if item.amount > available:
                return {"exchange": item.exchange, "asset": item.asset,
                        "required": float(item.amount), "available": float(available)}
        return None

    async def recover(self, trades: Sequence[Trade], *, price_timeout: float = 30.0) -> None:
        """Reconcile trades a crash left unfinished, before trading may start: ask the
        exchanges for orders whose outcome was lost, and flatten any open position at
        current prices. A trade that cannot be reconciled (no executor for its mode)
        keeps trading disabled."""
        for trade in trades:
            executor = self.executors.get(trade.mode)
            if executor is None:
                log.error("trade %d (%s mode) left unfinished: no executor for %s mode to "
                          "reconcile it; trading stays disabled", trade.id, trade.mode, trade.mode)
                self.unreconciled.append(trade)
                continue
            log.warning("trade %d %s was %s when the daemon stopped: reconciling",
                        trade.id, trade.symbol, trade.state)
            with trio.move_on_after(price_timeout):
                while not all(self.engine.market.usable.get(venue)
                              for venue in (trade.buy_exchange, trade.sell_exchange)):
                    await trio.sleep(0.1)
            runner = TradeRunner(executor=executor, ledger=self.ledger, report=self.report,
                                 clock=self.clock, commit=self._commit,
                                 order_rate=self.engine.order_rate)
            self.recent_trades[trade.id] = trade
            try:
                final = await runner.recover(trade)
            except Exception:
                # The daemon still starts (the operator needs the API and the log), but
                # nothing trades around a trade whose state is unknown.
                log.exception("trade %d could not be reconciled; trading stays disabled",
                              trade.id)
                self.unreconciled.append(trade)
                continue
            if not final.is_final:
                log.error("trade %d: %s; trading stays disabled", final.id, final.reason)
                self.unreconciled.append(final)
                continue
            log.warning("trade %d reconciled: %s%s", final.id, final.state,
                        f" ({final.reason})" if final.reason else "")

    # --- signals to trades -------------------------------------------------------------------

    def consider(self, signal: Signal) -> Signal:
        """Called by the engine for every signal: start a trade for it if trading is on
        and every check passes. Returns the signal marked executed or with the reason."""
        if not self.trading or self._runner is None or self._nursery is None:
            return signal
        if self.selected_symbols is not None and signal.symbol not in self.selected_symbols:
            return self._reject(signal, "symbol_not_selected")
        if self.selected_exchanges is not None and (
            signal.buy_exchange not in self.selected_exchanges
            or signal.sell_exchange not in self.selected_exchanges
        ):
            return self._reject(signal, "exchange_not_selected")
        admit = getattr(self._runner.executor, "admit", None)
        if admit is not None:
            admitted = admit(signal)
            if isinstance(admitted, str):
                return self._reject(signal, admitted)
            signal = admitted
        for check in self.risk_checks:
            reason = check.check(signal)
            if reason:
                return self._reject(signal, reason)
        trade_id = self.trade_ids.take()
        if self.trade_ids.wants_refill:
            self._nursery.start_soon(self._refill_ids)
        if trade_id is None:
            return self._reject(signal, "storage")
        reservations = self._reserve(signal)
        if reservations is None:
            return self._reject(signal, "balance")
        trade = Trade(
            id=trade_id,
            signal_id=signal.id,
            mode=self.mode or "simulation",
            symbol=signal.symbol,
            buy_exchange=signal.buy_exchange,
            sell_exchange=signal.sell_exchange,
            quantity=to_decimal(signal.quantity),
            planned_buy_price=to_decimal(signal.buy_price),
            planned_sell_price=to_decimal(signal.sell_price),
            planned_profit=to_decimal(round(signal.profit, 8)),
            started_at=self.clock(),
            buy_limit=to_decimal(signal.buy_limit),
            sell_limit=to_decimal(signal.sell_limit),
            buy_native_price=_decimal_or_none(signal.buy_native_price),
            sell_native_price=_decimal_or_none(signal.sell_native_price),
            buy_rate=_decimal_or_none(signal.buy_rate),
            sell_rate=_decimal_or_none(signal.sell_rate),
        )
        self.active[trade.id] = trade
        self._idle = trio.Event()
        # Told, not stored: the first write of a trade is the runner's durable one, so a
        # queued "planned" record can never be written over it.
        self.report(trade, store=False)
        executed = attrs.evolve(signal, executed=True)
        # Recorded with the trade's first durable write: a crash right after must not
        # leave a trade whose signal was never written.
        self._signals[trade.id] = executed
        self._nursery.start_soon(self._run_trade, self._runner, trade, signal, reservations)
        return executed

    def _reject(self, signal: Signal, reason: str) -> Signal:
        self.engine.market.reject(reason)
        return attrs.evolve(signal, reject_reason=reason)

    def _wanted(self, signal: Signal) -> list[_Reservation]:
        """The money a trade of ``signal`` sets aside: the quote currency the buy may
        spend (at its limit, the worst ask the signal takes, widened by the tolerance,
        with its fee) and the base coin the sell delivers."""
        base, quote = split_symbol(signal.symbol)
        qty = to_decimal(signal.quantity)
        fee = to_decimal(self.engine.market.fees.get(signal.buy_exchange, 0.0))
        tol = to_decimal(signal.price_tolerance)
        spend = qty * to_decimal(signal.buy_limit) * (1 + tol) * (1 + fee)
        conversion = self.engine.conversion(signal.buy_exchange)
        if conversion is not None and signal.buy_rate is not None:
            # The venue spends its own currency, at the rate the signal was priced at.
            quote, spend = conversion.currency, spend * to_decimal(signal.buy_rate)
        return [
            _Reservation(signal.buy_exchange, quote, spend),
            _Reservation(signal.sell_exchange, base, qty),
        ]

    def _reserve(self, signal: Signal) -> list[_Reservation] | None:
        done: list[_Reservation] = []
        for item in self._wanted(signal):
            if not self.ledger.reserve(item.exchange, item.asset, item.amount):
                for taken in done:
                    self.ledger.release(taken.exchange, taken.asset, taken.amount)
                return None
            done.append(item)
        return done

    async def _run_trade(
        self,
        runner: TradeRunner,
        trade: Trade,
        signal: Signal,
        reservations: list[_Reservation],
    ) -> None:
        try:
            final = await runner.run(trade, signal.price_tolerance)
            if not final.is_final:
                self._hold_unreconciled(final)
        except Exception as err:
            log.exception("trade %d: execution failed", trade.id)
            current = self.active.get(trade.id, trade)
            if not current.is_final:
                self.report(current.advance(TradeState.FAILED, completed_at=self.clock(),
                                            reason=f"internal error: {err}"))
        finally:
            for item in reservations:
                self.ledger.release(item.exchange, item.asset, item.amount)
            self.active.pop(trade.id, None)
            self._signals.pop(trade.id, None)
            if not self.active:
                self._idle.set()

    def _hold_unreconciled(self, trade: Trade) -> None:
        """A trade came back with an order whose outcome the exchange would not tell: stop
        trading until it is reconciled (the next start asks the exchange again)."""
        self.unreconciled.append(trade)
        self.trading = False
        self.engine.market.trading = False
        log.error("trade %d: %s; trading stopped: check the order on the exchange, then "
                  "restart the daemon to reconcile it", trade.id, trade.reason)
        self.bus.publish("status", {"event": "trading_stopped", "reason": trade.reason})

    async def _commit(self, trade: Trade) -> None:
        """Write ``trade`` (and, the first time, the signal it came from) durably before
        an order of it leaves (when storage can)."""
        if self.durable is not None:
            await self.durable.commit_trade(trade, self._signals.pop(trade.id, None))

    def report(self, trade: Trade, *, store: bool = True) -> None:
        """Every state change of a trade: kept, published, stored, and logged when final.
        A report that changes nothing (the same trade again) is not passed on."""
        if self.recent_trades.get(trade.id) == trade:
            return
        if trade.id in self.active:
            self.active[trade.id] = trade
        self.recent_trades[trade.id] = trade
        if len(self.recent_trades) > 1000:
            del self.recent_trades[next(iter(self.recent_trades))]
        if trade.state in FINAL_STATES:
            self.stats.add(trade, self.clock())
            log.info("%s", describe_trade(trade))
        self.bus.publish("trade", trade)
        if store and self.storage is not None:
            self.storage.record_trade(trade)

    def _stop_loss_fraction(self) -> float | None:
        values = [
            fraction
            for check in self.risk_checks
            if (fraction := getattr(check, "stop_loss_fraction", None)) is not None
        ]
        return min(values) if values else None

    # --- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        self.stats.roll(self.clock())
        return {
            "mode": self.mode,
            "trading": self.trading,
            "emergency_stopped": self.emergency,
            "active_trades": len(self.active),
            "trades_today": self.stats.trades_today,
            "realized_today": float(self.stats.realized_today),
            "signals_last_hour": self.engine.signals_last_hour(),
            "rejections": self.engine.rejection_counts(),
        }


def describe_trade(trade: Trade) -> str:
    """The log line of a finished trade, with its figures (:mod:`arbotd.figures`)."""
    figures = trade_figures(trade)
    currency = figures.currency
    planned = ("" if figures.filled_quantity == figures.planned_quantity
               else f" of {size(figures.planned_quantity)} planned")
    return (
        f"trade {trade.id} {trade.symbol} {trade.state}: buy {trade.buy_exchange} sell "
        f"{trade.sell_exchange} qty {size(figures.filled_quantity)}{planned}, net "
        f"{_signed(money_text(figures.net, currency))} {currency}, fees "
        f"{money_text(figures.fees, currency)}, slippage "
        f"{_signed(money_text(figures.slippage, currency))}"
        + (f" ({trade.reason})" if trade.reason else "")
    )


def _signed(text: str) -> str:
    return text if text.startswith("-") else f"+{text}"


def _decimal_or_none(value: float | None) -> Decimal | None:
    return None if value is None else to_decimal(value)
