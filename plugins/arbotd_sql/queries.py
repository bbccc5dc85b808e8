"""The queries the API serves: one plain synchronous function each.

They run in the storage's reader thread with :data:`arbotd_sql.models.database`
connected (``await storage.read(queries.trades, symbol="BTCUSDT")``), take arguments the
API layer has already validated, and return JSON-ready dicts in the shapes of the API
reference. Times in arguments are epoch seconds (floats), dates :class:`datetime.date`
(UTC days).

Conventions of every answer:

- fields named ``*_at`` are ISO-8601 UTC strings to the second (``"2024-01-01T12:00:00Z"``,
  sub-seconds cut off) or ``None``; fields named ``timestamp`` are epoch seconds;
- money and sizes are floats (stored exactly as decimals), rounded at the edge by
  :mod:`arbotd.figures` (money to the quote currency's precision, sizes to 8 places);
  ``win_rate`` and ``*_percent`` are percent;
- newest first wherever rows are listed.

The SQL is portable between SQLite and PostgreSQL: plain comparisons, ``MIN``/``MAX``/
``SUM``/``COUNT`` and integer arithmetic on integer columns; decimal text columns are
summed in Python (SQL would add them as floats, or refuse on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import peewee

from arbotd import iso_utc, split_symbol
from arbotd.figures import size
from arbotd_sql.metrics import (
    TradeResult,
    daily_breakdown,
    daily_closes,
    money,
    risk_metrics,
    trade_metrics,
    utc_date,
    win_rate,
)
from arbotd_sql.models import (
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    SignalRecord,
    TradeRecord,
    database,
)

__all__ = [
    "COUNTED_STATES",
    "PERIODS",
    "SYMBOL_METRICS",
    "performance",
    "signals",
    "symbol_performance",
    "trade",
    "trades",
]

PERIODS = ("day", "week", "month", "year")
"""Performance periods: calendar periods in UTC (today, the ISO week, the month, the
year), see :func:`period_dates`."""

COUNTED_STATES = ("completed", "unwound", "failed")
"""Final states whose trades count in performance figures (``cancelled`` trades never sent
an order)."""

SYMBOL_METRICS = ("profit", "win_rate", "volume")
"""The metrics :func:`symbol_performance` knows."""

_LEG_ORDER = {"entry": 0, "hedge": 1, "unwind": 2}
_ZERO = Decimal(0)


# --- GET /trades -----------------------------------------------------------------------


def trades(
    *,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    symbol: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of trade history, for ``GET /trades``.

    Returns ``{"trades": [trade, ...], "total_count": int, "pagination": {"limit": int,
    "offset": int, "has_more": bool}}`` where each trade is ``{"id", "symbol",
    "buy_exchange", "sell_exchange", "quantity": float (filled), "planned_quantity":
    float, "planned_profit": float, "actual_profit": float | None, "fees_paid": float,
    "status": str (the trade's state), "started_at": str, "completed_at": str | None}``.
    ``actual_profit`` (net, fees included) is ``None`` until the trade is final;
    ``fees_paid`` are the fees so far. Figures as :mod:`arbotd.figures` defines them.

    ``start_date``/``end_date`` select trades by the UTC day they *started*, both days
    included; ``status`` is a trade state (``completed``, ``failed``, ...). Rows come
    newest first (``started_at``, then ``id``, descending); ``total_count`` counts every
    matching trade, ``has_more`` says whether rows follow this page.
    """
    conditions = []
    if start_date is not None:
        conditions.append(TradeRecord.started_at >= _day_start(start_date))
    if end_date is not None:
        conditions.append(TradeRecord.started_at < _day_start(end_date) + 86400)
    if symbol is not None:
        conditions.append(TradeRecord.symbol == symbol)
    if status is not None:
        conditions.append(TradeRecord.state == status)
    query = TradeRecord.select()
    if conditions:
        query = query.where(*conditions)
    total = query.count()
    page = list(
        query.order_by(TradeRecord.started_at.desc(), TradeRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return {
        "trades": [_trade_summary(row) for row in page],
        "total_count": total,
        "pagination": {
            "limit": limit,
            "offset": offset,
            "has_more": offset + len(page) < total,
        },
    }


def _trade_summary(row: TradeRecord) -> dict[str, Any]:
    currency = _quote_currency(row.symbol)
    return {
        "id": row.id,
        "symbol": row.symbol,
        "buy_exchange": row.buy_exchange,
        "sell_exchange": row.sell_exchange,
        "quantity": size(_filled(row)),
        "planned_quantity": size(row.quantity),
        "planned_profit": money(row.planned_profit, currency),
        "actual_profit": money(row.actual_profit, currency),
        "fees_paid": money(row.fees_paid, currency),
        "status": row.state,
        "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
    }


def _filled(row: TradeRecord) -> Decimal:
    """The quantity arbitraged (0 until fills come); the planned one for rows written
    before the filled quantity was recorded."""
    return row.quantity if row.filled_quantity is None else row.filled_quantity


def _quote_currency(symbol: str) -> str:
    try:
        return split_symbol(symbol)[1]
    except ValueError:
        return ""


# --- GET /trades/{id} ------------------------------------------------------------------


def trade(trade_id: int) -> dict[str, Any] | None:
    """One trade in detail, for ``GET /trades/{trade_id}``; ``None`` if there is no such
    trade.

    Returns the reference's fields ``{"id", "signal_id", "symbol", "buy_exchange",
    "sell_exchange", "buy_order_id", "sell_order_id", "planned_buy_price",
    "planned_sell_price", "actual_buy_price", "actual_sell_price", "quantity",
    "planned_profit", "actual_profit", "fees_paid", "slippage", "status", "started_at",
    "completed_at", "execution_time_ms"}`` plus ``"mode"`` (simulation, live, backtest),
    ``"reason"`` (why the trade ended as it did, or ``None``), ``"buy_limit"`` and
    ``"sell_limit"`` and ``"legs"``.

    ``planned_buy_price``/``planned_sell_price`` are the signal's volume-weighted prices
    over the book levels it took, ``buy_limit``/``sell_limit`` the worst of those levels:
    the entry orders' limit prices before the tolerance (the planned prices for a trade
    recorded before limits were kept).

    ``buy_order_id``/``sell_order_id`` are the entry orders' exchange order ids, or their
    client order ids where the exchange gave none (``None`` before orders exist).
    Figures as :mod:`arbotd.figures` defines them: ``quantity`` is the filled quantity
    and ``planned_quantity`` the planned one (extra); ``actual_*`` prices are
    volume-weighted over the entry and hedge fills (``None`` before any);
    ``actual_profit`` is the net result once the trade is final (``None`` before);
    ``fees_paid`` the fees so far; ``slippage`` the price slippage of both legs, positive
    when worse than planned (``None`` before any fill); ``execution_time_ms`` is
    ``round((completed_at - started_at) * 1000)``, ``None`` while the trade runs.

    ``legs`` lists every order of the trade in the order the trade sent them (entry buy,
    entry sell, then hedges and unwinds): ``{"client_order_id", "exchange_order_id",
    "exchange", "side", "purpose", "price" (0.0 for a market order), "quantity",
    "status", "filled_quantity", "reason", "native_price" and "rate" (on a venue quoted in
    another currency: the limit sent in its currency, 0.0 at market, and the rate the
    order was priced and its fills converted at; else ``None``), "fills": [{"price",
    "quantity", "fee",
    "fee_asset", "fee_value" (a fee in a third asset, valued in the quote currency at fill
    time, else ``None``), "native_price" and "native_asset" (on a venue quoted in another
    currency: what it charged, in that currency; else ``None``), "timestamp" (epoch
    seconds), "time" (ISO 8601 UTC)}]}``, fills in the order they happened.
    ``buy_native_price``/``sell_native_price`` and ``buy_rate``/``sell_rate`` are the
    signal's, for a leg on a venue quoted in another currency (:mod:`arbotd.fx`), else
    ``None``.
    """
    row = TradeRecord.get_or_none(TradeRecord.id == trade_id)
    if row is None:
        return None
    # ``position`` is the order's place in the trade; rows written with equal positions
    # fall back to entry, hedge, unwind and the leg suffix (``b`` < ``s``, ``u0`` < ``u1``).
    orders = sorted(
        OrderRecord.select().where(OrderRecord.trade == trade_id),
        key=lambda o: (
            o.position,
            _LEG_ORDER.get(o.purpose, len(_LEG_ORDER)),
            len(o.client_order_id),
            o.client_order_id,
        ),
    )
    currency = _quote_currency(row.symbol)
    fills: dict[str, list[dict[str, Any]]] = {}
    for fill in (
        FillRecord.select()
        .where(FillRecord.trade == trade_id)
        .order_by(FillRecord.position, FillRecord.seq)
    ):
        fills.setdefault(fill.order_id, []).append(
            {
                "price": float(fill.price),
                "quantity": size(fill.quantity),
                "fee": size(fill.fee) if fill.fee_asset != currency
                else money(fill.fee, currency),
                "fee_asset": fill.fee_asset,
                "fee_value": money(fill.fee_value, currency),
                "native_price": _price(fill.native_price),
                "native_asset": fill.native_asset,
                "timestamp": fill.timestamp,
                "time": _iso_ms(fill.timestamp),
            }
        )
    execution_ms = None
    if row.completed_at is not None:
        execution_ms = round((row.completed_at - row.started_at) * 1000)
    return {
        "id": row.id,
        "signal_id": row.signal_id,
        "symbol": row.symbol,
        "buy_exchange": row.buy_exchange,
        "sell_exchange": row.sell_exchange,
        "buy_order_id": _entry_order_id(orders, "buy"),
        "sell_order_id": _entry_order_id(orders, "sell"),
        "planned_buy_price": float(row.planned_buy_price),
        "planned_sell_price": float(row.planned_sell_price),
        "buy_limit": float(row.planned_buy_price if row.buy_limit is None else row.buy_limit),
        "sell_limit": float(row.planned_sell_price if row.sell_limit is None
                            else row.sell_limit),
        "actual_buy_price": _price(row.actual_buy_price),
        "actual_sell_price": _price(row.actual_sell_price),
        "buy_native_price": _price(row.buy_native_price),
        "sell_native_price": _price(row.sell_native_price),
        "buy_rate": _price(row.buy_rate),
        "sell_rate": _price(row.sell_rate),
        "quantity": size(_filled(row)),
        "planned_quantity": size(row.quantity),
        "planned_profit": money(row.planned_profit, currency),
        "actual_profit": money(row.actual_profit, currency),
        "fees_paid": money(row.fees_paid, currency),
        "slippage": money(row.slippage, currency),
        "status": row.state,
        "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
        "execution_time_ms": execution_ms,
        "mode": row.mode,
        "reason": row.reason,
        "legs": [
            {
                "client_order_id": order.client_order_id,
                "exchange_order_id": order.exchange_order_id,
                "exchange": order.exchange,
                "side": order.side,
                "purpose": order.purpose,
                "price": float(order.price),
                "quantity": size(order.quantity),
                "status": order.status,
                "filled_quantity": size(order.filled_quantity),
                "reason": order.reason,
                "native_price": _price(order.native_price),
                "rate": _price(order.rate),
                "fills": fills.get(order.client_order_id, []),
            }
            for order in orders
        ],
    }


def _entry_order_id(orders: Iterable[OrderRecord], side: str) -> str | None:
    for order in orders:
        if order.purpose == "entry" and order.side == side:
            return order.exchange_order_id or order.client_order_id
    return None


# --- GET /signals ----------------------------------------------------------------------


def signals(
    *,
    start_time: float | None = None,
    end_time: float | None = None,
    symbol: str | None = None,
    executed: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Signals found, for ``GET /signals``.

    Returns ``{"signals": [{"id", "symbol", "buy_exchange", "sell_exchange", "buy_price",
    "sell_price", "profit", "profit_percent" (percent), "confidence", "executed": bool,
    "reject_reason": str | None (why a signal was not executed, as the risk checks named
    it), "timestamp": float (epoch seconds), "quantity", "buy_limit", "sell_limit",
    "threshold", "threshold_reason", "buy_native_price", "sell_native_price", "buy_rate",
    "sell_rate"}, ...],
    "total_count": int}``, newest first (``timestamp``, then ``id``, descending).
    ``start_time <= timestamp <= end_time``, both ends included; ``total_count`` counts
    every matching signal, not just this page.

    ``buy_price``/``sell_price`` are the volume-weighted prices of ``quantity`` over the
    book levels it takes, ``buy_limit``/``sell_limit`` the worst of those levels (the
    prices themselves for signals recorded before limits were kept). On a venue quoted
    in another currency the prices are converted; ``*_native_price`` are the same prices
    in the venue's currency and ``*_rate`` the rates used (``None`` otherwise).
    """
    conditions = []
    if start_time is not None:
        conditions.append(SignalRecord.timestamp >= start_time)
    if end_time is not None:
        conditions.append(SignalRecord.timestamp <= end_time)
    if symbol is not None:
        conditions.append(SignalRecord.symbol == symbol)
    if executed is not None:
        conditions.append(SignalRecord.executed == executed)
    query = SignalRecord.select()
    if conditions:
        query = query.where(*conditions)
    total = query.count()
    page = (
        query.order_by(SignalRecord.timestamp.desc(), SignalRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return {
        "signals": [
            {
                "id": row.id,
                "symbol": row.symbol,
                "buy_exchange": row.buy_exchange,
                "sell_exchange": row.sell_exchange,
                "buy_price": row.buy_price,
                "sell_price": row.sell_price,
                "profit": money(row.profit, _quote_currency(row.symbol)),
                "profit_percent": round(row.profit_percent, 6),
                "confidence": row.confidence,
                "executed": bool(row.executed),
                "reject_reason": row.reject_reason,
                "timestamp": row.timestamp,
                "quantity": size(row.quantity),
                "buy_limit": row.buy_price if row.buy_limit is None else row.buy_limit,
                "sell_limit": row.sell_price if row.sell_limit is None else row.sell_limit,
                "threshold": row.threshold,
                "threshold_reason": row.threshold_reason,
                "buy_native_price": row.buy_native_price,
                "sell_native_price": row.sell_native_price,
                "buy_rate": row.buy_rate,
                "sell_rate": row.sell_rate,
            }
            for row in page
        ],
        "total_count": total,
    }


# --- GET /performance ------------------------------------------------------------------


def performance(
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    period: str | None = None,
    today: dt.date | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """Trading performance over a range of UTC days, for ``GET /performance``.

    Returns ``{"period": str, "start_date": "YYYY-MM-DD", "end_date": "YYYY-MM-DD",
    "metrics": {"total_trades", "successful_trades", "win_rate", "total_profit",
    "total_fees", "net_profit", "avg_profit_per_trade", "max_profit", "max_loss",
    "avg_execution_time_seconds", "sharpe_ratio", "sortino_ratio", "max_drawdown_percent",
    "profit_factor"}, "notes": {figure: why it is None}, "daily_breakdown": [{"date",
    "trades", "profit", "win_rate"}]}``. The figures are defined in :mod:`arbotd.figures`
    (``total_profit`` is gross, before fees; ``net_profit`` after them) and
    :mod:`arbotd_sql.metrics`; a figure that does not exist (a Sharpe ratio over too few
    days, a profit factor without a losing trade) is ``None`` and ``notes`` says why.

    The range: with ``start`` or ``end`` it is custom (``"period": "custom"``, and
    ``period`` is ignored; a missing ``end`` is ``today``, a missing ``start`` the day of
    the first counted trade, or ``end`` when there is none); otherwise ``period``
    (default ``"month"``) is the calendar period containing ``today`` (default: today in
    UTC): ``day`` today, ``week`` the ISO week (Monday to Sunday), ``month`` and ``year``
    the calendar month and year, whose first and last days the answer gives. Both ends
    are included. ``ValueError`` for an unknown period or ``start`` after ``end``.

    A trade counts on the UTC day it reached its final state, if that state is
    completed, unwound or failed *and* it has at least one fill: an attempt whose orders
    all went unfilled moved no money and would make the win rate measure how often
    prices moved away before the orders arrived (such trades stay visible in ``/trades``
    as ``failed``). A missing ``actual_profit`` or ``fees_paid`` counts as 0.

    The Sharpe and Sortino ratios come from the last equity snapshot of each UTC day in
    the range, preceded by the last snapshot before the range (so the first day has a
    return too); ``max_drawdown_percent`` from every snapshot in the range. ``mode``
    (simulation, live, backtest) restricts trades and equity to one mode; without it
    every mode counts, which only makes sense for a database that has seen one mode.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    if start is not None or end is not None:
        label = "custom"
        end = end or today
        if start is None:
            first_close = _counted_trades(mode).select(
                peewee.fn.MIN(TradeRecord.completed_at)
            ).scalar()
            start = end if first_close is None else min(utc_date(first_close), end)
    else:
        label = period or "month"
        start, end = period_dates(label, today)
    if start > end:
        raise ValueError(f"start date {start} is after end date {end}")
    low, high = _day_start(start), _day_start(end) + 86400

    results = _trade_results(
        _counted_trades(mode).where(
            TradeRecord.completed_at >= low, TradeRecord.completed_at < high
        )
    )
    equity_query = EquitySnapshot.select(EquitySnapshot.timestamp, EquitySnapshot.equity_usd)
    if mode is not None:
        equity_query = equity_query.where(EquitySnapshot.mode == mode)
    snapshots = _raw_rows(
        equity_query.where(
            EquitySnapshot.timestamp >= low, EquitySnapshot.timestamp < high
        ).order_by(EquitySnapshot.timestamp)
    )
    before = (
        equity_query.where(EquitySnapshot.timestamp < low)
        .order_by(EquitySnapshot.timestamp.desc())
        .limit(1)
        .tuples()
        .first()
    )
    closes = daily_closes(snapshots)
    if before is not None:
        closes.insert(0, before[1])

    metrics, notes = trade_metrics(results)
    risk, risk_notes = risk_metrics(closes, [e for _, e in snapshots])
    profit_factor = metrics.pop("profit_factor")
    metrics.update(risk)
    metrics["profit_factor"] = profit_factor
    return {
        "period": label,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "metrics": metrics,
        "notes": {**risk_notes, **notes},
        "daily_breakdown": daily_breakdown(results),
    }


# --- POST /analytics/query: symbol_performance -----------------------------------------


def symbol_performance(
    *,
    symbols: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    metrics: Sequence[str] = SYMBOL_METRICS,
    mode: str | None = None,
) -> dict[str, dict[str, float]]:
    """Per-symbol results, for the ``symbol_performance`` query of
    ``POST /analytics/query`` (its ``results`` object).

    Returns ``{symbol: {metric: float}}`` with only the requested ``metrics``, in the
    order asked (``ValueError`` for a metric not in :data:`SYMBOL_METRICS`):

    - ``profit``: the sum of the trades' net results (fees included);
    - ``win_rate``: percent of trades with a net result above zero;
    - ``volume``: base currency the trades executed: per trade, the larger of the
      quantity its entry and hedge orders bought and the quantity they sold (a completed
      arbitrage counts its size once; an unwound one the leg that filled; unwind orders
      do not add to it).

    Trades count as in :func:`performance` (final state other than cancelled, at least
    one fill, by the UTC day they closed, ``start`` and ``end`` included, either open
    when ``None``). Without ``symbols`` every symbol with a counted trade appears, sorted;
    with ``symbols`` exactly those appear, in that order, zeros for a symbol without
    trades.
    """
    unknown = [name for name in metrics if name not in SYMBOL_METRICS]
    if unknown:
        raise ValueError(
            f"unknown metric {', '.join(unknown)}; expected some of {', '.join(SYMBOL_METRICS)}"
        )
    query = _counted_trades(mode)
    if start is not None:
        query = query.where(TradeRecord.completed_at >= _day_start(start))
    if end is not None:
        query = query.where(TradeRecord.completed_at < _day_start(end) + 86400)
    if symbols is not None:
        query = query.where(TradeRecord.symbol.in_(list(symbols)))
    results = _trade_results(query)
    volumes = _executed_quantities(query) if "volume" in metrics else {}

    by_symbol: dict[str, list[TradeResult]] = {name: [] for name in symbols or ()}
    for result in results:
        by_symbol.setdefault(result.symbol, []).append(result)
    names = list(symbols) if symbols is not None else sorted(by_symbol)
    answer: dict[str, dict[str, float]] = {}
    for name in names:
        own = by_symbol[name]
        figures = {
            "profit": money(sum((r.net_profit for r in own), _ZERO)),
            "win_rate": win_rate(own),
            "volume": money(sum((volumes.get(r.trade_id, _ZERO) for r in own), _ZERO)),
        }
        answer[name] = {metric: figures[metric] for metric in metrics}
    return answer


# --- helpers ---------------------------------------------------------------------------


def _counted_trades(mode: str | None) -> peewee.ModelSelect:
    """Trades that count in performance figures (see :func:`performance`)."""
    query = TradeRecord.select().where(
        TradeRecord.state.in_(COUNTED_STATES),
        TradeRecord.completed_at.is_null(False),
        TradeRecord.id.in_(FillRecord.select(FillRecord.trade)),
    )
    if mode is not None:
        query = query.where(TradeRecord.mode == mode)
    return query


def _trade_results(query: peewee.ModelSelect) -> list[TradeResult]:
    rows = _raw_rows(
        query.select(
            TradeRecord.id,
            TradeRecord.symbol,
            TradeRecord.actual_profit,
            TradeRecord.fees_paid,
            TradeRecord.started_at,
            TradeRecord.completed_at,
        ).order_by(TradeRecord.completed_at, TradeRecord.id)
    )
    return [
        TradeResult(
            trade_id=trade_id,
            symbol=symbol,
            closed_at=completed_at,
            net_profit=_ZERO if profit is None else Decimal(profit),
            fees=_ZERO if fees is None else Decimal(fees),
            execution_seconds=max(0.0, completed_at - started_at),
        )
        for trade_id, symbol, profit, fees, started_at, completed_at in rows
    ]


def _executed_quantities(trades_query: peewee.ModelSelect) -> dict[int, Decimal]:
    """Per trade id: the larger of base currency bought and sold by entry and hedge
    orders."""
    bought: dict[int, Decimal] = {}
    sold: dict[int, Decimal] = {}
    fills = _raw_rows(
        FillRecord.select(FillRecord.trade, FillRecord.side, FillRecord.quantity)
        .join(OrderRecord, on=(FillRecord.order_id == OrderRecord.client_order_id))
        .where(
            OrderRecord.purpose.in_(("entry", "hedge")),
            FillRecord.trade.in_(trades_query.select(TradeRecord.id)),
        )
    )
    for trade_id, side, quantity in fills:
        totals = bought if side == "buy" else sold
        totals[trade_id] = totals.get(trade_id, _ZERO) + Decimal(quantity)
    return {
        trade_id: max(bought.get(trade_id, _ZERO), sold.get(trade_id, _ZERO))
        for trade_id in bought.keys() | sold.keys()
    }


def _raw_rows(query: peewee.Query) -> list[tuple[Any, ...]]:
    """The rows as the driver gives them (decimal columns as text): on answers of a
    hundred thousand rows peewee's conversion of each row costs more than the SQL."""
    return list(database.execute(query).fetchall())


def _day_start(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else iso_utc(timestamp)


def _price(value: Decimal | None) -> float | None:
    """A volume-weighted price: to 8 decimal places (an average has more digits than
    any price it averages)."""
    return money(value)


def _iso_ms(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def period_dates(period: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last UTC day of the calendar ``period`` containing ``today``:
    ``day`` is today, ``week`` its ISO week (Monday to Sunday), ``month`` and ``year`` the
    calendar month and year. Raises ``ValueError`` for another period."""
    if period == "day":
        return today, today
    if period == "week":
        monday = today - dt.timedelta(days=today.weekday())
        return monday, monday + dt.timedelta(days=6)
    if period == "month":
        first = today.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        return first, following - dt.timedelta(days=1)
    if period == "year":
        return today.replace(month=1, day=1), today.replace(month=12, day=31)
    raise ValueError(f"unknown period {period!r}; expected one of {', '.join(PERIODS)}")
