"""What a restarted daemon needs from the database: where numbering resumes, the trades a
crash left unfinished, the paper accounts, and the risk state (today's closed trades,
the last hour's signals, saved state such as an emergency stop)."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections import defaultdict
from decimal import Decimal
from typing import Any

import orjson
from peewee import fn

from arbotd import FINAL_STATES, Side, Signal, StoredState, split_symbol
from arbotd_sql.models import (
    FillRecord,
    Funding,
    IdSequence,
    OrderRecord,
    SavedState,
    SignalRecord,
    TradeRecord,
)
from arbotd_sql.records import rebuild_trade

__all__ = ["load_state"]

log = logging.getLogger(__name__)

_HOUR = 3600.0
# The hourly window needs at most as many signals as the largest hourly cap allows.
_RECENT_SIGNALS_MAX = 100_000

# As the ledger books fills, so the balances come out to the same last digit.
_EXACT = decimal.Context(prec=60)

Accounts = dict[tuple[str, str], Decimal]


def load_state(now: float) -> StoredState:
    """Read the saved state (in a connection context of the models' database); ``now``
    (seconds since the epoch) tells which UTC day and hour are current."""
    last_signal = max(
        SignalRecord.select(fn.MAX(SignalRecord.id)).scalar() or 0,
        TradeRecord.select(fn.MAX(TradeRecord.signal_id)).scalar() or 0,
    )
    starting = _funding()
    day = dt.datetime.fromtimestamp(now, dt.UTC).date()
    trades_today, realized_today = _closed_on(day)
    return StoredState(
        next_signal_id=last_signal + 1,
        next_trade_id=next_id("trade"),
        unfinished_trades=_unfinished_trades(),
        starting=starting,
        balances=_balances(starting),
        day=day,
        trades_today=trades_today,
        realized_today=realized_today,
        recent_signals=_signals_since(now - _HOUR),
        saved=saved_state(),
    )


def next_id(name: str) -> int:
    """The first id of the kind ``name`` not yet used or reserved."""
    used = 0
    if name == "trade":
        used = TradeRecord.select(fn.MAX(TradeRecord.id)).scalar() or 0
    reserved = (IdSequence.select(IdSequence.next_value)
                .where(IdSequence.name == name).scalar())
    return max(used + 1, reserved or 1)


def saved_state() -> dict[str, Any]:
    """Every key kept with ``save_state``; a value that does not parse is left out, with
    a warning (it cannot be trusted, and the daemon must still start)."""
    state: dict[str, Any] = {}
    for key, value in SavedState.select(SavedState.key, SavedState.value).tuples():
        try:
            state[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("storage: saved state %r is not valid JSON and is ignored", key)
    return state


def _closed_on(day: dt.date) -> tuple[int, Decimal]:
    """How many trades reached a final state on the UTC ``day`` (backtests left out), and
    their realised profit."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
    final = [state.value for state in FINAL_STATES]
    query = (TradeRecord.select(TradeRecord.actual_profit)
             .where(TradeRecord.state.in_(final), TradeRecord.mode != "backtest",
                    TradeRecord.completed_at >= start,
                    TradeRecord.completed_at < start + 24 * _HOUR))
    count, total = 0, Decimal(0)
    for (profit,) in query.tuples().iterator():
        count += 1
        if profit is not None:
            total = _EXACT.add(total, profit)
    return count, total


def _signals_since(cutoff: float) -> tuple[Signal, ...]:
    query = (SignalRecord.select().where(SignalRecord.timestamp >= cutoff)
             .order_by(SignalRecord.timestamp.desc(), SignalRecord.id.desc())
             .limit(_RECENT_SIGNALS_MAX))
    signals = [
        Signal(id=row.id, symbol=row.symbol, buy_exchange=row.buy_exchange,
               sell_exchange=row.sell_exchange, buy_price=row.buy_price,
               sell_price=row.sell_price, buy_size=0.0, sell_size=0.0,
               quantity=row.quantity, profit=row.profit, profit_percent=row.profit_percent,
               spread_percent=row.spread_percent, fees=row.fees, confidence=row.confidence,
               timestamp=row.timestamp, executed=row.executed,
               reject_reason=row.reject_reason,
               buy_limit=row.buy_price if row.buy_limit is None else row.buy_limit,
               sell_limit=row.sell_price if row.sell_limit is None else row.sell_limit,
               threshold=row.threshold, threshold_reason=row.threshold_reason)
        for row in query.iterator()
    ]
    signals.reverse()
    return tuple(signals)


def _unfinished_trades() -> tuple:
    final = [state.value for state in FINAL_STATES]
    rows = list(TradeRecord.select().where(TradeRecord.state.not_in(final))
                .order_by(TradeRecord.id))
    if not rows:
        return ()
    ids = [row.id for row in rows]
    orders = defaultdict(list)
    for order in OrderRecord.select().where(OrderRecord.trade.in_(ids)):
        orders[order.trade_id].append(order)
    fills = defaultdict(list)
    for fill in FillRecord.select().where(FillRecord.trade.in_(ids)):
        fills[fill.trade_id].append(fill)
    return tuple(rebuild_trade(row, orders[row.id], fills[row.id]) for row in rows)


def _funding() -> Accounts:
    """What each paper account was given, per exchange and asset."""
    starting: Accounts = {}
    query = Funding.select(Funding.exchange, Funding.asset, Funding.amount).order_by(Funding.id)
    for exchange, asset, amount in query.tuples().iterator():
        key = (exchange, asset)
        starting[key] = _EXACT.add(starting.get(key, Decimal(0)), amount)
    return starting


def _balances(starting: Accounts) -> Accounts:
    """The funding plus every stored paper fill, booked as :meth:`arbotd.Ledger.apply_fill`
    books it. Fills of live trades are left out: a live account's balances are what its
    exchange reports, never a sum of fills."""
    balances = dict(starting)

    def add(exchange: str, asset: str, amount: Decimal) -> None:
        key = (exchange, asset)
        balances[key] = _EXACT.add(balances.get(key, Decimal(0)), amount)

    query = (
        FillRecord.select(FillRecord.exchange, FillRecord.symbol, FillRecord.side,
                          FillRecord.price, FillRecord.quantity, FillRecord.fee,
                          FillRecord.fee_asset)
        .join(TradeRecord)
        .where(TradeRecord.mode != "live")
        .order_by(FillRecord.trade, FillRecord.position)
    )
    for exchange, symbol, side, price, quantity, fee, fee_asset in query.tuples().iterator():
        base, quote = split_symbol(symbol)
        notional = _EXACT.multiply(price, quantity)
        if side == Side.BUY:
            add(exchange, base, quantity)
            add(exchange, quote, -notional)
        else:
            add(exchange, base, -quantity)
            add(exchange, quote, notional)
        if fee:
            add(exchange, fee_asset, -fee)
    return balances
