"""The database schema (peewee models), the same on SQLite and PostgreSQL.

Money that is accounted for (fills, fees, profits, balances) is stored as decimal text so
that it round-trips exactly on both backends; prices and sizes of signals, bars and raw
quotes are floats (they are floats in the engine too). Times are seconds since the epoch
(UTC) as floats, indexed where queries filter on them. Floats are ``DoubleField``: peewee
maps ``FloatField`` to ``REAL``, which PostgreSQL stores in single precision (a timestamp
would lose minutes).

Every model binds to :data:`database`, a :class:`peewee.DatabaseProxy` that the storage
initialises with the configured database.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import peewee

__all__ = [
    "MODELS",
    "SCHEMA_VERSION",
    "ApiUser",
    "AuditEntry",
    "BalanceSnapshot",
    "Bar",
    "EquitySnapshot",
    "ExactDecimalField",
    "FillRecord",
    "Funding",
    "IdSequence",
    "OrderRecord",
    "RawQuote",
    "SavedState",
    "SchemaVersion",
    "SignalRecord",
    "TradeRecord",
    "database",
]

SCHEMA_VERSION = 8
"""The version the models describe; migrations in ``migrations.py`` bring an older
database up to it."""

database = peewee.DatabaseProxy()


class ExactDecimalField(peewee.TextField):
    """A :class:`~decimal.Decimal` stored as its exact text."""

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return str(value if isinstance(value, Decimal) else Decimal(str(value)))

    def python_value(self, value: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """One row: the schema version of this database."""

    version = peewee.IntegerField()
    applied_at = peewee.DoubleField()


class SignalRecord(BaseModel):
    """``Signal``: an opportunity found, executed or not. ``buy_price``/``sell_price``
    are the volume-weighted prices of ``quantity``, ``buy_limit``/``sell_limit`` the
    worst book levels it takes (``NULL`` in rows written before version 5: the prices)."""

    id = peewee.BigIntegerField(primary_key=True)
    timestamp = peewee.DoubleField(index=True)
    symbol = peewee.CharField(max_length=32, index=True)
    buy_exchange = peewee.CharField(max_length=32)
    sell_exchange = peewee.CharField(max_length=32)
    buy_price = peewee.DoubleField()
    sell_price = peewee.DoubleField()
    quantity = peewee.DoubleField()
    profit = peewee.DoubleField()
    profit_percent = peewee.DoubleField()
    spread_percent = peewee.DoubleField()
    fees = peewee.DoubleField()
    confidence = peewee.DoubleField()
    executed = peewee.BooleanField(index=True)
    reject_reason = peewee.CharField(max_length=64, null=True)
    buy_limit = peewee.DoubleField(null=True)
    sell_limit = peewee.DoubleField(null=True)
    # The threshold the signal was held to and why (version 6; NULL before, or when the
    # strategy did not say).
    threshold = peewee.DoubleField(null=True)
    threshold_reason = peewee.CharField(max_length=160, null=True)
    # A leg on a venue quoted in another currency (version 7; NULL otherwise): its
    # price in that currency and the rate it was converted at (arbotd.fx).
    buy_native_price = peewee.DoubleField(null=True)
    sell_native_price = peewee.DoubleField(null=True)
    buy_rate = peewee.DoubleField(null=True)
    sell_rate = peewee.DoubleField(null=True)

    class Meta:
        table_name = "signals"


class TradeRecord(BaseModel):
    """``Trade``: the latest state of a trade, with its figures (:mod:`arbotd.figures`).

    ``quantity`` is the planned quantity, ``filled_quantity`` the quantity arbitraged so
    far; ``actual_buy_price``/``actual_sell_price`` are volume-weighted over the entry and
    hedge fills; ``fees_paid`` the fees so far; ``actual_profit`` the net result once the
    trade is final (``None`` before); ``slippage`` the price slippage of both legs
    (positive: worse than planned) against the planned prices, the signal's
    volume-weighted ones. ``buy_limit``/``sell_limit`` are the entry orders' limit
    prices before the tolerance (``NULL`` in rows written before version 5: the planned
    prices).
    """

    id = peewee.BigIntegerField(primary_key=True)
    signal_id = peewee.BigIntegerField(index=True)
    mode = peewee.CharField(max_length=16)
    symbol = peewee.CharField(max_length=32, index=True)
    buy_exchange = peewee.CharField(max_length=32)
    sell_exchange = peewee.CharField(max_length=32)
    quantity = ExactDecimalField()
    filled_quantity = ExactDecimalField(null=True)
    planned_buy_price = ExactDecimalField()
    planned_sell_price = ExactDecimalField()
    planned_profit = ExactDecimalField()
    buy_limit = ExactDecimalField(null=True)
    sell_limit = ExactDecimalField(null=True)
    # The signal's native prices and rates (version 7; NULL for same-currency legs).
    buy_native_price = ExactDecimalField(null=True)
    sell_native_price = ExactDecimalField(null=True)
    buy_rate = ExactDecimalField(null=True)
    sell_rate = ExactDecimalField(null=True)
    actual_buy_price = ExactDecimalField(null=True)
    actual_sell_price = ExactDecimalField(null=True)
    actual_profit = ExactDecimalField(null=True)
    fees_paid = ExactDecimalField(null=True)
    slippage = ExactDecimalField(null=True)
    state = peewee.CharField(max_length=24, index=True)
    reason = peewee.TextField(null=True)
    started_at = peewee.DoubleField(index=True)
    completed_at = peewee.DoubleField(null=True, index=True)

    class Meta:
        table_name = "trades"


class OrderRecord(BaseModel):
    """``Order``: one order of a trade (entry legs, hedges, unwinds)."""

    client_order_id = peewee.CharField(max_length=64, primary_key=True)
    trade = peewee.ForeignKeyField(TradeRecord, backref="orders", on_delete="CASCADE")
    exchange = peewee.CharField(max_length=32)
    symbol = peewee.CharField(max_length=32)
    side = peewee.CharField(max_length=4)
    price = ExactDecimalField()
    quantity = ExactDecimalField()
    status = peewee.CharField(max_length=24)
    filled_quantity = ExactDecimalField()
    exchange_order_id = peewee.CharField(max_length=128, null=True)
    purpose = peewee.CharField(max_length=16)
    reason = peewee.TextField(null=True)
    # The order's place in ``Trade.orders``, so a trade is rebuilt exactly as it was.
    position = peewee.IntegerField(default=0)
    # On a venue quoted in another currency (version 8): the limit sent, in its currency,
    # and the rate the order was priced and its fills converted at.
    native_price = ExactDecimalField(null=True)
    rate = ExactDecimalField(null=True)

    class Meta:
        table_name = "orders"


class FillRecord(BaseModel):
    """``Fill``: an execution. ``seq`` numbers the fills of one order, so writing a trade
    again never stores a fill twice."""

    order_id = peewee.CharField(max_length=64)
    seq = peewee.IntegerField()
    trade = peewee.ForeignKeyField(TradeRecord, backref="fills", on_delete="CASCADE")
    exchange = peewee.CharField(max_length=32)
    symbol = peewee.CharField(max_length=32)
    side = peewee.CharField(max_length=4)
    price = ExactDecimalField()
    quantity = ExactDecimalField()
    fee = ExactDecimalField()
    fee_asset = peewee.CharField(max_length=16)
    # The fee's worth in the quote currency at fill time, for a fee in a third asset.
    fee_value = ExactDecimalField(null=True)
    timestamp = peewee.DoubleField(index=True)
    # On a venue quoted in another currency (version 7): what it charged, in that
    # currency (price is converted into the quote currency).
    native_price = ExactDecimalField(null=True)
    native_asset = peewee.CharField(max_length=16, null=True)
    # The fill's place in ``Trade.fills``, so a trade is rebuilt exactly as it was.
    position = peewee.IntegerField(default=0)

    class Meta:
        table_name = "fills"
        primary_key = peewee.CompositeKey("order_id", "seq")


class Bar(BaseModel):
    """1-minute OHLC of the mid price of a symbol on an exchange. ``minute`` is the bar's
    start (seconds since the epoch, a multiple of 60). ``volume`` is traded volume in base
    currency where the exchange adapter provides a trade stream, else 0."""

    symbol = peewee.CharField(max_length=32)
    exchange = peewee.CharField(max_length=32)
    minute = peewee.BigIntegerField()
    open = peewee.DoubleField()
    high = peewee.DoubleField()
    low = peewee.DoubleField()
    close = peewee.DoubleField()
    volume = peewee.DoubleField(default=0.0)

    class Meta:
        table_name = "bars_1m"
        primary_key = peewee.CompositeKey("symbol", "exchange", "minute")
        indexes = ((("minute",), False),)


class EquitySnapshot(BaseModel):
    """Equity (every balance at current prices, in USD) once a minute."""

    timestamp = peewee.DoubleField(index=True)
    mode = peewee.CharField(max_length=16)
    equity_usd = peewee.DoubleField()

    class Meta:
        table_name = "equity_snapshots"


class BalanceSnapshot(BaseModel):
    """Balances once a minute, with the equity snapshot of the same time."""

    timestamp = peewee.DoubleField(index=True)
    exchange = peewee.CharField(max_length=32)
    asset = peewee.CharField(max_length=16)
    free = ExactDecimalField()
    locked = ExactDecimalField()

    class Meta:
        table_name = "balance_snapshots"


class Funding(BaseModel):
    """A paper account's starting balance of one asset."""

    timestamp = peewee.DoubleField()
    exchange = peewee.CharField(max_length=32)
    asset = peewee.CharField(max_length=16)
    amount = ExactDecimalField()

    class Meta:
        table_name = "funding"


