"""What a restarted daemon needs from the database: where numbering resumes, the trades a
crash left unfinished, and the paper accounts."""

from __future__ import annotations

import decimal
from collections import defaultdict
from decimal import Decimal

from peewee import fn

from arbotd import FINAL_STATES, Side, StoredState, split_symbol
from arbotd_sql.models import FillRecord, Funding, OrderRecord, SignalRecord, TradeRecord
from arbotd_sql.records import rebuild_trade

__all__ = ["load_state"]

# As the ledger books fills, so the balances come out to the same last digit.
_EXACT = decimal.Context(prec=60)

Accounts = dict[tuple[str, str], Decimal]


def load_state() -> StoredState:
    """Read the saved state (in a connection context of the models' database)."""
    last_signal = max(
        SignalRecord.select(fn.MAX(SignalRecord.id)).scalar() or 0,
        TradeRecord.select(fn.MAX(TradeRecord.signal_id)).scalar() or 0,
    )
    last_trade = TradeRecord.select(fn.MAX(TradeRecord.id)).scalar() or 0
    starting = _funding()
    return StoredState(
        next_signal_id=last_signal + 1,
        next_trade_id=last_trade + 1,
        unfinished_trades=_unfinished_trades(),
        starting=starting,
        balances=_balances(starting),
    )


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
