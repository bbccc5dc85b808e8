"""The schema: created at the current version, older databases migrated forward with
their data, and a database newer than the code refused."""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs
import peewee
import pytest
from _storage_values import T0, D, completed_lifecycle, signal
from playhouse.migrate import SchemaMigrator, migrate

from arbotd import Trade
from arbotd.figures import trade_figures
from arbotd_sql import SqlStorage, StorageError, migrations, models, queries
from arbotd_sql.migrations import schema_version
from arbotd_sql.models import (
    MODELS,
    SCHEMA_VERSION,
    FillRecord,
    OrderRecord,
    SchemaVersion,
    SignalRecord,
    TradeRecord,
)
from arbotd_sql.records import rebuild_trade
from arbotd_sql.state import _signals_since

Make = Callable[..., SqlStorage]


def _version() -> int | None:
    return schema_version(models.database)


def _columns(table: str) -> Callable[[], list[str]]:
    return lambda: [c.name for c in models.database.get_columns(table)]


def _indexed(table: str) -> Callable[[], list[list[str]]]:
    return lambda: [index.columns for index in models.database.get_indexes(table)]


async def test_a_new_database_gets_every_table_at_the_current_version(
    make_storage: Make, database_url: str
) -> None:
    storage = make_storage(database_url)
    await storage.open()
    assert await storage.read(_version) == SCHEMA_VERSION
    tables = set(await storage.read(models.database.get_tables))
    assert {model._meta.table_name for model in MODELS} <= tables


def _add_note_and_index(migrator: SchemaMigrator) -> None:
    """What a next version could be: a column and an index the previous schema lacked."""
    migrate(
        migrator.add_column("signals", "note", peewee.TextField(null=True)),
        migrator.add_index("trades", ("mode", "state"), False),
    )


async def test_an_older_database_is_migrated_and_keeps_its_data(
    make_storage: Make, database_url: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="arbotd_sql")
    # The previous release's database: the current version, with data.
    old = make_storage(database_url)
    await old.open()
    for signal_id in (1, 2, 3):
        old.record_signal(signal(signal_id))
    trade = completed_lifecycle(1)[-1]
    old.record_trade(trade)
    old.record_funding("sim_alpha", "USDT", D("10000"), T0)
    await old.close()

    # The next release.
    following = SCHEMA_VERSION + 1
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", following)
    monkeypatch.setattr(migrations, "MIGRATIONS", {following: _add_note_and_index})
    new = make_storage(database_url)
    state = await new.open()

    assert await new.read(_version) == following
    assert "note" in await new.read(_columns("signals"))
    assert ["mode", "state"] in await new.read(_indexed("trades"))
    assert state.next_signal_id == 102 and state.next_trade_id == 2
    assert state.starting == {("sim_alpha", "USDT"): D("10000")}
    ids = await new.read(lambda: [s.id for s in SignalRecord.select().order_by(SignalRecord.id)])
    assert ids == [1, 2, 3]
    row = await new.read(lambda: TradeRecord.get_by_id(1))
    assert (row.state, row.actual_profit) == ("completed", trade.realized_profit)
    await new.close()

    again = make_storage(database_url)  # already at the new version: nothing to do
    await again.open()
    assert await again.read(_version) == following
    assert len([r for r in caplog.records if "migrated" in r.getMessage()]) == 1


def _fails_halfway(migrator: SchemaMigrator) -> None:
    migrate(
        migrator.add_column("signals", "note", peewee.TextField(null=True)),
        migrator.add_column("no_such_table", "x", peewee.TextField(null=True)),
    )


async def test_a_failed_migration_leaves_the_database_as_it_was(
    make_storage: Make, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = make_storage(database_url)
    await old.open()
    old.record_signal(signal(1))
    await old.close()

    following = SCHEMA_VERSION + 1
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", following)
    monkeypatch.setattr(migrations, "MIGRATIONS", {following: _fails_halfway})
    with pytest.raises(StorageError,
                       match=f"from version {SCHEMA_VERSION} to {following} failed"):
        await make_storage(database_url).open()

    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION)
    storage = make_storage(database_url)
    assert (await storage.open()).next_signal_id == 2
    assert await storage.read(_version) == SCHEMA_VERSION
    assert "note" not in await storage.read(_columns("signals"))