class ApiUser(BaseModel):
    """A user of the API's JWT login. ``scope`` is ``read`` or ``trading``.
    ``token_generation`` is carried by every token issued to the user: raising it (a new
    password, a revocation) makes every token issued before invalid."""

    username = peewee.CharField(max_length=64, unique=True)
    password_hash = peewee.TextField()
    scope = peewee.CharField(max_length=16)
    created_at = peewee.DoubleField()
    token_generation = peewee.IntegerField(default=0)

    class Meta:
        table_name = "api_users"


class AuditEntry(BaseModel):
    """A state-changing call (trading start/stop, emergency stop, a configuration edit, a
    batch operation, a login, a user added or removed): who (a user name or an API key's
    label, never a secret), by which means (``jwt``, ``api_key``, ``cli`` ...), from
    where, what (``action``, and ``details`` as JSON: the values before and after an
    edit ...), and the outcome (``success`` or an error code) with the HTTP status."""

    timestamp = peewee.DoubleField(index=True)
    actor = peewee.CharField(max_length=128)
    method = peewee.CharField(max_length=16)
    source = peewee.CharField(max_length=128, null=True)
    action = peewee.CharField(max_length=128, index=True)
    details = peewee.TextField(null=True)
    outcome = peewee.CharField(max_length=64)
    status = peewee.IntegerField(null=True)

    class Meta:
        table_name = "audit_log"


