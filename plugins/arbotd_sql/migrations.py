"""Creating the schema, and bringing an older database forward to the models' version.

A new database is created from the models as they are and stamped with
:data:`~arbotd_sql.models.SCHEMA_VERSION` (version 1 is every table of ``MODELS``). A
database stamped with an older version gets each missing step of :data:`MIGRATIONS`, in
order, each in its own transaction together with its new stamp, so a failed step leaves
the database at the version before it.

To change the schema: change the models, bump ``SCHEMA_VERSION`` to N, and add to
``MIGRATIONS`` a function N that does to an existing database what the change did to
the models, with ``playhouse.migrate`` operations::

    def _add_signal_venue_count(migrator: SchemaMigrator) -> None:
        migrate(migrator.add_column("signals", "venues", IntegerField(default=2)))

    MIGRATIONS = {2: _add_signal_venue_count}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from arbotd_sql.database import StorageError
from arbotd_sql.models import (
    MODELS,
    SCHEMA_VERSION,
    AuditEntry,
    ExactDecimalField,
    FillRecord,
    IdSequence,
    OrderRecord,
    SavedState,
    SchemaVersion,
    TradeRecord,
)
from arbotd_sql.records import rebuild_trade, trade_rows

__all__ = ["MIGRATIONS", "Migration", "migrate_schema", "schema_version"]

log = logging.getLogger(__name__)

Migration = Callable[[SchemaMigrator], None]



def _add_sequences_and_saved_state(migrator: SchemaMigrator) -> None:
    """Version 2: durable id blocks (``id_sequences``) and state kept across restarts
    (``saved_state``)."""
    migrator.database.create_tables([IdSequence, SavedState])


def _add_token_generations_and_audit(migrator: SchemaMigrator) -> None:
    """Version 3: a token generation per API user (revocation) and the audit log."""
    migrate(migrator.add_column("api_users", "token_generation",
                                peewee.IntegerField(default=0)))
    migrator.database.create_tables([AuditEntry])


def _add_filled_quantity_and_fee_value(migrator: SchemaMigrator) -> None:
    """Version 4: a trade's filled quantity and a fill's fee value, and every stored
    trade's figures computed again from its fills by the one definition
    (:mod:`arbotd.figures`): the slippage of earlier versions mixed net and gross."""
    migrate(
        migrator.add_column("trades", "filled_quantity", ExactDecimalField(null=True)),
        migrator.add_column("fills", "fee_value", ExactDecimalField(null=True)),
    )
    refigure_trades()


def _add_limit_prices(migrator: SchemaMigrator) -> None:
    """Version 5: the limit prices of signals and trades (the worst book levels a signal
    takes); rows written before keep ``NULL``, read as their (planned) prices."""
    migrate(
        migrator.add_column("signals", "buy_limit", peewee.DoubleField(null=True)),
        migrator.add_column("signals", "sell_limit", peewee.DoubleField(null=True)),
        migrator.add_column("trades", "buy_limit", ExactDecimalField(null=True)),
        migrator.add_column("trades", "sell_limit", ExactDecimalField(null=True)),
    )


def _add_signal_thresholds(migrator: SchemaMigrator) -> None:
    """Version 6: the threshold each signal was held to, and why (inventory skew)."""
    migrate(
        migrator.add_column("signals", "threshold", peewee.DoubleField(null=True)),
        migrator.add_column("signals", "threshold_reason",
                            peewee.CharField(max_length=160, null=True)),
    )


def _add_native_prices(migrator: SchemaMigrator) -> None:
    """Version 7: venues quoted in another currency: the native prices and rates of
    signals and trades, and what each fill cost in the venue's currency."""
    migrate(
        *(migrator.add_column("signals", name, peewee.DoubleField(null=True))
          for name in _NATIVE_COLUMNS),
        *(migrator.add_column("trades", name, ExactDecimalField(null=True))
          for name in _NATIVE_COLUMNS),
        migrator.add_column("fills", "native_price", ExactDecimalField(null=True)),
        migrator.add_column("fills", "native_asset", peewee.CharField(max_length=16, null=True)),
    )


_NATIVE_COLUMNS = ("buy_native_price", "sell_native_price", "buy_rate", "sell_rate")


def _add_order_rates(migrator: SchemaMigrator) -> None:
    """Version 8: live orders on venues quoted in another currency: the limit each order
    was sent with in the venue's currency, and the rate it was priced at (so that a trade
    reconciled after a restart converts its fills at the rates it was sent with)."""
    migrate(
        migrator.add_column("orders", "native_price", ExactDecimalField(null=True)),
        migrator.add_column("orders", "rate", ExactDecimalField(null=True)),
    )

