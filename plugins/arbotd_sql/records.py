"""arbotd's values as rows and back, and writing a batch of queued records.

Records are queued as the frozen values the engine handed over (a :class:`Trade`, a
:class:`Signal` ...), so queueing costs the event loop nothing; they become rows here,
in the writer thread.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Sequence
from typing import Any

import peewee
from peewee import EXCLUDED, Case

from arbotd import Balance, Fill, Order, OrderStatus, Quote, Side, Signal, Trade, TradeState
from arbotd.figures import trade_figures
from arbotd_sql.models import (
    AuditEntry,
    BalanceSnapshot,
    Bar,
    EquitySnapshot,
    FillRecord,
    Funding,
    OrderRecord,
    RawQuote,
    SavedState,
    SignalRecord,
    TradeRecord,
)

__all__ = [
    "AUDIT",
    "BAR",
    "EQUITY",
    "FUNDING",
    "QUOTE",
    "SIGNAL",
    "STATE",
    "TRADE",
    "Record",
    "rebuild_trade",
    "trade_rows",
    "write_records",
    "write_state",
    "write_trades",
]

SIGNAL, TRADE, FUNDING, EQUITY, BAR, QUOTE = "signal", "trade", "funding", "equity", "bar", "quote"
STATE = "state"
AUDIT = "audit"
Record = tuple[str, Any]
"""``(kind, value)``: ``(SIGNAL, Signal)``, ``(TRADE, Trade)``, ``(FUNDING, (exchange,
asset, amount, timestamp))``, ``(EQUITY, (timestamp, equity_usd, mode, balances))``,
``(BAR, (symbol, exchange, minute, open, high, low, close))``, ``(QUOTE, Quote)``,
``(STATE, (key, json_text or None, timestamp))``, ``(AUDIT, row)`` (an ``audit_log`` row,
:func:`arbotd_sql.audit.audit_row`)."""

BarValues = tuple[str, str, int, float, float, float, float]

# Products and sums of exchange decimals, exact (as the ledger computes them).
_EXACT = decimal.Context(prec=60)
# SQLite before 3.32 allows 999 bound parameters per statement.
_MAX_PARAMETERS = 999


# --- values to rows -------------------------------------------------------------------------


def signal_row(signal: Signal) -> dict[str, Any]:
    return {
        "id": signal.id,
        "timestamp": signal.timestamp,
        "symbol": signal.symbol,
        "buy_exchange": signal.buy_exchange,
        "sell_exchange": signal.sell_exchange,
        "buy_price": signal.buy_price,
        "sell_price": signal.sell_price,
        "quantity": signal.quantity,
        "profit": signal.profit,
        "profit_percent": signal.profit_percent,
        "spread_percent": signal.spread_percent,
        "fees": signal.fees,
        "confidence": signal.confidence,
        "executed": signal.executed,
        # A plugin's reason could be longer than the column; PostgreSQL would refuse it.
        "reject_reason": signal.reject_reason[:64] if signal.reject_reason else None,
        "buy_limit": signal.buy_limit,
        "sell_limit": signal.sell_limit,
        "threshold": signal.threshold,
        "threshold_reason": (signal.threshold_reason[:160] if signal.threshold_reason
                             else None),
        "buy_native_price": signal.buy_native_price,
        "sell_native_price": signal.sell_native_price,
        "buy_rate": signal.buy_rate,
        "sell_rate": signal.sell_rate,
    }


def trade_rows(trade: Trade) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The trade's row with its figures (:func:`arbotd.figures.trade_figures`), its
    orders' rows and its fills' rows.

    A fill's key is its order and ``seq``, its index among the fills of that order:
    fills are only ever appended to a trade, so writing the trade again gives each fill
    the same key, and a fill already stored is never stored twice.
    """
    figures = trade_figures(trade)
    trade_row = {
        "id": trade.id,
        "signal_id": trade.signal_id,
        "mode": trade.mode,
        "symbol": trade.symbol,
        "buy_exchange": trade.buy_exchange,
        "sell_exchange": trade.sell_exchange,
        "quantity": trade.quantity,
        "filled_quantity": figures.filled_quantity,
        "planned_buy_price": trade.planned_buy_price,
        "planned_sell_price": trade.planned_sell_price,
        "planned_profit": trade.planned_profit,
        "buy_limit": trade.buy_limit,
        "sell_limit": trade.sell_limit,
        "buy_native_price": trade.buy_native_price,
        "sell_native_price": trade.sell_native_price,
        "buy_rate": trade.buy_rate,
        "sell_rate": trade.sell_rate,
        "actual_buy_price": figures.actual_buy_price,
        "actual_sell_price": figures.actual_sell_price,
        "actual_profit": figures.realized_profit,
        "fees_paid": figures.fees,
        "slippage": figures.slippage if trade.fills else None,
        "state": trade.state.value,
        "reason": trade.reason,
        "started_at": trade.started_at,
        "completed_at": trade.completed_at,
    }
    orders = [_order_row(order, position) for position, order in enumerate(trade.orders)]
    seqs: dict[str, int] = {}
    fills = []
    for position, fill in enumerate(trade.fills):
        seq = seqs.get(fill.order_id, 0)
        seqs[fill.order_id] = seq + 1
        fills.append(_fill_row(fill, seq, position))
    return trade_row, orders, fills


