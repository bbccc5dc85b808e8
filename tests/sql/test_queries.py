"""The API's queries against a real SQLite database, rows written through the models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import peewee
import pytest
from _fixtures_queries import (
    DAY1,
    DAY2,
    LEDGER_DAYS,
    LEDGER_METRICS,
    LEDGER_VOLUME,
    add_fill,
    add_order,
    add_signal,
    add_trade,
    insert_ledger,
)

from arbotd_sql import candles, queries
from arbotd_sql.models import MODELS, Bar, EquitySnapshot, database

D = Decimal
JAN1 = dt.date(2024, 1, 1)
JAN2 = dt.date(2024, 1, 2)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[peewee.Database]:
    """A fresh SQLite file with every table, bound to the models."""
    sqlite = peewee.SqliteDatabase(
        str(tmp_path / "arbot.db"), pragmas={"journal_mode": "wal", "foreign_keys": 1}
    )
    database.initialize(sqlite)
    sqlite.connect()
    sqlite.create_tables(MODELS)
    yield sqlite
    sqlite.close()
    database.initialize(None)


# --- GET /trades ---------------------------------------------------------------------------


def trade_ids(answer: dict) -> list[int]:
    return [t["id"] for t in answer["trades"]]


def test_trade_rows_have_the_reference_shape(db: peewee.Database) -> None:
    add_trade(123, started_at=DAY1 + 43_200, completed_at=DAY1 + 43_245.7,
              actual_profit="2.35", fees_paid="0.15", quantity="0.1")
    add_trade(124, state="submitted", started_at=DAY1 + 50_000.9)
    answer = queries.trades()
    assert answer == {
        "trades": [
            {
                "id": 124,
                "symbol": "BTCUSDT",
                "buy_exchange": "bybit",
                "sell_exchange": "binance",
                "quantity": 0.1,
                "planned_quantity": 0.1,
                "planned_profit": 0.1,
                "actual_profit": None,
                "fees_paid": None,
                "status": "submitted",
                "started_at": "2024-01-01T13:53:20Z",  # sub-seconds cut off
                "completed_at": None,
            },
            {
                "id": 123,
                "symbol": "BTCUSDT",
                "buy_exchange": "bybit",
                "sell_exchange": "binance",
                "quantity": 0.1,
                "planned_quantity": 0.1,
                "planned_profit": 0.1,
                "actual_profit": 2.35,
                "fees_paid": 0.15,
                "status": "completed",
                "started_at": "2024-01-01T12:00:00Z",
                "completed_at": "2024-01-01T12:00:45Z",
            },
        ],
        "total_count": 2,
        "pagination": {"limit": 100, "offset": 0, "has_more": False},
    }


def test_trades_paginate_newest_first(db: peewee.Database) -> None:
    for trade_id in range(1, 8):
        add_trade(trade_id, started_at=DAY1 + trade_id * 60)
    add_trade(8, started_at=DAY1 + 7 * 60)  # same start as 7: the higher id first

    pages = [queries.trades(limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [trade_ids(page) for page in pages] == [[8, 7, 6], [5, 4, 3], [2, 1], []]
    assert [page["total_count"] for page in pages] == [8, 8, 8, 8]
    assert [page["pagination"] for page in pages] == [
        {"limit": 3, "offset": 0, "has_more": True},
        {"limit": 3, "offset": 3, "has_more": True},
        {"limit": 3, "offset": 6, "has_more": False},
        {"limit": 3, "offset": 9, "has_more": False},
    ]
    assert queries.trades(limit=2, offset=6)["pagination"]["has_more"] is False


def test_trades_filter_by_start_day_both_days_included(db: peewee.Database) -> None:
    add_trade(1, started_at=DAY1 - 1)  # 2023-12-31 23:59:59
    add_trade(2, started_at=DAY1)  # 2024-01-01 00:00:00
    add_trade(3, started_at=DAY2 - 0.001)  # 2024-01-01 23:59:59.999
    add_trade(4, started_at=DAY2, completed_at=DAY2 + 86_400)  # starts 01-02, ends 01-03
    add_trade(5, started_at=DAY2 + 86_400)  # 2024-01-03 00:00:00

    assert trade_ids(queries.trades(start_date=JAN1, end_date=JAN1)) == [3, 2]
    assert trade_ids(queries.trades(start_date=JAN1, end_date=JAN2)) == [4, 3, 2]
    assert trade_ids(queries.trades(start_date=JAN2)) == [5, 4]
    assert trade_ids(queries.trades(end_date=JAN1)) == [3, 2, 1]
    answer = queries.trades(start_date=JAN1, end_date=JAN2, limit=1)
    assert answer["total_count"] == 3
    assert answer["pagination"]["has_more"] is True


def test_trades_filter_by_symbol_and_status(db: peewee.Database) -> None:
    add_trade(1, symbol="BTCUSDT", state="completed", started_at=DAY1 + 1)
    add_trade(2, symbol="ETHUSDT", state="completed", started_at=DAY1 + 2)
    add_trade(3, symbol="BTCUSDT", state="failed", started_at=DAY1 + 3)
    add_trade(4, symbol="BTCUSDT", state="completed", started_at=DAY1 + 4)

    assert trade_ids(queries.trades(symbol="BTCUSDT")) == [4, 3, 1]
    assert trade_ids(queries.trades(status="completed")) == [4, 2, 1]
    answer = queries.trades(symbol="BTCUSDT", status="completed")
    assert (trade_ids(answer), answer["total_count"]) == ([4, 1], 2)
    assert queries.trades(symbol="XRPUSDT")["total_count"] == 0


# --- GET /trades/{id} ----------------------------------------------------------------------


def test_trade_detail_with_legs_and_fills(db: peewee.Database) -> None:
    add_trade(
        7,
        state="completed",
        started_at=DAY1 + 43_200,
        completed_at=DAY1 + 43_245.0004,
        quantity="0.1",
        actual_profit="0.02",
        fees_paid="0.02",
        actual_buy_price=Decimal("100.05"),
        actual_sell_price=Decimal("100.5"),
        slippage=Decimal("0.05"),
        reason="partially filled: 0.08",
    )
    # Written out of order; ``position`` is each order's and fill's place in the trade.
    add_order(7, "h", "sell", purpose="hedge", quantity="0.02", price="0",
              exchange="binance", position=2)
    add_order(7, "s", "sell", quantity="0.1", filled="0.08", status="partially_filled",
              price="100.5", exchange="binance", position=1)
    add_order(7, "b", "buy", quantity="0.1", price="100.1", exchange_order_id="X-991")
    add_fill(7, "s", 1, "sell", quantity="0.03", price="100.5", fee="0.003",
             timestamp=DAY1 + 43_201, exchange="binance", position=2)
    add_fill(7, "s", 0, "sell", quantity="0.05", price="100.5", fee="0.005",
             timestamp=DAY1 + 43_200.5, exchange="binance", position=1)
    add_fill(7, "b", 0, "buy", quantity="0.1", price="100.05", fee="0.01",
             timestamp=DAY1 + 43_200.4, position=0)
    add_fill(7, "h", 0, "sell", quantity="0.02", price="100.4", fee="0.002",
             timestamp=DAY1 + 43_240, exchange="binance", position=3)

    detail = queries.trade(7)
    legs = detail.pop("legs")
    assert detail == {
        "id": 7,
        "signal_id": 1007,
        "symbol": "BTCUSDT",
        "buy_exchange": "bybit",
        "sell_exchange": "binance",
        "buy_order_id": "X-991",  # the exchange's id where known
        "sell_order_id": "arb7s",  # else the client order id
        "planned_buy_price": 100.0,
        "planned_sell_price": 101.0,
        # A trade planned from the best levels: its limits are its planned prices.
        "buy_limit": 100.0,
        "sell_limit": 101.0,
        "actual_buy_price": 100.05,
        "actual_sell_price": 100.5,
        "buy_native_price": None,
        "sell_native_price": None,
        "buy_rate": None,
        "sell_rate": None,
        "quantity": 0.1,
        "planned_quantity": 0.1,
        "planned_profit": 0.1,
        "actual_profit": 0.02,
        "fees_paid": 0.02,
        "slippage": 0.05,
        "status": "completed",
        "started_at": "2024-01-01T12:00:00Z",
        "completed_at": "2024-01-01T12:00:45Z",
        "execution_time_ms": 45000,  # 45.0004 s
        "mode": "simulation",
        "reason": "partially filled: 0.08",
    }
    assert [leg["client_order_id"] for leg in legs] == ["arb7b", "arb7s", "arb7h"]
    assert legs[1] == {
        "client_order_id": "arb7s",
        "exchange_order_id": None,
        "exchange": "binance",
        "side": "sell",
        "purpose": "entry",
        "price": 100.5,
        "quantity": 0.1,
        "status": "partially_filled",
        "filled_quantity": 0.08,
        "reason": None,
        "native_price": None,
        "rate": None,
        "fills": [
            {"price": 100.5, "quantity": 0.05, "fee": 0.005, "fee_asset": "USDT",
             "fee_value": None, "native_price": None, "native_asset": None,
             "timestamp": DAY1 + 43_200.5,
             "time": "2024-01-01T12:00:00.500Z"},
            {"price": 100.5, "quantity": 0.03, "fee": 0.003, "fee_asset": "USDT",
             "fee_value": None, "native_price": None, "native_asset": None,
             "timestamp": DAY1 + 43_201,
             "time": "2024-01-01T12:00:01.000Z"},
        ],
    }
    assert (legs[2]["purpose"], legs[2]["price"], len(legs[2]["fills"])) == ("hedge", 0.0, 1)


def test_legs_follow_in_the_order_sent(db: peewee.Database) -> None:
    add_trade(3, state="unwound", completed_at=DAY1 + 5)
    for leg, side, purpose, position in [("u1", "sell", "unwind", 3), ("s", "sell", "entry", 1),
                                         ("u0", "sell", "unwind", 2), ("b", "buy", "entry", 0)]:
        add_order(3, leg, side, purpose=purpose, position=position)
    legs = queries.trade(3)["legs"]
    assert [leg["client_order_id"] for leg in legs] == ["arb3b", "arb3s", "arb3u0", "arb3u1"]


def test_legs_without_positions_come_entry_hedge_unwind(db: peewee.Database) -> None:
    add_trade(4, state="unwound", completed_at=DAY1 + 5)
    for leg, side, purpose in [("u1", "sell", "unwind"), ("s", "sell", "entry"),
                               ("h", "buy", "hedge"), ("u0", "sell", "unwind"),
                               ("b", "buy", "entry")]:
        add_order(4, leg, side, purpose=purpose)
    legs = queries.trade(4)["legs"]
    assert [leg["client_order_id"] for leg in legs] == [
        "arb4b", "arb4s", "arb4h", "arb4u0", "arb4u1"
    ]


def test_trade_detail_shows_the_vwaps_and_the_limit_prices(db: peewee.Database) -> None:
    add_trade(8, planned_buy_price=D("100.1"), planned_sell_price=D("101.4"),
              buy_limit=D("100.2"), sell_limit=D("101"))
    detail = queries.trade(8)
    assert (detail["planned_buy_price"], detail["planned_sell_price"]) == (100.1, 101.4)
    assert (detail["buy_limit"], detail["sell_limit"]) == (100.2, 101.0)


def test_trade_detail_of_a_running_trade_and_of_none(db: peewee.Database) -> None:
    add_trade(9, state="planned")
    detail = queries.trade(9)
    assert detail["legs"] == []
    assert detail["buy_order_id"] is None
    assert detail["completed_at"] is None
    assert detail["execution_time_ms"] is None
    assert detail["actual_buy_price"] is None
    assert detail["slippage"] is None
    assert queries.trade(10) is None


# --- GET /signals --------------------------------------------------------------------------


def signal_ids(answer: dict) -> list[int]:
    return [s["id"] for s in answer["signals"]]


def test_signals_shape_order_and_pagination(db: peewee.Database) -> None:
    add_signal(456, timestamp=1_640_995_200.123, executed=True)
    add_signal(457, timestamp=1_640_995_201.0)
    add_signal(458, timestamp=1_640_995_201.0)  # same time as 457: higher id first
    answer = queries.signals()
    assert signal_ids(answer) == [458, 457, 456]
    assert answer["total_count"] == 3
    assert set(answer) == {"signals", "total_count"}
    assert answer["signals"][2] == {
        "id": 456,
        "symbol": "BTCUSDT",
        "buy_exchange": "bybit",
        "sell_exchange": "binance",
        "buy_price": 43249.0,
        "sell_price": 43251.0,
        "profit": 2.0,
        "profit_percent": 0.0046,
        "confidence": 0.85,
        "executed": True,
        "reject_reason": None,
        "timestamp": 1_640_995_200.123,
        # Extras: the quantity the prices are the VWAPs of, and the limit prices (the
        # prices themselves for a signal of the best levels, or recorded before limits).
        "quantity": 0.1,
        "buy_limit": 43249.0,
        "sell_limit": 43251.0,
        "threshold": None,
        "threshold_reason": None,
        # Venues quoted in the symbol's own currency: no native prices or rates.
        "buy_native_price": None,
        "sell_native_price": None,
        "buy_rate": None,
        "sell_rate": None,
    }
    page = queries.signals(limit=1, offset=1)
    assert (signal_ids(page), page["total_count"]) == ([457], 3)


def test_signals_show_their_limit_prices(db: peewee.Database) -> None:
    add_signal(5, timestamp=100.0, buy_limit=43252.5, sell_limit=43248.0)
    [listed] = queries.signals()["signals"]
    assert (listed["buy_price"], listed["buy_limit"]) == (43249.0, 43252.5)
    assert (listed["sell_price"], listed["sell_limit"]) == (43251.0, 43248.0)


def test_signals_filters(db: peewee.Database) -> None:
    add_signal(1, timestamp=100.0, symbol="BTCUSDT", executed=True)
    add_signal(2, timestamp=200.0, symbol="ETHUSDT", executed=False)
    add_signal(3, timestamp=300.0, symbol="BTCUSDT", executed=False)
    add_signal(4, timestamp=400.0, symbol="BTCUSDT", executed=True)

    # Both ends of the time range are included.
    assert signal_ids(queries.signals(start_time=200.0, end_time=300.0)) == [3, 2]
    assert signal_ids(queries.signals(start_time=200.5)) == [4, 3]
    assert signal_ids(queries.signals(end_time=199.9)) == [1]
    assert signal_ids(queries.signals(symbol="ETHUSDT")) == [2]
    assert signal_ids(queries.signals(executed=True)) == [4, 1]
    assert signal_ids(queries.signals(executed=False)) == [3, 2]
    answer = queries.signals(symbol="BTCUSDT", executed=False, start_time=100.0)
    assert (signal_ids(answer), answer["total_count"]) == ([3], 1)


# --- GET /prices/history -------------------------------------------------------------------

# 130 one-minute bars of "a": minutes k = 55..189 after 2024-01-01 00:00 UTC, without
# k = 120..124 (02:00-02:04 missing). Bar k: open 1000 + k, close 1000 + k + 0.5,
# high 1000 + k + 1, low 1000 + k - 1, volume 0.01 k; except a spike to 2000 at k = 70
# (01:10) and a dip to 500 at k = 100 (01:40).
MINUTES = [k for k in range(55, 190) if not 120 <= k <= 124]
HOUR = 3_600


def add_bars(exchange: str = "a", minutes: list[int] = MINUTES, symbol: str = "BTCUSDT") -> None:
    rows = []
    for k in minutes:
        rows.append(
            {
                "symbol": symbol,
                "exchange": exchange,
                "minute": int(DAY1) + 60 * k,
                "open": 1000.0 + k,
                "high": 2000.0 if k == 70 else 1001.0 + k,
                "low": 500.0 if k == 100 else 999.0 + k,
                "close": 1000.5 + k,
                "volume": 0.01 * k,
            }
        )
    Bar.insert_many(rows).execute()


def candle(at: float, open_: float, high: float, low: float, close: float,
           volume: float) -> dict:
    return {"timestamp": int(at), "open": open_, "high": high, "low": low, "close": close,
            "volume": volume}


def test_bars_aggregate_into_hours_and_a_day(db: peewee.Database) -> None:
    assert len(MINUTES) == 130
    add_bars()
    answer = candles.price_history(symbol="BTCUSDT", exchange="a", start_time=DAY1,
                                   end_time=DAY2 - 1, interval="1h")
    assert (answer["symbol"], answer["exchange"], answer["interval"]) == ("BTCUSDT", "a", "1h")
    assert answer["data"] == [
        # 00:00: k 55..59; volume 0.01 * (55 + ... + 59) = 2.85
        candle(DAY1, 1055.0, 1060.0, 1054.0, 1059.5, 2.85),
        # 01:00: k 60..119; spike and dip; volume 0.01 * (60 + 119) * 60 / 2 = 53.7
        candle(DAY1 + HOUR, 1060.0, 2000.0, 500.0, 1119.5, 53.7),
        # 02:00: k 125..179 (gap first); volume 0.01 * (125 + 179) * 55 / 2 = 83.6
        candle(DAY1 + 2 * HOUR, 1125.0, 1180.0, 1124.0, 1179.5, 83.6),
        # 03:00: k 180..189; volume 0.01 * (180 + 189) * 10 / 2 = 18.45
        candle(DAY1 + 3 * HOUR, 1180.0, 1190.0, 1179.0, 1189.5, 18.45),
    ]
    day = candles.price_history(symbol="BTCUSDT", exchange="a", start_time=DAY1,
                                end_time=DAY1, interval="1d")["data"]
    # 2.85 + 53.7 + 83.6 + 18.45 = 158.6
    assert day == [candle(DAY1, 1055.0, 2000.0, 500.0, 1189.5, 158.6)]


def test_bars_aggregate_into_five_minutes_with_gaps(db: peewee.Database) -> None:
    add_bars()
    data = candles.price_history(symbol="BTCUSDT", exchange="a", start_time=DAY1,
                                 end_time=DAY2, interval="5m")["data"]
    # k 55..119 make 13 buckets and k 125..189 another 13; 02:00 has no bars.
    assert len(data) == 26
    starts = [c["timestamp"] for c in data]
    assert starts[0] == DAY1 + 55 * 60
    assert all(s % 300 == 0 for s in starts)
    assert DAY1 + 2 * HOUR not in starts
    assert starts[13] == DAY1 + 125 * 60
    # 00:55: k 55..59, the first five bars.
    assert data[0] == candle(DAY1 + 55 * 60, 1055.0, 1060.0, 1054.0, 1059.5, 2.85)
    # 01:10: k 70..74 with the spike; volume 0.01 * (70 + ... + 74) = 3.6
    assert data[3] == candle(DAY1 + 70 * 60, 1070.0, 2000.0, 1069.0, 1074.5, 3.6)
    # 01:40: k 100..104 with the dip; volume 0.01 * 510 = 5.1
    assert data[9] == candle(DAY1 + 100 * 60, 1100.0, 1105.0, 500.0, 1104.5, 5.1)


def test_one_minute_bars_come_as_stored(db: peewee.Database) -> None:
    add_bars()
    # 00:55:30 .. 00:58:00: bars start 00:56, 00:57, 00:58 (a bar starting at end_time
    # is included).
    data = candles.price_history(symbol="BTCUSDT", exchange="a", start_time=DAY1 + 55 * 60 + 30,
                                 end_time=DAY1 + 58 * 60)["data"]
    assert data == [
        candle(DAY1 + 56 * 60, 1056.0, 1057.0, 1055.0, 1056.5, 0.56),
        candle(DAY1 + 57 * 60, 1057.0, 1058.0, 1056.0, 1057.5, 0.57),
        candle(DAY1 + 58 * 60, 1058.0, 1059.0, 1057.0, 1058.5, 0.58),
    ]


def test_candles_are_chosen_by_their_start_and_always_whole(db: peewee.Database) -> None:
    add_bars()
    # 01:00:01 .. 03:00:00: the 01:00 candle starts before the range and is left out;
    # the 03:00 candle starts at its end and comes whole (bars up to 03:09).
    data = candles.price_history(symbol="BTCUSDT", exchange="a", start_time=DAY1 + HOUR + 1,
                                 end_time=DAY1 + 3 * HOUR, interval="1h")["data"]
    assert [c["timestamp"] for c in data] == [DAY1 + 2 * HOUR, DAY1 + 3 * HOUR]
    assert data[1]["close"] == 1189.5
    # A range inside one candle that does not contain its start: nothing.
    assert candles.price_history(symbol="BTCUSDT", exchange="a", start_time=DAY1 + HOUR + 1,
                                 end_time=DAY1 + 2 * HOUR - 1, interval="1h")["data"] == []


def test_without_an_exchange_the_busiest_one_is_chosen(db: peewee.Database) -> None:
    add_bars("a")
    add_bars("b", minutes=[55, 56, 57])
    add_bars("c", minutes=list(range(60, 200)))  # 140 bars, but only 5 in 01:00..01:04
    answer = candles.price_history(symbol="BTCUSDT", start_time=DAY1,
                                   end_time=DAY1 + 60 * 60, interval="5m")
    # 00:55 and 01:00 candles: a has 5 + 5 bars, b 3, c 5.
    assert answer["exchange"] == "a"
    assert [c["timestamp"] for c in answer["data"]] == [DAY1 + 55 * 60, DAY1 + HOUR]
    # Equal counts: alphabetical.
    add_bars("b", minutes=[200], symbol="ETHUSDT")
    add_bars("a", minutes=[201], symbol="ETHUSDT")
    tie = candles.price_history(symbol="ETHUSDT", start_time=DAY1, end_time=DAY2)
    assert tie["exchange"] == "a"
    assert [c["timestamp"] for c in tie["data"]] == [DAY1 + 201 * 60]


def test_no_bars_and_bad_interval(db: peewee.Database) -> None:
    add_bars()
    assert candles.price_history(symbol="XRPUSDT", start_time=DAY1, end_time=DAY2) == {
        "symbol": "XRPUSDT", "exchange": None, "interval": "1m", "data": [],
    }
    assert candles.price_history(symbol="BTCUSDT", exchange="b", start_time=DAY1,
                                 end_time=DAY2, interval="1d")["data"] == []
    with pytest.raises(ValueError, match="unknown interval '2m'"):
        candles.price_history(symbol="BTCUSDT", start_time=DAY1, end_time=DAY2, interval="2m")


# --- GET /performance ----------------------------------------------------------------------

# Equity: the last snapshot before the range closes 2023-12-31 at 100; 2024-01-01 moves
# 101, 95, 102 (close 102); 2024-01-02 moves 103, 99, 100.98 (close 100.98).
#   Daily closes 100, 102, 100.98 -> returns +0.02, -0.01: mean 0.005,
#   sample stdev sqrt(2 * 0.015**2) = 0.0212132 -> 0.2357023 * sqrt(365) = 4.5031
#   Drawdown over the snapshots in range: 101 -> 95 = 5.9406 %; 103 -> 99 = 3.8835 %.
EQUITY = [
    (DAY1 - 60, 100.0),
    (DAY1, 101.0),
    (DAY1 + 43_200, 95.0),
    (DAY2 - 60, 102.0),
    (DAY2, 103.0),
    (DAY2 + 43_200, 99.0),
    (DAY2 + 86_340, 100.98),
]


def add_equity(points: list[tuple[float, float]] = EQUITY, mode: str = "simulation") -> None:
    EquitySnapshot.insert_many(
        [{"timestamp": t, "mode": mode, "equity_usd": e} for t, e in points]
    ).execute()


def add_trades_that_do_not_count() -> None:
    add_trade(20, state="failed", started_at=DAY1, completed_at=DAY1 + 10,
              actual_profit="0", fees_paid="0")  # no fill: never traded
    add_order(20, "b", "buy", status="expired", filled="0")
    add_trade(21, state="cancelled", started_at=DAY1, completed_at=DAY1 + 10)
    add_trade(22, state="partially_filled", started_at=DAY1)  # still running
    add_fill(22, "b", 0, "buy")
    add_trade(23, completed_at=DAY2 + 86_400, actual_profit="9", fees_paid="1")  # 01-03
    add_fill(23, "b", 0, "buy")


def test_performance_of_the_hand_computed_ledger(db: peewee.Database) -> None:
    insert_ledger()
    add_trades_that_do_not_count()
    add_equity()
    answer = queries.performance(start=JAN1, end=JAN2)
    assert answer == {
        "period": "custom",
        "start_date": "2024-01-01",
        "end_date": "2024-01-02",
        "metrics": {
            **LEDGER_METRICS,
            # Three daily closes (the last before the range, then 2024-01-01 and -02):
            # two returns, too few for a ratio.
            "sharpe_ratio": None,
            "sortino_ratio": None,
            "max_drawdown_percent": 5.9406,
            "profit_factor": 3.3333,
        },
        "notes": {
            "sharpe_ratio": "needs at least 7 daily returns (8 days of equity), has 2",
            "sortino_ratio": "needs at least 7 daily returns (8 days of equity), has 2",
        },
        "daily_breakdown": LEDGER_DAYS,
    }
    assert list(answer["metrics"]) == [
        "total_trades", "successful_trades", "win_rate", "total_profit", "total_fees",
        "net_profit", "avg_profit_per_trade", "max_profit", "max_loss",
        "avg_execution_time_seconds", "sharpe_ratio", "sortino_ratio",
        "max_drawdown_percent", "profit_factor",
    ]


def test_performance_periods_are_calendar_periods(db: peewee.Database) -> None:
    insert_ledger()
    add_equity()
    day = queries.performance(period="day", today=JAN2)
    assert (day["period"], day["start_date"], day["end_date"]) == ("day", "2024-01-02",
                                                                   "2024-01-02")
    # Trades 3, 4, 5 closed on 2024-01-02: +2, 0, -0.5.
    assert day["metrics"]["total_trades"] == 3
    assert day["metrics"]["net_profit"] == 1.5
    assert day["daily_breakdown"] == LEDGER_DAYS[1:]
    # One daily return (102 -> 100.98): no Sharpe; drawdown 103 -> 99 = 3.8835 %.
    assert day["metrics"]["sharpe_ratio"] is None and "sharpe_ratio" in day["notes"]
    assert day["metrics"]["max_drawdown_percent"] == 3.8835

    # 2024-01-02 is a Tuesday: its ISO week runs from Monday 2024-01-01 to Sunday 01-07.
    ranges = {
        name: (answer["start_date"], answer["end_date"])
        for name in ("week", "month", "year")
        for answer in [queries.performance(period=name, today=JAN2)]
    }
    assert ranges == {"week": ("2024-01-01", "2024-01-07"),
                      "month": ("2024-01-01", "2024-01-31"),
                      "year": ("2024-01-01", "2024-12-31")}
    month = queries.performance(today=JAN2)
    assert (month["period"], month["start_date"]) == ("month", "2024-01-01")
    # A week across a month's end, and February of a leap year.
    assert queries.period_dates("week", dt.date(2024, 3, 1)) == (dt.date(2024, 2, 26),
                                                                 dt.date(2024, 3, 3))
    assert queries.period_dates("month", dt.date(2024, 2, 10)) == (dt.date(2024, 2, 1),
                                                                   dt.date(2024, 2, 29))
    assert queries.period_dates("month", dt.date(2024, 12, 31))[1] == dt.date(2024, 12, 31)
    assert month["metrics"]["total_trades"] == 5
    assert queries.performance(period="day", today=JAN1)["metrics"]["total_trades"] == 2
    assert queries.performance(period="day", today=dt.date(2024, 1, 3))["metrics"][
        "total_trades"
    ] == 0


def test_performance_custom_ranges(db: peewee.Database) -> None:
    insert_ledger()
    only_start = queries.performance(start=JAN2, today=dt.date(2024, 1, 9))
    assert (only_start["start_date"], only_start["end_date"]) == ("2024-01-02", "2024-01-09")
    assert only_start["metrics"]["total_trades"] == 3
    # Without a start: from the first counted trade's day.
    only_end = queries.performance(end=JAN2)
    assert (only_end["start_date"], only_end["end_date"]) == ("2024-01-01", "2024-01-02")
    assert only_end["metrics"]["total_trades"] == 5
    with pytest.raises(ValueError, match="after"):
        queries.performance(start=JAN2, end=JAN1)
    with pytest.raises(ValueError, match="unknown period 'fortnight'"):
        queries.performance(period="fortnight", today=JAN2)


def test_performance_with_nothing_stored(db: peewee.Database) -> None:
    answer = queries.performance(end=JAN2)
    assert (answer["start_date"], answer["end_date"]) == ("2024-01-02", "2024-01-02")
    assert answer["metrics"]["total_trades"] == 0
    assert answer["metrics"]["profit_factor"] is None
    assert answer["metrics"]["sharpe_ratio"] is None
    assert answer["notes"]["profit_factor"] == "no closed trades"
    assert answer["daily_breakdown"] == []


def test_performance_by_mode(db: peewee.Database) -> None:
    insert_ledger()
    add_equity()
    add_trade(30, mode="live", completed_at=DAY1 + 100, actual_profit="10", fees_paid="1")
    add_fill(30, "b", 0, "buy")
    add_equity([(DAY1 + 1, 1000.0), (DAY1 + 2, 500.0)], mode="live")

    simulation = queries.performance(start=JAN1, end=JAN2, mode="simulation")["metrics"]
    assert simulation == {**LEDGER_METRICS, "sharpe_ratio": None, "sortino_ratio": None,
                          "max_drawdown_percent": 5.9406}
    live = queries.performance(start=JAN1, end=JAN2, mode="live")["metrics"]
    assert (live["total_trades"], live["net_profit"], live["max_drawdown_percent"]) == (
        1, 10.0, 50.0
    )
    assert queries.performance(start=JAN1, end=JAN2)["metrics"]["total_trades"] == 6


# --- POST /analytics/query: symbol_performance ---------------------------------------------


def test_symbol_performance(db: peewee.Database) -> None:
    insert_ledger()
    add_trades_that_do_not_count()
    # BTCUSDT: trades 1, 2, 5: net 3 - 1 - 0.5 = 1.5, 1 of 3 won; ETHUSDT: 3, 4: 2, 1 of 2.
    answer = queries.symbol_performance(start=JAN1, end=JAN2)
    assert answer == {
        "BTCUSDT": {"profit": 1.5, "win_rate": 33.3333, "volume": LEDGER_VOLUME["BTCUSDT"]},
        "ETHUSDT": {"profit": 2.0, "win_rate": 50.0, "volume": LEDGER_VOLUME["ETHUSDT"]},
    }
    assert list(answer) == ["BTCUSDT", "ETHUSDT"]


def test_symbol_performance_selects_symbols_metrics_and_days(db: peewee.Database) -> None:
    insert_ledger()
    answer = queries.symbol_performance(symbols=["ETHUSDT", "XRPUSDT"],
                                        metrics=["volume", "profit"])
    assert answer == {
        "ETHUSDT": {"volume": 3.0, "profit": 2.0},
        "XRPUSDT": {"volume": 0.0, "profit": 0.0},  # asked for, no trades
    }
    assert list(answer["ETHUSDT"]) == ["volume", "profit"]
    # 2024-01-02 only: BTCUSDT trade 5 (-0.5, volume 0.05).
    assert queries.symbol_performance(symbols=["BTCUSDT"], start=JAN2) == {
        "BTCUSDT": {"profit": -0.5, "win_rate": 0.0, "volume": 0.05},
    }
    assert queries.symbol_performance(end=JAN1, metrics=["win_rate"]) == {
        "BTCUSDT": {"win_rate": 50.0},
    }
    with pytest.raises(ValueError, match="unknown metric sharpe"):
        queries.symbol_performance(metrics=["profit", "sharpe"])
