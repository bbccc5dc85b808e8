"""``GET /prices/history``: candles of the mid price, aggregated from 1-minute bars.

A query function like those of :mod:`arbotd_sql.queries`: synchronous, run in a worker
thread with the database connected.
"""

from __future__ import annotations

import math
from typing import Any

import peewee

from arbotd_sql.models import Bar

__all__ = ["INTERVALS", "price_history"]

INTERVALS: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
"""Price history intervals and their length in seconds."""


def price_history(
    *,
    symbol: str,
    exchange: str | None = None,
    start_time: float,
    end_time: float,
    interval: str = "1m",
) -> dict[str, Any]:
    """OHLC candles of the mid price, for ``GET /prices/history``.

    Returns ``{"symbol": str, "exchange": str | None, "interval": str, "data":
    [{"timestamp": int, "open", "high", "low", "close", "volume"}, ...]}``, oldest candle
    first.

    Candles are built from the stored 1-minute bars: a candle of ``interval`` (``1m``,
    ``5m``, ``1h``, ``1d``; ``ValueError`` for another) starts at a multiple of its length
    in epoch seconds, so candles are aligned to UTC (a ``1d`` candle is a UTC day). Its
    open is the open of its first bar, close the close of its last, high the highest
    high, low the lowest low, volume the sum (base currency; 0 where the exchange adapter
    has no trade stream). A candle appears when its *start* lies in ``[start_time,
    end_time]`` and is always built from all of its bars, also those after
    ``end_time``, so the same candle looks the same whatever range asked for it (as
    exchanges' kline endpoints do). Periods without bars give no candle (no filling).

    With ``exchange=None`` the candles are those of the one exchange with the most bars
    of the symbol in the range (ties: alphabetical), named in ``"exchange"``: mixing
    exchanges would make candles that never traded anywhere, and the answer has room
    for one exchange only. ``"exchange"`` is ``None`` (and ``data`` empty) when no
    exchange has a bar there.
    """
    try:
        size = INTERVALS[interval]
    except KeyError:
        raise ValueError(
            f"unknown interval {interval!r}; expected one of {', '.join(INTERVALS)}"
        ) from None
    first = math.ceil(start_time / size) * size
    last = math.floor(end_time / size) * size
    answer: dict[str, Any] = {
        "symbol": symbol,
        "exchange": exchange,
        "interval": interval,
        "data": [],
    }
    if first > last:
        return answer
    in_range = (Bar.symbol == symbol) & (Bar.minute >= first) & (Bar.minute < last + size)
    if exchange is None:
        busiest = (
            Bar.select(Bar.exchange)
            .where(in_range)
            .group_by(Bar.exchange)
            .order_by(peewee.fn.COUNT(Bar.minute).desc(), Bar.exchange)
            .limit(1)
            .scalar()
        )
        if busiest is None:
            return answer
        exchange = answer["exchange"] = busiest
    answer["data"] = _candles(symbol, exchange, in_range & (Bar.exchange == exchange), size)
    return answer


def _candles(
    symbol: str, exchange: str, condition: peewee.Expression, size: int
) -> list[dict[str, Any]]:
    if size == 60:
        rows = (
            Bar.select(Bar.minute, Bar.open, Bar.high, Bar.low, Bar.close, Bar.volume)
            .where(condition)
            .order_by(Bar.minute)
            .tuples()
        )
    else:
        # The bucket length is written into the SQL as a literal: with two parameters
        # PostgreSQL could not tell that the SELECT and GROUP BY expressions are equal.
        length = peewee.SQL(str(size))
        bucket = (Bar.minute / length) * length
        groups = (
            Bar.select(
                bucket.alias("bucket"),
                peewee.fn.MIN(Bar.minute).alias("first_minute"),
                peewee.fn.MAX(Bar.minute).alias("last_minute"),
                peewee.fn.MAX(Bar.high).alias("high"),
                peewee.fn.MIN(Bar.low).alias("low"),
                peewee.fn.SUM(Bar.volume).alias("volume"),
            )
            .where(condition)
            .group_by(bucket)
            .alias("buckets")
        )
        first_bar = Bar.alias("first_bar")
        last_bar = Bar.alias("last_bar")

        def same_series(bar: Any) -> peewee.Expression:
            return (bar.symbol == symbol) & (bar.exchange == exchange)

        rows = (
            groups.select_from(
                groups.c.bucket,
                first_bar.open,
                groups.c.high,
                groups.c.low,
                last_bar.close,
                groups.c.volume,
            )
            .join(
                first_bar,
                on=same_series(first_bar) & (first_bar.minute == groups.c.first_minute),
            )
            .join(
                last_bar,
                on=same_series(last_bar) & (last_bar.minute == groups.c.last_minute),
            )
            .order_by(groups.c.bucket)
            .tuples()
        )
    return [
        {
            "timestamp": int(start),
            "open": float(open_),
            "high": float(high),
            "low": float(low),
            "close": float(close),
            # Summed as floats by the database, in an order it chooses.
            "volume": round(float(volume or 0.0), 8),
        }
        for start, open_, high, low, close, volume in rows
    ]
