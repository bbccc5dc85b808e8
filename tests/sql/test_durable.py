"""Durable writes: a trade is on disk before its orders leave, ids come from reserved
blocks and are never given out twice, and the risk state comes back after a restart."""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
import pytest
from _storage_values import D, completed_lifecycle, planned, signal

from arbotd import DurableStorage, OrderStatus, StoredState, TradeState
from arbotd_sql import SqlStorage, StorageError
from arbotd_sql.models import OrderRecord, SignalRecord, TradeRecord

Make = Callable[..., SqlStorage]


async def test_the_storage_offers_durable_writes(make_storage: Make, database_url: str
                                                 ) -> None:
    assert isinstance(make_storage(database_url), DurableStorage)


async def test_a_committed_trade_is_stored_before_the_writer_runs(
    make_storage: Make, database_url: str
) -> None:
    # A writer that would wait a minute: only the commit can have written the trade.
    storage = make_storage(database_url, flush_interval_seconds=60.0)
    await storage.open()
    submitted = completed_lifecycle(5)[1]
    assert submitted.state is TradeState.SUBMITTED
    await storage.commit_trade(submitted, signal(submitted.signal_id, executed=True))

    row = await storage.read(lambda: TradeRecord.get_by_id(5))
    assert row.state == "submitted"
    orders = await storage.read(lambda: sorted(
        (o.client_order_id, o.status) for o in OrderRecord.select()))
    assert orders == [("arb5b", OrderStatus.NEW.value), ("arb5s", OrderStatus.NEW.value)]
    assert storage.backlog() == 0
    executed = await storage.read(lambda: [(s.id, s.executed) for s in SignalRecord.select()])
    assert executed == [(105, True)]
    state = await make_storage(database_url).open()
    assert [t.id for t in state.unfinished_trades] == [5]


async def test_a_committed_trade_comes_back_with_its_limit_prices(
    make_storage: Make, database_url: str
) -> None:
    """A crash after the orders left: reconciling needs the trade as it was sent."""
    storage = make_storage(database_url, flush_interval_seconds=60.0)
    await storage.open()
    submitted = attrs.evolve(completed_lifecycle(6)[1], buy_limit=D("65000.40"),
                             sell_limit=D("65099.90"))
    await storage.commit_trade(submitted, signal(submitted.signal_id, executed=True,
                                                 buy_limit=65_000.4, sell_limit=65_099.9))
    state = await make_storage(database_url).open()
    assert state.unfinished_trades == (submitted,)


async def test_reserved_ids_are_never_given_out_twice(make_storage: Make, database_url: str
                                                      ) -> None:
    storage = make_storage(database_url)
    await storage.open()
    storage.record_trade(completed_lifecycle(41)[-1])
    await storage.flush()
    first = await storage.reserve_ids("trade", 16)
    second = await storage.reserve_ids("trade", 16)
    assert (first, second) == (42, 58)
    await storage.close()
    # A restart continues after the last block, used or not.
    reopened = make_storage(database_url)
    state = await reopened.open()
    assert state.next_trade_id == 74
    assert await reopened.reserve_ids("trade", 1) == 74
    with pytest.raises(ValueError):
        await reopened.reserve_ids("trade", 0)


async def test_durable_writes_fail_clearly_when_the_database_is_not_open(
    make_storage: Make, database_url: str
) -> None:
    storage = make_storage(database_url)
    with pytest.raises(StorageError, match=r"trade 1.*not open"):
        await storage.commit_trade(planned(1))


async def test_the_risk_state_comes_back(make_storage: Make, database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    now = time.time()
    today = completed_lifecycle(1)[-1]
    today = attrs.evolve(today, completed_at=now - 1)
    yesterday = attrs.evolve(completed_lifecycle(2)[-1], completed_at=now - 86_400 * 2)
    backtest = attrs.evolve(completed_lifecycle(3, mode="backtest")[-1], completed_at=now - 1)
    for trade in (today, yesterday, backtest):
        storage.record_trade(trade)
    storage.record_signal(signal(10, timestamp=now - 4000))  # more than an hour ago
    recent = [signal(11, timestamp=now - 1800), signal(12, timestamp=now - 60,
                                                       executed=True)]
    for item in recent:
        storage.record_signal(item)
    storage.record_state("risk.equity_peak", 123_456.5)
    await storage.save_state("control.emergency_stop", {"since": now})
    await storage.save_state("gone", [1])
    await storage.save_state("gone", None)
    assert await storage.flush(10)
    await storage.close()

    state = await make_storage(database_url).open()
    assert state.trades_today == 1
    assert state.realized_today == today.realized_profit != D(0)
    assert [s.id for s in state.recent_signals] == [11, 12]
    assert state.recent_signals[1].executed and state.recent_signals[1].route == recent[1].route
    assert state.saved == {"risk.equity_peak": 123_456.5, "control.emergency_stop": {"since": now}}
    assert isinstance(state, StoredState)


async def test_a_failing_durable_write_makes_the_storage_unhealthy_until_one_succeeds(
    make_storage: Make, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from arbotd_sql.durable import DurableWrites

    storage = make_storage(database_url)
    await storage.open()
    once = DurableWrites._once

    def disk_full(self: DurableWrites, fn: object, args: tuple) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(DurableWrites, "_once", disk_full)
    with pytest.raises(StorageError, match="database or disk is full"):
        await storage.commit_trade(planned(1))
    assert not storage.healthy
    assert "database or disk is full" in storage.status()["last_error"]

    monkeypatch.setattr(DurableWrites, "_once", once)
    await storage.commit_trade(planned(1))
    assert storage.healthy and storage.status()["last_error"] is None