class RawQuote(BaseModel):
    """Every quote received, when ``[storage] record_quotes`` is on (for backtests)."""

    received_ts = peewee.DoubleField(index=True)
    exchange_ts = peewee.DoubleField()
    exchange = peewee.CharField(max_length=32)
    symbol = peewee.CharField(max_length=32)
    bid = peewee.DoubleField()
    ask = peewee.DoubleField()
    bid_size = peewee.DoubleField()
    ask_size = peewee.DoubleField()

    class Meta:
        table_name = "raw_quotes"


class IdSequence(BaseModel):
    """Where the next block of ids of a kind (``trade``) starts: a block is reserved
    durably before any of its ids is used, so an id is never given out twice, even by a
    daemon killed before it recorded what it used."""

    name = peewee.CharField(max_length=32, primary_key=True)
    next_value = peewee.BigIntegerField()

    class Meta:
        table_name = "id_sequences"


class SavedState(BaseModel):
    """Small pieces of state that must survive a restart (the emergency stop, the equity
    peak behind the drawdown limit), as JSON by key."""

    key = peewee.CharField(max_length=64, primary_key=True)
    value = peewee.TextField()
    updated_at = peewee.DoubleField()

    class Meta:
        table_name = "saved_state"


MODELS: tuple[type[BaseModel], ...] = (
    SchemaVersion,
    SignalRecord,
    TradeRecord,
    OrderRecord,
    FillRecord,
    Bar,
    EquitySnapshot,
    BalanceSnapshot,
    Funding,
    ApiUser,
    RawQuote,
    IdSequence,
    SavedState,
    AuditEntry,
)
"""Every table, in an order that creates referenced tables first."""