MIGRATIONS: Mapping[int, Migration] = {
    2: _add_sequences_and_saved_state,
    3: _add_token_generations_and_audit,
    4: _add_filled_quantity_and_fee_value,
    5: _add_limit_prices,
    6: _add_signal_thresholds,
    7: _add_native_prices,
    8: _add_order_rates,
}
"""Version N -> the step from version N-1 to N. Version 1 is the first schema: no step."""

# Columns of ``trades`` added after version 4.
_AFTER_VERSION_4 = frozenset({"buy_limit", "sell_limit", *_NATIVE_COLUMNS})

# Columns of ``fills`` and ``orders`` added after version 4.
_FILLS_AFTER_VERSION_4 = frozenset({"native_price", "native_asset"})
_ORDERS_AFTER_VERSION_4 = frozenset({"native_price", "rate"})

# Any constant: PostgreSQL serialises two daemons (or a daemon and `arbotd user add`)
# that create the schema at the same time.
_PG_LOCK_KEY = 0x4172_626F_7464


def schema_version(database: peewee.Database) -> int | None:
    """The version a database is stamped with, ``None`` for one without the schema."""
    if not database.table_exists(SchemaVersion._meta.table_name):
        return None
    return SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar()


def migrate_schema(
    database: peewee.Database,
    *,
    target: int | None = None,
    migrations: Mapping[int, Migration] | None = None,
) -> tuple[int | None, int]:
    """Create or migrate the schema of ``database`` (connected, models bound to it) up to
    ``target`` (default: :data:`SCHEMA_VERSION`, with :data:`MIGRATIONS`); return the
    version found (``None``: created) and the version now.

    Raises :class:`StorageError` for a database newer than ``target`` (an older arbotd
    must not write into a schema it does not know) or a step that fails.
    """
    target = SCHEMA_VERSION if target is None else target
    migrations = MIGRATIONS if migrations is None else migrations
    with database.atomic():
        _lock(database)
        found = schema_version(database)
        if found is None:
            database.create_tables(MODELS)
            _stamp(target)
            log.info("created the database schema (version %d)", target)
            return None, target
    if found > target:
        raise StorageError(
            f"the database has schema version {found}, newer than this arbotd knows "
            f"({target}): upgrade arbotd, or point [storage] url at another database"
        )
    for version in range(found + 1, target + 1):
        step = migrations.get(version)
        if step is None:
            raise StorageError(f"no migration of the schema from version {version - 1} "
                               f"to {version}")
        try:
            with database.atomic():
                _lock(database)
                if schema_version(database) != version - 1:  # another process did it
                    continue
                step(SchemaMigrator.from_database(database))
                _stamp(version)
        except peewee.DatabaseError as err:
            raise StorageError(
                f"migrating the schema from version {version - 1} to {version} failed: {err}"
            ) from err
        log.info("migrated the database schema from version %d to %d", version - 1, version)
    return found, target


def _lock(database: peewee.Database) -> None:
    if isinstance(database, peewee.PostgresqlDatabase):
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))


def refigure_trades(batch: int = 500) -> int:
    """Write every stored trade's figures again from its orders and fills; returns how
    many trades there were."""
    fields = ("filled_quantity", "actual_buy_price", "actual_sell_price", "actual_profit",
              "fees_paid", "slippage")
    # Version 4 runs this on databases that lack later columns: select only its own.
    columns = [f for f in TradeRecord._meta.sorted_fields if f.name not in _AFTER_VERSION_4]
    fill_columns = [f for f in FillRecord._meta.sorted_fields
                    if f.name not in _FILLS_AFTER_VERSION_4]
    order_columns = [f for f in OrderRecord._meta.sorted_fields
                     if f.name not in _ORDERS_AFTER_VERSION_4]
    last, count = 0, 0
    while True:
        rows = list(TradeRecord.select(*columns).where(TradeRecord.id > last)
                    .order_by(TradeRecord.id).limit(batch))
        if not rows:
            return count
        ids = [row.id for row in rows]
        orders: dict[int, list[OrderRecord]] = {}
        for order in OrderRecord.select(*order_columns).where(OrderRecord.trade.in_(ids)):
            orders.setdefault(order.trade_id, []).append(order)
        fills: dict[int, list[FillRecord]] = {}
        for fill in FillRecord.select(*fill_columns).where(FillRecord.trade.in_(ids)):
            fills.setdefault(fill.trade_id, []).append(fill)
        for row in rows:
            trade = rebuild_trade(row, orders.get(row.id, []), fills.get(row.id, []))
            values, _, _ = trade_rows(trade)
            TradeRecord.update({getattr(TradeRecord, f): values[f] for f in fields}).where(
                TradeRecord.id == row.id).execute()
        last, count = ids[-1], count + len(ids)


def _stamp(version: int) -> None:
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=version, applied_at=time.time())