async def test_a_missing_step_is_an_error(make_storage: Make, database_url: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_storage(database_url)
    await first.open()
    await first.close()
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(migrations, "MIGRATIONS", {})
    with pytest.raises(StorageError, match=f"no migration of the schema from version "
                                           f"{SCHEMA_VERSION} to {SCHEMA_VERSION + 1}"):
        await make_storage(database_url).open()


async def test_a_database_newer_than_this_arbotd_is_refused(make_storage: Make,
                                                            database_url: str) -> None:
    storage = make_storage(database_url)
    await storage.open()
    await storage.read(lambda: SchemaVersion.update(version=SCHEMA_VERSION + 1).execute())
    await storage.close()
    with pytest.raises(StorageError, match="newer than this arbotd knows"):
        await make_storage(database_url).open()


async def test_a_version_1_database_is_brought_to_the_current_version(
    make_storage: Make, database_url: str
) -> None:
    """The first release's schema (no ``id_sequences``, ``saved_state``, ``audit_log``, no
    token generation) is brought to the current version with its trades and users; ids
    continue after the trades it holds."""
    old = make_storage(database_url)
    await old.open()
    for trade_id in (1, 2, 3):
        old.record_trade(completed_lifecycle(trade_id)[-1])
    await old.flush()

    def downgrade() -> None:
        models.database.drop_tables([models.IdSequence, models.SavedState,
                                     models.AuditEntry])
        migrator = SchemaMigrator.from_database(models.database)
        migrate(migrator.drop_column("api_users", "token_generation"),
                migrator.drop_column("trades", "filled_quantity"),
                migrator.drop_column("fills", "fee_value"),
                *_drop_columns_after(4, migrator))
        # What version 1 wrote as a trade's slippage: planned minus (net + fees).
        models.database.execute_sql("UPDATE trades SET slippage = '-1'")
        models.database.execute_sql(
            "INSERT INTO api_users (username, password_hash, scope, created_at) "
            f"VALUES ('alice', 'hash', 'read', {T0})")
        SchemaVersion.update(version=1).execute()

    await old.read(downgrade)
    await old.close()

    storage = make_storage(database_url)
    await storage.open()
    assert await storage.read(_version) == SCHEMA_VERSION
    assert await storage.read(lambda: [(u.username, u.token_generation)
                                       for u in models.ApiUser.select()]) == [("alice", 0)]
    assert "audit_log" in await storage.read(models.database.get_tables)
    # Every trade's figures were computed again from its fills.
    rows = await storage.read(lambda: [(t.id, t.filled_quantity, t.slippage)
                                       for t in TradeRecord.select().order_by(TradeRecord.id)])
    expected = completed_lifecycle(1)[-1]
    assert [r[1] for r in rows] == [D("0.010")] * 3
    assert rows[0][2] == trade_figures(expected).slippage != D(-1)
    assert await storage.reserve_ids("trade", 5) == 4
    await storage.save_state("control.emergency_stop", {"since": T0})
    await storage.close()
    reopened = make_storage(database_url)
    state = await reopened.open()
    assert state.saved == {"control.emergency_stop": {"since": T0}}
    assert await reopened.reserve_ids("trade", 5) == 9


_ADDED_IN = {
    5: [(table, column) for table in ("signals", "trades")
        for column in ("buy_limit", "sell_limit")],
    6: [("signals", "threshold"), ("signals", "threshold_reason")],
    7: [(table, column) for table in ("signals", "trades")
        for column in ("buy_native_price", "sell_native_price", "buy_rate", "sell_rate")]
       + [("fills", "native_price"), ("fills", "native_asset")],
    8: [("orders", "native_price"), ("orders", "rate")],
}


def _drop_columns_after(version: int, migrator: SchemaMigrator) -> list:
    """What the versions after ``version`` added."""
    return [migrator.drop_column(table, column)
            for added, columns in _ADDED_IN.items() if added > version
            for table, column in columns]


async def test_a_version_4_database_gets_limit_prices_that_fall_back_to_the_prices(
    make_storage: Make, database_url: str
) -> None:
    old = make_storage(database_url)
    await old.open()
    old.record_signal(signal(1))
    trade = completed_lifecycle(1)[-1]
    old.record_trade(trade)
    await old.flush()

    def downgrade() -> None:
        migrate(*_drop_columns_after(4, SchemaMigrator.from_database(models.database)))
        SchemaVersion.update(version=4).execute()

    await old.read(downgrade)
    await old.close()

    storage = make_storage(database_url)
    await storage.open()
    assert await storage.read(_version) == SCHEMA_VERSION
    for table in ("signals", "trades"):
        assert {"buy_limit", "sell_limit"} <= set(await storage.read(_columns(table)))
    # Rows written before limits were kept read as their (planned) prices.
    [restored] = await storage.read(lambda: _signals_since(0.0))
    assert (restored.buy_limit, restored.sell_limit) == (65_000.1, 65_100.2)
    answer = await storage.read(lambda: queries.signals())
    [listed] = answer["signals"]
    assert (listed["buy_limit"], listed["sell_limit"]) == (65_000.1, 65_100.2)
    detail = await storage.read(lambda: queries.trade(1))
    assert (detail["buy_limit"], detail["sell_limit"]) == (65_000.10, 65_100.20)

    def rebuild() -> Trade:
        return rebuild_trade(TradeRecord.get_by_id(1), list(OrderRecord.select()),
                             list(FillRecord.select()))

    rebuilt = await storage.read(rebuild)
    assert rebuilt == trade
    assert (rebuilt.buy_limit, rebuilt.sell_limit) == (D("65000.10"), D("65100.20"))
    await storage.close()


async def test_a_version_5_database_gets_signal_thresholds_left_unknown(
    make_storage: Make, database_url: str
) -> None:
    old = make_storage(database_url)
    await old.open()
    old.record_signal(signal(1))
    await old.flush()

    def downgrade() -> None:
        migrate(*_drop_columns_after(5, SchemaMigrator.from_database(models.database)))
        SchemaVersion.update(version=5).execute()

    await old.read(downgrade)
    await old.close()

    storage = make_storage(database_url)
    await storage.open()
    assert await storage.read(_version) == SCHEMA_VERSION
    assert {"threshold", "threshold_reason"} <= set(await storage.read(_columns("signals")))
    [listed] = (await storage.read(lambda: queries.signals()))["signals"]
    assert (listed["threshold"], listed["threshold_reason"]) == (None, None)
    storage.record_signal(attrs.evolve(signal(2), threshold=0.0015,
                                       threshold_reason="min_profit_threshold"))
    await storage.flush()
    restored = (await storage.read(lambda: _signals_since(0.0)))[-1]
    assert (restored.threshold, restored.threshold_reason) == (
        0.0015, "min_profit_threshold")
    await storage.close()


async def test_a_version_7_database_gets_order_rates_and_keeps_its_orders(
    make_storage: Make, database_url: str
) -> None:
    old = make_storage(database_url)
    await old.open()
    old.record_trade(completed_lifecycle(1)[-1])
    await old.flush()

    def downgrade() -> None:
        migrate(*_drop_columns_after(7, SchemaMigrator.from_database(models.database)))
        SchemaVersion.update(version=7).execute()

    await old.read(downgrade)
    await old.close()

    storage = make_storage(database_url)
    await storage.open()
    assert await storage.read(_version) == SCHEMA_VERSION
    assert {"native_price", "rate"} <= set(await storage.read(_columns("orders")))
    legs = (await storage.read(lambda: queries.trade(1)))["legs"]
    assert legs and all((leg["native_price"], leg["rate"]) == (None, None) for leg in legs)
    # An order on a venue quoted in KRW keeps the limit it was sent with and its rate.
    trade = completed_lifecycle(2)[-1]
    first = attrs.evolve(trade.orders[0], native_price=D("87750000"), rate=D("1350.5"))
    storage.record_trade(attrs.evolve(trade, orders=(first, *trade.orders[1:])))
    await storage.flush()
    [leg, *_] = (await storage.read(lambda: queries.trade(2)))["legs"]
    assert (leg["native_price"], leg["rate"]) == (87_750_000.0, 1350.5)

    def rebuild() -> Trade:
        return rebuild_trade(TradeRecord.get_by_id(2), list(OrderRecord.select().where(
            OrderRecord.trade == 2)), list(FillRecord.select().where(FillRecord.trade == 2)))

    assert (await storage.read(rebuild)).orders[0].rate == D("1350.5")
    await storage.close()
