"""A small ledger computed by hand, shared by test_metrics and test_queries, and helpers
that write rows straight through the models."""

from __future__ import annotations

from decimal import Decimal

from arbotd_sql.metrics import TradeResult
from arbotd_sql.models import FillRecord, OrderRecord, SignalRecord, TradeRecord

D = Decimal
DAY1 = 1_704_067_200.0  # 2024-01-01T00:00:00Z
DAY2 = DAY1 + 86_400  # 2024-01-02T00:00:00Z

# Five closed trades over two UTC days. Net results +3, -1, +2, 0, -0.5:
#   total 5, successful 2 (net > 0; 0 is not a win)         -> win rate 40 %
#   fees 0.2 + 0.1 + 0.3 + 0 + 0.4 = 1.0; net 3.5           -> before fees 4.5
#   average net 3.5 / 5 = 0.7; best +3; worst -1
#   execution 10, 20, 30, 40, 50 s                           -> average 30 s
#   gross profit 3 + 2 = 5, gross loss 1 + 0.5 = 1.5         -> profit factor 3.3333
#   2024-01-01: trades 1, 2: net 3 - 1 = 2, 1 of 2 won       -> 50 %
#   2024-01-02: trades 3, 4, 5: net 2 + 0 - 0.5 = 1.5, 1 of 3 -> 33.3333 %
LEDGER = (
    TradeResult(1, "BTCUSDT", DAY1 + 3_600, D("3"), D("0.2"), 10.0),
    TradeResult(2, "BTCUSDT", DAY1 + 7_200, D("-1"), D("0.1"), 20.0),
    TradeResult(3, "ETHUSDT", DAY2 + 3_600, D("2"), D("0.3"), 30.0),
    TradeResult(4, "ETHUSDT", DAY2 + 7_200, D("0"), D("0"), 40.0),
    TradeResult(5, "BTCUSDT", DAY2 + 86_399, D("-0.5"), D("0.4"), 50.0),  # 23:59:59
)

LEDGER_METRICS = {
    "total_trades": 5,
    "successful_trades": 2,
    "win_rate": 40.0,
    "total_profit": 4.5,
    "total_fees": 1.0,
    "net_profit": 3.5,
    "avg_profit_per_trade": 0.7,
    "max_profit": 3.0,
    "max_loss": -1.0,
    "avg_execution_time_seconds": 30.0,
    "profit_factor": 3.3333,
}

LEDGER_DAYS = [
    {"date": "2024-01-01", "trades": 2, "profit": 2.0, "win_rate": 50.0},
    {"date": "2024-01-02", "trades": 3, "profit": 1.5, "win_rate": 33.3333},
]


def add_trade(
    trade_id: int,
    *,
    symbol: str = "BTCUSDT",
    state: str = "completed",
    started_at: float = DAY1,
    completed_at: float | None = None,
    quantity: str = "0.1",
    actual_profit: str | None = None,
    fees_paid: str | None = None,
    mode: str = "simulation",
    **fields: object,
) -> TradeRecord:
    values: dict[str, object] = {
        "id": trade_id,
        "signal_id": 1000 + trade_id,
        "mode": mode,
        "symbol": symbol,
        "buy_exchange": "bybit",
        "sell_exchange": "binance",
        "quantity": D(quantity),
        "planned_buy_price": D("100"),
        "planned_sell_price": D("101"),
        "planned_profit": D("0.1"),
        "actual_profit": None if actual_profit is None else D(actual_profit),
        "fees_paid": None if fees_paid is None else D(fees_paid),
        "state": state,
        "started_at": started_at,
        "completed_at": completed_at,
    }
    values.update(fields)
    return TradeRecord.create(**values)