def _order_row(order: Order, position: int) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "trade": order.trade_id,
        "exchange": order.exchange,
        "symbol": order.symbol,
        "side": order.side.value,
        "price": order.price,
        "quantity": order.quantity,
        "status": order.status.value,
        "filled_quantity": order.filled_quantity,
        "exchange_order_id": order.exchange_order_id[:128] if order.exchange_order_id else None,
        "purpose": order.purpose,
        "reason": order.reason,
        "position": position,
        "native_price": order.native_price,
        "rate": order.rate,
    }


def _fill_row(fill: Fill, seq: int, position: int) -> dict[str, Any]:
    return {
        "order_id": fill.order_id,
        "seq": seq,
        "trade": fill.trade_id,
        "exchange": fill.exchange,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "price": fill.price,
        "quantity": fill.quantity,
        "fee": fill.fee,
        "fee_asset": fill.fee_asset,
        "fee_value": fill.fee_value,
        "native_price": fill.native_price,
        "native_asset": fill.native_asset,
        "timestamp": fill.timestamp,
        "position": position,
    }


# --- rows to values ---------------------------------------------------------------------------


def rebuild_trade(
    row: TradeRecord, orders: Sequence[OrderRecord], fills: Sequence[FillRecord]
) -> Trade:
    """The :class:`Trade` a trade row and its orders' and fills' rows were made from. A
    row without limit prices (written before version 5) has its planned prices as
    limits."""
    orders = sorted(orders, key=lambda o: (o.position, o.client_order_id))
    fills = sorted(fills, key=lambda f: (f.position, f.order_id, f.seq))
    limits: dict[str, decimal.Decimal] = {}
    if row.buy_limit is not None:
        limits["buy_limit"] = row.buy_limit
    if row.sell_limit is not None:
        limits["sell_limit"] = row.sell_limit
    return Trade(
        id=row.id,
        signal_id=row.signal_id,
        mode=row.mode,
        symbol=row.symbol,
        buy_exchange=row.buy_exchange,
        sell_exchange=row.sell_exchange,
        quantity=row.quantity,
        planned_buy_price=row.planned_buy_price,
        planned_sell_price=row.planned_sell_price,
        planned_profit=row.planned_profit,
        started_at=row.started_at,
        state=TradeState(row.state),
        orders=tuple(
            Order(
                client_order_id=o.client_order_id,
                trade_id=row.id,
                exchange=o.exchange,
                symbol=o.symbol,
                side=Side(o.side),
                price=o.price,
                quantity=o.quantity,
                status=OrderStatus(o.status),
                filled_quantity=o.filled_quantity,
                exchange_order_id=o.exchange_order_id,
                purpose=o.purpose,
                reason=o.reason,
                native_price=o.native_price,
                rate=o.rate,
            )
            for o in orders
        ),
        fills=tuple(
            Fill(
                order_id=f.order_id,
                trade_id=row.id,
                exchange=f.exchange,
                symbol=f.symbol,
                side=Side(f.side),
                price=f.price,
                quantity=f.quantity,
                fee=f.fee,
                fee_asset=f.fee_asset,
                timestamp=f.timestamp,
                fee_value=f.fee_value,
                native_price=f.native_price,
                native_asset=f.native_asset,
            )
            for f in fills
        ),
        completed_at=row.completed_at,
        reason=row.reason,
        buy_native_price=row.buy_native_price,
        sell_native_price=row.sell_native_price,
        buy_rate=row.buy_rate,
        sell_rate=row.sell_rate,
        **limits,
    )


# --- writing ------------------------------------------------------------------------------------


