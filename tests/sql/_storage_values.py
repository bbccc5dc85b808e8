"""Values the storage tests record: signals, quotes, and trades taken through their states
the way the trade runner takes them."""

from __future__ import annotations

from decimal import Decimal

import attrs

from arbotd import (
    Fill,
    Order,
    OrderStatus,
    Quote,
    Side,
    Signal,
    Trade,
    TradeState,
    client_order_id,
)

D = Decimal
T0 = 1_749_999_960.0  # a minute boundary (2025-06-15T15:06:00Z)


def signal(signal_id: int, **changes: object) -> Signal:
    values: dict[str, object] = {
        "id": signal_id,
        "symbol": "BTCUSDT",
        "buy_exchange": "sim_alpha",
        "sell_exchange": "sim_beta",
        "buy_price": 65_000.1,
        "sell_price": 65_100.2,
        "buy_size": 0.5,
        "sell_size": 0.4,
        "quantity": 0.01,
        "profit": 0.812345,
        "profit_percent": 0.1249,
        "spread_percent": 0.154,
        "fees": 0.13,
        "confidence": 0.93,
        "timestamp": T0 + signal_id + 0.123456,
    }
    values.update(changes)
    return Signal(**values)  # type: ignore[arg-type]


def quote(exchange: str, symbol: str, mid: float, at: float, spread: float = 1.0) -> Quote:
    return Quote(exchange=exchange, symbol=symbol, bid=mid - spread / 2, ask=mid + spread / 2,
                 bid_size=1.5, ask_size=2.5, exchange_ts=at - 0.01, received_ts=at)


def _fill(order: Order, price: str, quantity: str, fee: str, fee_asset: str, at: float) -> Fill:
    return Fill(order_id=order.client_order_id, trade_id=order.trade_id,
                exchange=order.exchange, symbol=order.symbol, side=order.side,
                price=D(price), quantity=D(quantity), fee=D(fee), fee_asset=fee_asset,
                timestamp=at)


def planned(trade_id: int, *, mode: str = "simulation", started_at: float = T0) -> Trade:
    return Trade(
        id=trade_id, signal_id=100 + trade_id, mode=mode, symbol="BTCUSDT",
        buy_exchange="sim_alpha", sell_exchange="sim_beta", quantity=D("0.010"),
        planned_buy_price=D("65000.10"), planned_sell_price=D("65100.20"),
        planned_profit=D("0.8123"), started_at=started_at,
    )


def completed_lifecycle(trade_id: int, *, mode: str = "simulation") -> list[Trade]:
    """planned -> submitted -> partially_filled (the buy filled 7 of 10, fee in BTC) ->
    a hedge buys the rest -> completed. Every step as the runner reports it."""
    trade = planned(trade_id, mode=mode)
    buy = Order(client_order_id(trade_id, "b"), trade_id, "sim_alpha", "BTCUSDT", Side.BUY,
                D("65000.10"), D("0.010"))
    sell = Order(client_order_id(trade_id, "s"), trade_id, "sim_beta", "BTCUSDT", Side.SELL,
                 D("65100.20"), D("0.010"))
    steps = [trade]
    trade = trade.advance(TradeState.SUBMITTED, orders=(buy, sell))
    steps.append(trade)
    buy_done = attrs.evolve(buy, status=OrderStatus.PARTIALLY_FILLED,
                            filled_quantity=D("0.007"), exchange_order_id="A-1")
    sell_done = attrs.evolve(sell, status=OrderStatus.FILLED, filled_quantity=D("0.010"),
                             exchange_order_id="B-1")
    trade = trade.with_orders(buy_done).with_fills(
        _fill(buy, "65000.10", "0.004", "0.000004", "BTC", T0 + 1.25),
        _fill(buy, "65000.30", "0.003", "0.000003", "BTC", T0 + 1.5),
    )
    trade = trade.with_orders(sell_done).with_fills(
        _fill(sell, "65100.20", "0.010", "0.651002", "USDT", T0 + 1.5),
    )
    trade = trade.advance(TradeState.PARTIALLY_FILLED)
    steps.append(trade)
    hedge = Order(client_order_id(trade_id, "h"), trade_id, "sim_alpha", "BTCUSDT", Side.BUY,
                  D("0"), D("0.003"), purpose="hedge")
    trade = trade.with_orders(hedge)
    steps.append(trade)
    trade = trade.with_orders(
        attrs.evolve(hedge, status=OrderStatus.FILLED, filled_quantity=D("0.003"))
    ).with_fills(_fill(hedge, "65010.00", "0.003", "0.19503", "USDT", T0 + 2.75))
    steps.append(trade)
    trade = trade.advance(TradeState.COMPLETED, completed_at=T0 + 3.5)
    steps.append(trade)
    return steps


def unfinished_submitted(trade_id: int) -> Trade:
    """Both legs sent; the buy filled, the sell's answer never came (the crash case)."""
    trade = planned(trade_id, started_at=T0 + 60)
    buy = Order(client_order_id(trade_id, "b"), trade_id, "sim_alpha", "BTCUSDT", Side.BUY,
                D("65000.10"), D("0.010"))
    sell = Order(client_order_id(trade_id, "s"), trade_id, "sim_beta", "BTCUSDT", Side.SELL,
                 D("65100.20"), D("0.010"), reason="outcome unknown")
    trade = trade.advance(TradeState.SUBMITTED, orders=(buy, sell))
    return trade.with_orders(
        attrs.evolve(buy, status=OrderStatus.FILLED, filled_quantity=D("0.010"))
    ).with_fills(_fill(buy, "64999.95", "0.010", "0.6499995", "USDT", T0 + 61))


def unwinding(trade_id: int) -> Trade:
    """The sell leg was rejected; the order unwinding the bought leg is out."""
    trade = planned(trade_id, started_at=T0 + 120)
    buy = Order(client_order_id(trade_id, "b"), trade_id, "sim_alpha", "BTCUSDT", Side.BUY,
                D("65000.10"), D("0.010"), status=OrderStatus.FILLED,
                filled_quantity=D("0.010"))
    sell = Order(client_order_id(trade_id, "s"), trade_id, "sim_beta", "BTCUSDT", Side.SELL,
                 D("65100.20"), D("0.010"), status=OrderStatus.REJECTED, reason="rejected")
    unwind = Order(client_order_id(trade_id, "u0"), trade_id, "sim_alpha", "BTCUSDT",
                   Side.SELL, D("0"), D("0.010"), purpose="unwind")
    trade = trade.advance(TradeState.SUBMITTED, orders=(buy, sell))
    trade = trade.with_fills(_fill(buy, "65000.10", "0.010", "0.650001", "USDT", T0 + 121))
    return trade.advance(TradeState.UNWINDING).with_orders(unwind)