def add_order(
    trade_id: int,
    leg: str,
    side: str,
    *,
    purpose: str = "entry",
    quantity: str = "0.1",
    price: str = "100",
    status: str = "filled",
    filled: str | None = None,
    exchange: str = "bybit",
    exchange_order_id: str | None = None,
    symbol: str = "BTCUSDT",
    position: int = 0,
) -> OrderRecord:
    return OrderRecord.create(
        client_order_id=f"arb{trade_id}{leg}",
        trade=trade_id,
        exchange=exchange,
        symbol=symbol,
        side=side,
        price=D(price),
        quantity=D(quantity),
        status=status,
        filled_quantity=D(quantity if filled is None else filled),
        exchange_order_id=exchange_order_id,
        purpose=purpose,
        position=position,
    )


def add_fill(
    trade_id: int,
    leg: str,
    seq: int,
    side: str,
    *,
    quantity: str = "0.1",
    price: str = "100",
    fee: str = "0.01",
    timestamp: float = DAY1,
    exchange: str = "bybit",
    symbol: str = "BTCUSDT",
    position: int = 0,
) -> FillRecord:
    return FillRecord.create(
        order_id=f"arb{trade_id}{leg}",
        seq=seq,
        trade=trade_id,
        exchange=exchange,
        symbol=symbol,
        side=side,
        price=D(price),
        quantity=D(quantity),
        fee=D(fee),
        fee_asset="USDT",
        timestamp=timestamp,
        position=position,
    )


def add_signal(
    signal_id: int,
    *,
    timestamp: float,
    symbol: str = "BTCUSDT",
    executed: bool = False,
    **fields: object,
) -> SignalRecord:
    return SignalRecord.create(
        **fields,
        id=signal_id,
        timestamp=timestamp,
        symbol=symbol,
        buy_exchange="bybit",
        sell_exchange="binance",
        buy_price=43249.0,
        sell_price=43251.0,
        quantity=0.1,
        profit=2.0,
        profit_percent=0.0046,
        spread_percent=0.0046,
        fees=0.1,
        confidence=0.85,
        executed=executed,
    )


# Base quantity each ledger trade executed (symbol_performance "volume"), and how:
#   1 BTCUSDT completed: entry buy 0.1, entry sell 0.1                    -> 0.1
#   2 BTCUSDT unwound: entry buy 0.2 filled, entry sell none, unwind sell -> 0.2
#   3 ETHUSDT completed: entry buy 1.0, entry sell 1.0                    -> 1.0
#   4 ETHUSDT completed: entry buy 2.0, entry sell 2.0                    -> 2.0
#   5 BTCUSDT completed: entry buy 0.05, entry sell 0.03 + hedge sell 0.02 -> 0.05
LEDGER_VOLUME = {"BTCUSDT": 0.35, "ETHUSDT": 3.0}


def insert_ledger() -> None:
    """:data:`LEDGER` as trade, order and fill rows."""
    fills = {
        1: [("b", "buy", "entry", "0.1"), ("s", "sell", "entry", "0.1")],
        2: [("b", "buy", "entry", "0.2"), ("s", "sell", "entry", None),
            ("u0", "sell", "unwind", "0.2")],
        3: [("b", "buy", "entry", "1.0"), ("s", "sell", "entry", "1.0")],
        4: [("b", "buy", "entry", "2.0"), ("s", "sell", "entry", "2.0")],
        5: [("b", "buy", "entry", "0.05"), ("s", "sell", "entry", "0.03"),
            ("h", "sell", "hedge", "0.02")],
    }
    states = {2: "unwound"}
    for result in LEDGER:
        add_trade(
            result.trade_id,
            symbol=result.symbol,
            state=states.get(result.trade_id, "completed"),
            started_at=result.closed_at - result.execution_seconds,
            completed_at=result.closed_at,
            actual_profit=str(result.net_profit),
            fees_paid=str(result.fees),
        )
        filled = 0
        for position, (leg, side, purpose, quantity) in enumerate(fills[result.trade_id]):
            add_order(result.trade_id, leg, side, purpose=purpose, quantity=quantity or "0.1",
                      filled=quantity or "0", status="filled" if quantity else "expired",
                      symbol=result.symbol, position=position)
            if quantity is not None:
                add_fill(result.trade_id, leg, 0, side, quantity=quantity,
                         timestamp=result.closed_at, symbol=result.symbol, position=filled)
                filled += 1