def write_records(records: Sequence[Record]) -> None:
    """Write ``records`` (in the caller's transaction). A trade or signal queued several
    times is written once, as it was last queued."""
    signals: dict[int, Signal] = {}
    trades: dict[int, Trade] = {}
    funding: list[dict[str, Any]] = []
    equity: list[tuple[float, float, str, Sequence[Balance]]] = []
    bars: dict[tuple[str, str, int], list[Any]] = {}
    quotes: list[dict[str, Any]] = []
    states: dict[str, tuple[str | None, float]] = {}
    audit: list[dict[str, Any]] = []
    for kind, value in records:
        if kind == SIGNAL:
            signals[value.id] = value
        elif kind == TRADE:
            trades[value.id] = value
        elif kind == FUNDING:
            exchange, asset, amount, timestamp = value
            funding.append(
                {"exchange": exchange, "asset": asset, "amount": amount, "timestamp": timestamp}
            )
        elif kind == EQUITY:
            equity.append(value)
        elif kind == BAR:
            _merge_bar(bars, value)
        elif kind == QUOTE:
            quotes.append(_quote_row(value))
        elif kind == STATE:
            key, text, timestamp = value
            states[key] = (text, timestamp)
        elif kind == AUDIT:
            audit.append(value)
        else:
            raise ValueError(f"unknown record kind {kind!r}")
    if signals:
        _upsert(SignalRecord, [signal_row(s) for s in signals.values()], [SignalRecord.id])
    if trades:
        write_trades(list(trades.values()))
    for key, (text, timestamp) in states.items():
        write_state(key, text, timestamp)
    _insert(Funding, funding)
    for timestamp, equity_usd, mode, balances in equity:
        EquitySnapshot.create(timestamp=timestamp, equity_usd=equity_usd, mode=mode)
        _insert(BalanceSnapshot, [_balance_row(timestamp, b) for b in balances])
    if bars:
        _write_bars(list(bars.values()))
    _insert(RawQuote, quotes)
    _insert(AuditEntry, audit)


def write_state(key: str, text: str | None, timestamp: float) -> None:
    """Keep ``text`` (JSON) under ``key``, or remove the key when ``text`` is ``None``."""
    if text is None:
        SavedState.delete().where(SavedState.key == key).execute()
        return
    SavedState.insert(key=key, value=text, updated_at=timestamp).on_conflict(
        conflict_target=[SavedState.key],
        preserve=[SavedState.value, SavedState.updated_at],
    ).execute()


def write_trades(trades: list[Trade]) -> None:
    """Every trade of a batch in one statement per table (trades before the orders and
    fills that refer to them); a fill already stored is left alone."""
    rows: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    for trade in trades:
        row, trade_orders, trade_fills = trade_rows(trade)
        rows.append(row)
        orders.extend(trade_orders)
        fills.extend(trade_fills)
    _upsert(TradeRecord, rows, [TradeRecord.id])
    _upsert(OrderRecord, orders, [OrderRecord.client_order_id])
    for chunk in _chunks(FillRecord, fills):
        FillRecord.insert_many(chunk).on_conflict_ignore().execute()


def _merge_bar(bars: dict[tuple[str, str, int], list[Any]], value: BarValues) -> None:
    symbol, exchange, minute, open_, high, low, close = value
    known = bars.get((symbol, exchange, minute))
    if known is None:
        bars[(symbol, exchange, minute)] = [symbol, exchange, minute, open_, high, low, close, 0.0]
    else:
        known[4] = max(known[4], high)
        known[5] = min(known[5], low)
        known[6] = close


def _write_bars(bars: list[list[Any]]) -> None:
    """Insert bars; a bar already stored for the same minute (the daemon restarted within
    it) is merged: its open stays, high and low widen, the close is the new one."""
    fields = [Bar.symbol, Bar.exchange, Bar.minute, Bar.open, Bar.high, Bar.low, Bar.close,
              Bar.volume]
    for chunk in peewee.chunked(bars, _MAX_PARAMETERS // len(fields)):
        Bar.insert_many(chunk, fields=fields).on_conflict(
            conflict_target=[Bar.symbol, Bar.exchange, Bar.minute],
            update={
                Bar.high: Case(None, [(EXCLUDED.high > Bar.high, EXCLUDED.high)], Bar.high),
                Bar.low: Case(None, [(EXCLUDED.low < Bar.low, EXCLUDED.low)], Bar.low),
                Bar.close: EXCLUDED.close,
            },
        ).execute()


def _quote_row(quote: Quote) -> dict[str, Any]:
    return {
        "received_ts": quote.received_ts,
        "exchange_ts": quote.exchange_ts,
        "exchange": quote.exchange,
        "symbol": quote.symbol,
        "bid": quote.bid,
        "ask": quote.ask,
        "bid_size": quote.bid_size,
        "ask_size": quote.ask_size,
    }


def _balance_row(timestamp: float, balance: Balance) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "exchange": balance.exchange,
        "asset": balance.asset,
        "free": balance.free,
        "locked": balance.locked,
    }


def _upsert(model: type[peewee.Model], rows: list[dict[str, Any]],
            key: list[peewee.Field]) -> None:
    if not rows:
        return
    # By name: a peewee field's == builds an expression, so `field in list` is always true.
    names = set(rows[0]) - {f.name for f in key}
    preserve = [f for f in model._meta.sorted_fields if f.name in names]
    for chunk in _chunks(model, rows):
        model.insert_many(chunk).on_conflict(conflict_target=key, preserve=preserve).execute()


def _insert(model: type[peewee.Model], rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(model, rows):
        model.insert_many(chunk).execute()


def _chunks(model: type[peewee.Model], rows: list[dict[str, Any]]) -> Iterable[list[Any]]:
    if not rows:
        return []
    return peewee.chunked(rows, max(1, _MAX_PARAMETERS // len(model._meta.sorted_fields)))
