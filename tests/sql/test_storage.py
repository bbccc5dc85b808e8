"""SqlStorage on SQLite and PostgreSQL, with the same assertions: every record round-trips,
a reopened database gives back the saved state, the writer batches, retention prunes
only market history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio
from _storage_values import (
    T0,
    D,
    completed_lifecycle,
    planned,
    quote,
    signal,
    unfinished_submitted,
    unwinding,
)

import arbotd
from arbotd import ArbotError, Balance, Ledger, Quote
from arbotd._interfaces import UserStore
from arbotd_sql import SqlStorage, StorageError, models
from arbotd_sql.models import (
    BalanceSnapshot,
    Bar,
    EquitySnapshot,
    FillRecord,
    Funding,
    OrderRecord,
    RawQuote,
    SignalRecord,
    TradeRecord,
)
from arbotd_sql.records import rebuild_trade

Make = Callable[..., SqlStorage]
SIGNAL_FIELDS = ("id", "timestamp", "symbol", "buy_exchange", "sell_exchange", "buy_price",
                 "sell_price", "quantity", "profit", "profit_percent", "spread_percent", "fees",
                 "confidence", "executed", "reject_reason", "buy_limit", "sell_limit",
                 "threshold", "threshold_reason", "buy_native_price", "sell_native_price",
                 "buy_rate", "sell_rate")


def rows(model: type[models.BaseModel], *order: Any) -> Callable[[], list[dict[str, Any]]]:
    """A read function: every row of ``model`` as dicts, in ``order``."""
    return lambda: list(model.select().order_by(*order).dicts())


async def test_the_storage_has_the_protocols_the_core_expects(make_storage: Make,
                                                             database_url: str) -> None:
    storage = make_storage(database_url)
    assert isinstance(storage, arbotd.Storage)
    assert isinstance(storage, UserStore)


async def test_signals_round_trip_and_the_latest_record_wins(make_storage: Make,
                                                             database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    signals = [signal(1), signal(2, executed=True), signal(3, reject_reason="cooldown"),
               signal(4, buy_price=65_000.3, buy_limit=65_000.5, sell_price=65_100.1,
                      sell_limit=65_099.9),
               # Bought on a venue quoted in KRW, at 1,350.5 KRW a USDT.
               signal(5, buy_price=65_000.3, buy_native_price=87_782_905.15,
                      buy_rate=1_350.5)]
    for item in signals:
        storage.record_signal(item)
    assert await storage.flush(10)
    signals[0] = attrs.evolve(signals[0], executed=True)
    storage.record_signal(signals[0])
    assert await storage.flush(10)

    stored = await storage.read(rows(SignalRecord, SignalRecord.id))
    assert stored == [{name: getattr(s, name) for name in SIGNAL_FIELDS} for s in signals]


async def test_a_trade_through_every_state_round_trips(make_storage: Make,
                                                       database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    steps = completed_lifecycle(1)
    storage.record_trade(steps[0])
    assert await storage.flush(10)
    first = await storage.read(rows(TradeRecord))
    assert first[0]["state"] == "planned"
    assert first[0]["fees_paid"] == 0
    assert first[0]["actual_buy_price"] is first[0]["actual_profit"] is None

    for step in steps[1:]:
        storage.record_trade(step)
        assert await storage.flush(10)

    [row] = await storage.read(rows(TradeRecord))
    # By hand: buys 0.004 @ 65000.10 + 0.003 @ 65000.30 + hedge 0.003 @ 65010.00,
    # sells 0.010 @ 65100.20; fees 0.000007 BTC at their fill prices + 0.651002 + 0.19503.
    assert row["state"] == "completed"
    assert row["actual_buy_price"] == D("65003.13")
    assert row["actual_sell_price"] == D("65100.20")
    assert row["fees_paid"] == D("1.3010333")
    assert row["actual_profit"] == D("-0.3303333")
    # Price slippage: the buys paid 0.20 and 9.90 above the plan for 0.003 each; the sell
    # got its planned price.
    assert row["slippage"] == D("0.20") * D("0.003") + D("9.90") * D("0.003") == D("0.0303")
    assert row["quantity"] == row["filled_quantity"] == D("0.010")
    assert row["completed_at"] == T0 + 3.5
    orders = await storage.read(rows(OrderRecord, OrderRecord.position))
    assert [(o["client_order_id"], o["status"], o["purpose"]) for o in orders] == [
        ("arb1b", "partially_filled", "entry"),
        ("arb1s", "filled", "entry"),
        ("arb1h", "filled", "hedge"),
    ]
    fills = await storage.read(rows(FillRecord, FillRecord.position))
    assert [(f["order_id"], f["seq"]) for f in fills] == [
        ("arb1b", 0), ("arb1b", 1), ("arb1s", 0), ("arb1h", 0)
    ]

    def rebuild() -> arbotd.Trade:
        return rebuild_trade(TradeRecord.get_by_id(1), list(OrderRecord.select()),
                             list(FillRecord.select()))

    assert await storage.read(rebuild) == steps[-1]


async def test_a_trade_s_limit_prices_round_trip(make_storage: Make,
                                                 database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    trade = attrs.evolve(completed_lifecycle(1)[-1], buy_limit=D("65000.40"),
                         sell_limit=D("65099.90"))
    storage.record_trade(trade)
    assert await storage.flush(10)
    [row] = await storage.read(rows(TradeRecord))
    assert (row["buy_limit"], row["sell_limit"]) == (D("65000.40"), D("65099.90"))

    def rebuild() -> arbotd.Trade:
        return rebuild_trade(TradeRecord.get_by_id(1), list(OrderRecord.select()),
                             list(FillRecord.select()))

    assert await storage.read(rebuild) == trade


async def test_recording_a_trade_many_times_never_doubles_a_fill(make_storage: Make,
                                                                 database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    steps = completed_lifecycle(1)
    for step in steps:  # several times in one batch, and again in later batches
        storage.record_trade(step)
        storage.record_trade(step)
    for step in steps[2:]:
        storage.record_trade(step)
        assert await storage.flush(10)
    storage.record_trade(steps[-1])
    assert await storage.flush(10)
    count = await storage.read(lambda: FillRecord.select().count())
    assert count == len(steps[-1].fills) == 4


async def test_a_reopened_database_gives_back_the_saved_state(make_storage: Make,
                                                              database_url: str) -> None:
    storage = make_storage(database_url)
    fresh = await storage.open()
    assert fresh.day is not None
    assert attrs.evolve(fresh, day=None) == arbotd.StoredState()
    for signal_id in (1, 2, 7):
        storage.record_signal(signal(signal_id))
    completed = completed_lifecycle(1)[-1]
    hedged = completed_lifecycle(2)[-2]  # orders b, s, h: not in client id order
    crashed = unfinished_submitted(3)
    unwound = unwinding(4)
    waiting = planned(5)
    live = completed_lifecycle(6, mode="live")[-1]
    for trade in (completed, hedged, crashed, unwound, waiting, live):
        storage.record_trade(trade)
    funding = [("sim_alpha", "USDT", D("10000")), ("sim_beta", "BTC", D("1.5")),
               ("sim_beta", "USDT", D("250.25")), ("sim_beta", "USDT", D("249.75"))]
    for exchange, asset, amount in funding:
        storage.record_funding(exchange, asset, amount, T0)
    assert await storage.flush(10)
    stored = await storage.read(rows(Funding, Funding.id))
    assert [(r["exchange"], r["asset"], r["amount"], r["timestamp"]) for r in stored] == [
        (*item, T0) for item in funding
    ]
    await storage.close()

    state = await make_storage(database_url).open()

    assert state.next_signal_id == 107  # trade 6 came from signal 106
    assert state.next_trade_id == 7
    assert state.unfinished_trades == (hedged, crashed, unwound, waiting)
    assert state.starting == {("sim_alpha", "USDT"): D("10000"), ("sim_beta", "BTC"): D("1.5"),
                              ("sim_beta", "USDT"): D("500.00")}
    ledger = Ledger()
    for (exchange, asset), amount in state.starting.items():
        ledger.set_balance(exchange, asset, amount)
    for trade in (completed, hedged, crashed, unwound, waiting):  # the live trade left out
        for fill in trade.fills:
            ledger.apply_fill(fill)
    assert state.balances == {(b.exchange, b.asset): b.total for b in ledger.balances()}
    assert state.balances[("sim_alpha", "BTC")] == D("0.039986")


async def test_equity_and_balance_snapshots_round_trip(make_storage: Make,
                                                       database_url: str) -> None:
    storage = make_storage(database_url, mode="backtest")
    await storage.open()
    balances = [Balance("sim_alpha", "USDT", D("100.50"), D("2.25")),
                Balance("sim_beta", "BTC", D("0.0100000001"))]
    storage.record_equity(T0 + 60.5, 12_345.678, balances)
    assert await storage.flush(10)
    [equity] = await storage.read(rows(EquitySnapshot))
    assert equity == {"id": equity["id"], "timestamp": T0 + 60.5, "mode": "backtest",
                      "equity_usd": 12_345.678}
    stored = await storage.read(rows(BalanceSnapshot, BalanceSnapshot.id))
    assert [(r["timestamp"], r["exchange"], r["asset"], r["free"], r["locked"])
            for r in stored] == [
        (T0 + 60.5, "sim_alpha", "USDT", D("100.50"), D("2.25")),
        (T0 + 60.5, "sim_beta", "BTC", D("0.0100000001"), D("0")),
    ]


def bar_rows() -> list[tuple[Any, ...]]:
    query = Bar.select().order_by(Bar.symbol, Bar.exchange, Bar.minute)
    return [(b.symbol, b.exchange, b.minute - int(T0), b.open, b.high, b.low, b.close, b.volume)
            for b in query]


async def test_quotes_fold_into_one_minute_bars_of_the_mid_price(make_storage: Make,
                                                                 database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    quotes = [quote("sim_alpha", "BTCUSDT", mid, T0 + at)
              for mid, at in ((100, 1), (105, 20), (98, 30), (101, 59.999), (102, 60), (99, 61),
                              (110, 185))]  # minute 2 has no quote
    quotes += [quote("sim_beta", "ETHUSDT", mid, T0 + at)
               for mid, at in ((3000, 5), (3010, 65), (3005, 70))]
    # A one-sided book has no mid price.
    quotes.append(Quote("sim_alpha", "BTCUSDT", 0.0, 200.0, 0, 1, T0 + 40, T0 + 40))
    for item in sorted(quotes, key=lambda q: q.received_ts):
        storage.observe_quote(item)
    await storage.close()  # the minute in progress is written too

    storage = make_storage(database_url)
    await storage.open()
    assert await storage.read(bar_rows) == [
        ("BTCUSDT", "sim_alpha", 0, 100, 105, 98, 101, 0),
        ("BTCUSDT", "sim_alpha", 60, 102, 102, 99, 99, 0),
        ("BTCUSDT", "sim_alpha", 180, 110, 110, 110, 110, 0),
        ("ETHUSDT", "sim_beta", 0, 3000, 3000, 3000, 3000, 0),
        ("ETHUSDT", "sim_beta", 60, 3010, 3010, 3005, 3005, 0),
    ]
    # Restarted within minute 3: the new quotes merge into the bar already stored.
    storage.observe_quote(quote("sim_alpha", "BTCUSDT", 120, T0 + 190))
    storage.observe_quote(quote("sim_alpha", "BTCUSDT", 90, T0 + 200))
    assert await storage.flush(10)
    storage.observe_quote(quote("sim_alpha", "BTCUSDT", 95, T0 + 210))
    assert await storage.flush(10)
    bars = await storage.read(bar_rows)
    assert bars[2] == ("BTCUSDT", "sim_alpha", 180, 110, 120, 90, 95, 0)


@pytest.mark.parametrize("record_quotes", [True, False])
async def test_raw_quotes_are_recorded_only_when_asked(make_storage: Make, database_url: str,
                                                       record_quotes: bool) -> None:
    storage = make_storage(database_url, record_quotes=record_quotes)
    await storage.open()
    quotes = [quote("sim_alpha", "BTCUSDT", 65_000 + i * 0.25, T0 + i * 0.5) for i in range(5)]
    for item in quotes:
        storage.observe_quote(item)
    assert await storage.flush(10)
    stored = await storage.read(rows(RawQuote, RawQuote.id))
    # The storage records the best level (a book's deeper levels are not kept).
    left_out = ("bids", "asks", "native_bid", "native_ask", "rate_bid", "rate_ask", "rate_ts")
    expected = [attrs.asdict(q, filter=lambda field, _: field.name not in left_out)
                for q in quotes] if record_quotes else []
    assert [{k: v for k, v in r.items() if k != "id"} for r in stored] == expected


async def test_api_users(make_storage: Make, database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    await storage.add_user("alice", "scrypt$hash-a", "trading")
    await storage.add_user("bob", "scrypt$hash-b", "read")
    with pytest.raises(ArbotError, match="'alice' already exists"):
        await storage.add_user("alice", "scrypt$other", "read")
    with pytest.raises(ArbotError, match="scope"):
        await storage.add_user("carol", "scrypt$hash-c", "admin")

    users = await storage.list_users()
    assert [(u["username"], u["scope"]) for u in users] == [("alice", "trading"), ("bob", "read")]
    assert all(set(u) == {"username", "scope", "created_at", "token_generation"}
               for u in users)
    alice = await storage.get_user("alice")
    assert alice is not None
    assert alice["password_hash"] == "scrypt$hash-a"
    assert alice["scope"] == "trading"
    assert alice["token_generation"] == 0
    assert await storage.get_user("nobody") is None


async def test_api_users_are_changed_and_removed(make_storage: Make,
                                                 database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    await storage.add_user("alice", "scrypt$hash-a", "trading")
    await storage.add_user("bob", "scrypt$hash-b", "read")

    # A new password revokes the tokens issued before it, in the same transaction.
    assert await storage.set_password("bob", "scrypt$new") == 1
    bob = await storage.get_user("bob")
    assert bob is not None and bob["password_hash"] == "scrypt$new"
    assert bob["token_generation"] == 1
    assert await storage.revoke_tokens("bob") == 2
    assert await storage.revoke_tokens("alice") == 1
    await storage.set_scope("bob", "trading")
    assert [(u["username"], u["scope"], u["token_generation"])
            for u in await storage.list_users()] == [("alice", "trading", 1),
                                                     ("bob", "trading", 2)]
    with pytest.raises(ArbotError, match="scope"):
        await storage.set_scope("bob", "admin")

    await storage.remove_user("alice")
    assert await storage.get_user("alice") is None
    assert [u["username"] for u in await storage.list_users()] == ["bob"]

    for change in (storage.remove_user("nobody"), storage.set_password("nobody", "x"),
                   storage.revoke_tokens("nobody"), storage.set_scope("nobody", "read")):
        with pytest.raises(ArbotError, match="no user 'nobody'"):
            await change


async def test_the_writer_writes_in_few_large_batches(make_storage: Make,
                                                      database_url: str) -> None:
    storage = make_storage(database_url, flush_interval_seconds=5.0, flush_max_rows=500)
    await storage.open()
    for signal_id in range(1, 2001):
        storage.record_signal(signal(signal_id))
    assert await storage.flush(30)
    assert storage.writer.records_written == 2000
    # 500 records a transaction; at most the flush cuts one batch short.
    assert storage.writer.batches_written <= 5
    assert await storage.read(lambda: SignalRecord.select().count()) == 2000
    assert storage.backlog() == 0


async def test_retention_prunes_old_bars_and_raw_quotes_and_keeps_trades(
    make_storage: Make, database_url: str
) -> None:
    storage = make_storage(database_url, record_quotes=True, max_history_days=2)
    await storage.open()
    old = T0 - 3 * 86_400
    for at in (old, old + 60, T0, T0 + 60):
        storage.observe_quote(quote("sim_alpha", "BTCUSDT", 100.0, at))
    storage.record_signal(signal(1, timestamp=old))
    storage.record_trade(attrs.evolve(completed_lifecycle(1)[-1], started_at=old))
    assert await storage.flush(10)

    assert await storage.prune_history(now=T0 + 120) == 4  # 2 bars, 2 raw quotes

    assert [b[2] for b in await storage.read(bar_rows)] == [0, 60]
    assert await storage.read(lambda: RawQuote.select().count()) == 2
    assert await storage.read(lambda: SignalRecord.select().count()) == 1
    assert await storage.read(lambda: TradeRecord.select().count()) == 1
    assert await storage.read(lambda: FillRecord.select().count()) == 4


async def test_the_writer_runs_retention_by_itself(make_storage: Make,
                                                   database_url: str) -> None:
    storage = make_storage(database_url, max_history_days=1, retention_interval=0.05)
    await storage.open()
    for at in (T0 - 2 * 86_400, T0, T0 + 60):  # the latest quote's time is "now"
        storage.observe_quote(quote("sim_alpha", "BTCUSDT", 100.0, at))
    assert await storage.flush(10)
    with trio.fail_after(10):
        while len(await storage.read(bar_rows)) != 2:
            await trio.sleep(0.02)


async def test_reads_that_fail_raise_storage_error(make_storage: Make,
                                                   database_url: str) -> None:
    storage = make_storage(database_url)
    with pytest.raises(StorageError, match="not open"):
        await storage.read(lambda: None)
    await storage.open()
    with pytest.raises(StorageError, match="no_such_table"):
        await storage.read(lambda: models.database.execute_sql("SELECT * FROM no_such_table"))
    assert await storage.read(lambda: SignalRecord.select().count()) == 0


async def test_a_trade_on_a_krw_venue_keeps_its_native_prices_and_books_krw(
        make_storage: Make, database_url: str) -> None:
    """Bought on a venue quoted in KRW: the fill's price is in USDT at the rate used, its
    native price and fee in KRW; restored balances move KRW there, not USDT."""
    storage = make_storage(database_url)
    await storage.open()
    trade = attrs.evolve(planned(1), buy_exchange="sim_won",
                         buy_native_price=D("87782905.15"), buy_rate=D("1350.5"))
    order = arbotd.Order("arb1b", 1, "sim_won", "BTCUSDT", arbotd.Side.BUY,
                         D("65000.30"), D("0.010"), status=arbotd.OrderStatus.FILLED,
                         filled_quantity=D("0.010"))
    fill = arbotd.Fill("arb1b", 1, "sim_won", "BTCUSDT", arbotd.Side.BUY, D("65000.3"),
                       D("0.010"), fee=D("877.8290515"), fee_asset="KRW", timestamp=T0,
                       fee_value=D("0.65"), native_price=D("87782905.15"),
                       native_asset="KRW")
    trade = trade.advance(arbotd.TradeState.SUBMITTED, orders=(order,)).with_fills(fill)
    storage.record_funding("sim_won", "KRW", D("13505000"), T0)
    storage.record_trade(trade)
    assert await storage.flush(10)

    def rebuild() -> arbotd.Trade:
        return rebuild_trade(TradeRecord.get_by_id(1), list(OrderRecord.select()),
                             list(FillRecord.select()))

    assert await storage.read(rebuild) == trade
    await storage.close()
    state = await make_storage(database_url).open()
    # 13,505,000 - 0.01 x 87,782,905.15 - 877.8290515 KRW
    assert state.balances[("sim_won", "KRW")] == D("12626293.1194485")
    assert state.balances[("sim_won", "BTC")] == D("0.010")
    assert ("sim_won", "USDT") not in state.balances
