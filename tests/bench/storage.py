"""Storage (plugin arbotd_sql) on SQLite and PostgreSQL: insert rate through the writer,
and the time of the queries the API serves on a large database (issue 4, item 8).

Insert rate: ``record_signal`` / ``record_trade`` (a completed trade with 2 orders and 2
fills: 5 rows) on an open ``SqlStorage`` with the default ``[storage]`` settings, timed
from the first ``record_*`` call until ``await storage.flush()`` returns. Printed beside a
baseline measured in the same run on the same database: the same number of rows, made
into row dicts beforehand, inserted with plain peewee ``insert_many`` (as few statements
as the bound-parameter limit allows) in one transaction. The ratio is writer rate /
baseline rate.

Queries: the database is filled directly through the models (``insert_many`` in big
transactions, not through the writer) with 1,000,000 signals, 100,000 trades (2 orders
and 2 fills each) over 30 days, a month of 1-minute bars for 5 symbols on 3 exchanges and
a month of minute equity snapshots; then each query runs through ``storage.read`` (a
worker thread, as the API calls it) several times and the median is printed:
a trades page (symbol filter, limit 100, offset 5000), a day of 1m bars as 1h candles
(exchange named, and exchange left to the query), monthly performance.
PostgreSQL is ANALYZEd after the load (as autovacuum would be); SQLite is left as the
daemon leaves it.

PostgreSQL is a throwaway server (initdb in a temporary directory, as tests/sql does),
skipped with ``--no-postgres`` or when there are no binaries.

    .venv/bin/python tests/bench/storage.py            # full size: several minutes
    .venv/bin/python tests/bench/storage.py --quick    # tiny sizes, seconds
    .venv/bin/python tests/bench/storage.py --no-postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import peewee
import trio
from _benchtools import (
    median,
    postgres_bindir,
    postgres_version,
    print_table,
    throwaway_postgres,
)

from arbotd import Fill, Order, OrderStatus, Side, Signal, Trade, TradeState, client_order_id
from arbotd_sql import SqlStorage, StorageConfig, models, queries
from arbotd_sql.candles import price_history
from arbotd_sql.models import (
    Bar,
    EquitySnapshot,
    FillRecord,
    OrderRecord,
    SignalRecord,
    TradeRecord,
)
from arbotd_sql.records import signal_row, trade_rows

D = Decimal
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT")
EXCHANGES = ("sim_alpha", "sim_beta", "sim_gamma")
PRICES = {"BTCUSDT": 65000.0, "ETHUSDT": 3400.0, "SOLUSDT": 150.0, "XRPUSDT": 0.55,
          "BNBUSDT": 600.0}
END = dt.date(2025, 7, 1)  # the data ends at the start of this UTC day
END_TS = dt.datetime.combine(END, dt.time(), tzinfo=dt.UTC).timestamp()
DAY = 86_400


@attrs.frozen
class Sizes:
    insert_signals: int
    insert_trades: int
    signals: int
    trades: int
    bar_symbols: int
    days: int
    runs: int


FULL = Sizes(insert_signals=50_000, insert_trades=10_000, signals=1_000_000, trades=100_000,
             bar_symbols=5, days=30, runs=7)
QUICK = Sizes(insert_signals=2_000, insert_trades=500, signals=20_000, trades=2_000,
              bar_symbols=2, days=2, runs=3)


# --- values -----------------------------------------------------------------------------------


def make_signal(signal_id: int, at: float) -> Signal:
    symbol = SYMBOLS[signal_id % len(SYMBOLS)]
    price = PRICES[symbol]
    return Signal(
        id=signal_id, symbol=symbol, buy_exchange=EXCHANGES[signal_id % 3],
        sell_exchange=EXCHANGES[(signal_id + 1) % 3], buy_price=price,
        sell_price=price * 1.004, buy_size=1.0, sell_size=1.0, quantity=100 / price,
        profit=0.2, profit_percent=0.2, spread_percent=0.4, fees=0.2, confidence=0.9,
        timestamp=at, executed=signal_id % 10 == 0,
        reject_reason=None if signal_id % 10 == 0 else "cooldown",
    )


def make_trade(trade_id: int, at: float) -> Trade:
    """A completed trade: both legs filled in one fill each."""
    symbol = SYMBOLS[trade_id % len(SYMBOLS)]
    buy_ex, sell_ex = EXCHANGES[trade_id % 3], EXCHANGES[(trade_id + 1) % 3]
    price = D(str(PRICES[symbol]))
    sell_price = price * D("1.004")
    quantity = D("0.010")
    buy = Order(client_order_id(trade_id, "b"), trade_id, buy_ex, symbol, Side.BUY, price,
                quantity, OrderStatus.FILLED, quantity, f"A-{trade_id}")
    sell = Order(client_order_id(trade_id, "s"), trade_id, sell_ex, symbol, Side.SELL,
                 sell_price, quantity, OrderStatus.FILLED, quantity, f"B-{trade_id}")
    fills = (
        Fill(buy.client_order_id, trade_id, buy_ex, symbol, Side.BUY, price, quantity,
             price * quantity * D("0.001"), "USDT", at + 0.5),
        Fill(sell.client_order_id, trade_id, sell_ex, symbol, Side.SELL, sell_price,
             quantity, sell_price * quantity * D("0.001"), "USDT", at + 0.6),
    )
    return Trade(
        id=trade_id, signal_id=trade_id, mode="simulation", symbol=symbol,
        buy_exchange=buy_ex, sell_exchange=sell_ex, quantity=quantity,
        planned_buy_price=price, planned_sell_price=sell_price,
        planned_profit=(sell_price - price) * quantity, started_at=at,
        state=TradeState.COMPLETED, orders=(buy, sell), fills=fills, completed_at=at + 1.5,
    )


# --- insert rate --------------------------------------------------------------------------------


def _max_rows(database: peewee.Database, fields: int) -> int:
    """Rows per statement within the bound-parameter limit (SQLite 32766, PostgreSQL
    65535)."""
    limit = 32_766 if isinstance(database, peewee.SqliteDatabase) else 65_535
    return max(1, limit // fields)


def _plain_insert(tables: list[tuple[type[peewee.Model], list[dict[str, Any]]]]) -> float:
    """The baseline: the rows with insert_many in one transaction; seconds taken."""
    database = models.database.obj
    start = time.perf_counter()
    with database.atomic():
        for model, rows in tables:
            size = _max_rows(database, len(rows[0]))
            for chunk in peewee.chunked(rows, size):
                model.insert_many(chunk).execute()
    return time.perf_counter() - start


async def insert_rates(url: str, state_dir: Path, sizes: Sizes) -> list[list[str]]:
    storage = SqlStorage(StorageConfig(url=url), state_dir=state_dir)
    await storage.open()
    try:
        at = END_TS - DAY
        n_sig, n_trade = sizes.insert_signals, sizes.insert_trades
        signals = [make_signal(i, at + i * 0.01) for i in range(1, n_sig + 1)]
        trades = [make_trade(i, at + i * 0.01) for i in range(1, n_trade + 1)]

        start = time.perf_counter()
        for signal in signals:
            storage.record_signal(signal)
        await storage.flush()
        writer_signals = time.perf_counter() - start

        start = time.perf_counter()
        for trade in trades:
            storage.record_trade(trade)
        await storage.flush()
        writer_trades = time.perf_counter() - start

        offset = 10_000_000  # ids the writer did not use
        base_signals = await storage.read(_plain_insert, [
            (SignalRecord, [signal_row(make_signal(offset + i, at)) for i in range(n_sig)]),
        ])
        made = [trade_rows(make_trade(offset + i, at)) for i in range(n_trade)]
        base_trades = await storage.read(_plain_insert, [
            (TradeRecord, [t for t, _, _ in made]),
            (OrderRecord, [o for _, orders, _ in made for o in orders]),
            (FillRecord, [f for _, _, fills in made for f in fills]),
        ])
    finally:
        await storage.close()

    def row(what: str, rows: int, writer: float, baseline: float) -> list[str]:
        return [what, f"{rows:,}", f"{rows / writer:,.0f}", f"{rows / baseline:,.0f}",
                f"{baseline / writer:.2f}"]

    return [
        row("record_signal (1 row each)", n_sig, writer_signals, base_signals),
        row("record_trade (5 rows each)", n_trade * 5, writer_trades, base_trades),
    ]


# --- a large database -------------------------------------------------------------------------


def _load(model: type[peewee.Model], fields: list[peewee.Field], rows: Iterator[tuple],
          per_transaction: int = 100_000) -> int:
    database = models.database.obj
    size = min(1000, _max_rows(database, len(fields)))
    count = 0
    batch: list[tuple] = []

    def write() -> None:
        with database.atomic():
            for chunk in peewee.chunked(batch, size):
                model.insert_many(chunk, fields=fields).execute()

    for row in rows:
        batch.append(row)
        if len(batch) >= per_transaction:
            write()
            count += len(batch)
            batch = []
    if batch:
        write()
        count += len(batch)
    return count


def populate(sizes: Sizes) -> dict[str, int]:
    """Fill the open storage's database; the row count of each table."""
    first = END_TS - sizes.days * DAY
    span = sizes.days * DAY
    s = SignalRecord
    signal_fields = [s.id, s.timestamp, s.symbol, s.buy_exchange, s.sell_exchange, s.buy_price,
                     s.sell_price, s.quantity, s.profit, s.profit_percent, s.spread_percent,
                     s.fees, s.confidence, s.executed, s.reject_reason]

    def signal_rows() -> Iterator[tuple]:
        step = span / sizes.signals
        for i in range(1, sizes.signals + 1):
            symbol = SYMBOLS[i % 5]
            price = PRICES[symbol]
            executed = i % 10 == 0
            yield (i, first + i * step, symbol, EXCHANGES[i % 3], EXCHANGES[(i + 1) % 3],
                   price, price * 1.004, 100 / price, 0.2, 0.2, 0.4, 0.2, 0.9, executed,
                   None if executed else "cooldown")

    t = TradeRecord
    trade_fields = [t.id, t.signal_id, t.mode, t.symbol, t.buy_exchange, t.sell_exchange,
                    t.quantity, t.planned_buy_price, t.planned_sell_price, t.planned_profit,
                    t.actual_buy_price, t.actual_sell_price, t.actual_profit, t.fees_paid,
                    t.slippage, t.state, t.reason, t.started_at, t.completed_at]
    o = OrderRecord
    order_fields = [o.client_order_id, o.trade, o.exchange, o.symbol, o.side, o.price,
                    o.quantity, o.status, o.filled_quantity, o.exchange_order_id, o.purpose,
                    o.reason, o.position]
    f = FillRecord
    fill_fields = [f.order_id, f.seq, f.trade, f.exchange, f.symbol, f.side, f.price,
                   f.quantity, f.fee, f.fee_asset, f.timestamp, f.position]
    trade_step = span / sizes.trades

    def trade_facts(i: int) -> tuple[str, str, str, str, float]:
        return (SYMBOLS[i % 5], EXCHANGES[i % 3], EXCHANGES[(i + 1) % 3],
                str(PRICES[SYMBOLS[i % 5]]), first + i * trade_step)

    def trade_table() -> Iterator[tuple]:
        for i in range(1, sizes.trades + 1):
            symbol, buy_ex, sell_ex, price, at = trade_facts(i)
            # One in five loses: the figures have wins and losses to sum.
            profit = "-0.031" if i % 5 == 0 else "0.0412"
            state = "failed" if i % 50 == 0 else "completed"
            yield (i * 7, i * 10, "simulation", symbol, buy_ex, sell_ex, "0.01", price, price,
                   "0.05", price, price, profit, "0.0013", "0.0088", state, None, at, at + 1.5)

    def order_table() -> Iterator[tuple]:
        for i in range(1, sizes.trades + 1):
            symbol, buy_ex, sell_ex, price, _ = trade_facts(i)
            for position, (leg, exchange, side) in enumerate(
                (("b", buy_ex, "buy"), ("s", sell_ex, "sell"))
            ):
                yield (client_order_id(i * 7, leg), i * 7, exchange, symbol, side, price,
                       "0.01", "filled", "0.01", f"X-{i}-{leg}", "entry", None, position)

    def fill_table() -> Iterator[tuple]:
        for i in range(1, sizes.trades + 1):
            symbol, buy_ex, sell_ex, price, at = trade_facts(i)
            for position, (leg, exchange, side) in enumerate(
                (("b", buy_ex, "buy"), ("s", sell_ex, "sell"))
            ):
                yield (client_order_id(i * 7, leg), 0, i * 7, exchange, symbol, side, price,
                       "0.01", "0.00065", "USDT", at + 0.5, position)

    b = Bar
    bar_fields = [b.symbol, b.exchange, b.minute, b.open, b.high, b.low, b.close, b.volume]

    def bar_rows() -> Iterator[tuple]:
        for symbol in SYMBOLS[: sizes.bar_symbols]:
            price = PRICES[symbol]
            for n, exchange in enumerate(EXCHANGES):
                for minute in range(int(first), int(END_TS), 60):
                    mid = price * (1 + 0.0001 * n + 0.001 * ((minute // 60) % 17 - 8) / 8)
                    yield (symbol, exchange, minute, mid, mid * 1.0002, mid * 0.9998,
                           mid * 1.0001, 0.0)

    e = EquitySnapshot
    equity_fields = [e.timestamp, e.mode, e.equity_usd]

    def equity_rows() -> Iterator[tuple]:
        for k, minute in enumerate(range(int(first), int(END_TS), 60)):
            yield (float(minute), "simulation", 90_000.0 + 0.01 * k + 40.0 * ((k % 97) - 48) / 48)

    return {
        "signals": _load(SignalRecord, signal_fields, signal_rows()),
        "trades": _load(TradeRecord, trade_fields, trade_table()),
        "orders": _load(OrderRecord, order_fields, order_table()),
        "fills": _load(FillRecord, fill_fields, fill_table()),
        "bars_1m": _load(Bar, bar_fields, bar_rows()),
        "equity_snapshots": _load(EquitySnapshot, equity_fields, equity_rows()),
    }


def _analyze() -> None:
    models.database.obj.execute_sql("ANALYZE")


async def query_times(url: str, state_dir: Path, sizes: Sizes, *, analyze: bool
                      ) -> tuple[dict[str, int], float, list[list[str]]]:
    storage = SqlStorage(StorageConfig(url=url), state_dir=state_dir)
    await storage.open()
    try:
        start = time.perf_counter()
        counts = await storage.read(populate, sizes)
        if analyze:
            await storage.read(_analyze)
        load_seconds = time.perf_counter() - start

        per_symbol = sizes.trades // len(SYMBOLS)
        offset = min(5000, per_symbol // 2)
        day = END - dt.timedelta(days=1)
        day_ts = END_TS - DAY
        today = END - dt.timedelta(days=1)

        def check_page(answer: dict[str, Any]) -> str:
            return f"{len(answer['trades'])} rows of {answer['total_count']:,}"

        def check_candles(answer: dict[str, Any]) -> str:
            return f"{len(answer['data'])} candles ({answer['exchange']})"

        def check_performance(answer: dict[str, Any]) -> str:
            return (f"{answer['metrics']['total_trades']:,} trades, "
                    f"{len(answer['daily_breakdown'])} days")

        cases: list[tuple[str, Callable[..., Any], dict[str, Any], Callable[[Any], str]]] = [
            (f"trades page (ETHUSDT, limit 100, offset {offset})", queries.trades,
             {"symbol": "ETHUSDT", "limit": 100, "offset": offset}, check_page),
            (f"1m bars of {day} as 1h, exchange given", price_history,
             {"symbol": "BTCUSDT", "exchange": "sim_beta", "start_time": day_ts,
              "end_time": day_ts + DAY - 1, "interval": "1h"}, check_candles),
            (f"1m bars of {day} as 1h, exchange=None", price_history,
             {"symbol": "BTCUSDT", "start_time": day_ts, "end_time": day_ts + DAY - 1,
              "interval": "1h"}, check_candles),
            ("performance, period=month", queries.performance,
             {"period": "month", "today": today}, check_performance),
        ]
        rows = []
        for label, fn, kwargs, check in cases:
            times, answer = [], None
            for _ in range(sizes.runs):
                start = time.perf_counter()
                answer = await storage.read(fn, **kwargs)
                times.append(time.perf_counter() - start)
            rows.append([label, f"{median(times) * 1000:,.1f}", f"{min(times) * 1000:,.1f}",
                         f"{max(times) * 1000:,.1f}", check(answer)])
    finally:
        await storage.close()
    return counts, load_seconds, rows


# --- main ---------------------------------------------------------------------------------------


def _with_schema(url: str, schema: str) -> str:
    import psycopg2

    from arbotd_sql.config import parse_database_url

    target = parse_database_url(url, Path("."))
    params = {k: v for k, v in target.params.items() if k != "connect_timeout"}
    connection = psycopg2.connect(dbname=target.database, **params)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
    connection.close()
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


def run_backend(name: str, insert_url: str, query_url: str, state_dir: Path,
                sizes: Sizes) -> None:
    print(f"\n== {name} ==")
    insert_rows = trio.run(insert_rates, insert_url, state_dir, sizes)
    print("insert rate through the writer (first record_* call to flush() done), beside "
          "plain insert_many in one transaction:")
    print_table(["records", "rows", "writer rows/s", "baseline rows/s", "ratio"],
                insert_rows)
    counts, load_seconds, query_rows = trio.run(
        lambda: query_times(query_url, state_dir, sizes, analyze=name != "sqlite")
    )
    print(f"loaded in {load_seconds:.1f} s: "
          + ", ".join(f"{table} {count:,}" for table, count in counts.items()))
    print(f"query times through storage.read, {sizes.runs} runs each:")
    print_table(["query", "p50 ms", "min ms", "max ms", "answer"], query_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = QUICK if args.quick else FULL
    print(f"storage bench: insert {sizes.insert_signals:,} signals and "
          f"{sizes.insert_trades:,} trades; queries over {sizes.signals:,} signals, "
          f"{sizes.trades:,} trades, {sizes.days} days of 1m bars for {sizes.bar_symbols} "
          f"symbols x {len(EXCHANGES)} exchanges and of minute equity")

    with tempfile.TemporaryDirectory(prefix="arbotd-bench-sql-") as tmp:
        root = Path(tmp)
        run_backend("sqlite", f"sqlite:///{root / 'insert.db'}",
                    f"sqlite:///{root / 'query.db'}", root / "state", sizes)

        if args.no_postgres:
            print("\n== postgresql: skipped (--no-postgres) ==")
            return
        bindir = postgres_bindir()
        if bindir is None:
            print("\n== postgresql: skipped, no PostgreSQL binaries (initdb) found ==")
            return
        # A large WAL: the query phase loads over a million rows in big transactions.
        with throwaway_postgres(bindir, "arbot_bench", ("max_wal_size=4GB",), 60) as url:
            run_backend(f"postgresql {postgres_version(bindir)}",
                        _with_schema(url, "bench_insert"), _with_schema(url, "bench_query"),
                        root / "state", sizes)


if __name__ == "__main__":
    main()
