"""What ``GET /metrics`` reads and the daemon keeps for it: the engine's quotes per venue
and its sampled receipt-to-decision times, a WebSocket feed's reconnects, and the closed
trades by state with their fees."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
import trio
from trio_websocket import serve_websocket

from arbotd import Bus, Engine, Fill, Ledger, Order, Quote, Side, Trade, TradeState
from arbotd._control import TradingStats
from arbotd._histogram import Histogram
from arbotd.exchange import Backoff, Connection, WebSocketFeed
from arbotd.figures import trade_figures

NOW = 1_750_000_000.0


def quote(exchange: str, received: float) -> Quote:
    return Quote(exchange, "BTCUSDT", 100.0, 100.1, 1.0, 1.0, received, received)


def test_the_engine_counts_quotes_per_venue_and_times_one_in_64() -> None:
    engine = Engine(strategies=[], bus=Bus(), ledger=Ledger(), clock=lambda: NOW)
    for index in range(200):
        engine.on_quote(quote("a" if index % 4 else "b", NOW - 0.003))
    assert engine.quote_counts == {"a": 150, "b": 50}
    latency = engine.decision_latency
    assert latency.count == 3  # quotes 64, 128 and 192
    assert latency.sum == pytest.approx(0.009, abs=1e-6)  # epoch floats: ~0.2 µs steps
    # 3 ms: above the 2.5 ms bound, at or below 5 ms.
    buckets = dict(latency.cumulative())
    assert buckets[0.0025] == 0 and buckets[0.005] == 3 and buckets[math.inf] == 3


def test_a_histogram_counts_each_value_under_the_lowest_bound_it_fits() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 2.0, -1.0):
        histogram.observe(value)
    assert histogram.cumulative() == [(0.1, 3), (1.0, 4), (math.inf, 5)]
    assert histogram.sum == pytest.approx(2.65)  # the negative one counts as 0
    with pytest.raises(ValueError, match="ascending"):
        Histogram((1.0, 0.1))


async def test_a_websocket_feed_counts_its_reconnects() -> None:
    accepted = 0

    async def close_at_once(request: Any) -> None:
        nonlocal accepted
        accepted += 1
        ws = await request.accept()
        await ws.aclose()

    class Sink:
        def on_quote(self, quote: Quote) -> None: ...
        def on_feed_state(self, exchange: str, usable: bool, reason: str = "") -> None: ...

    class DroppedFeed(WebSocketFeed):
        name = "dropped"

        def connections(self, symbols: Any) -> list[Connection]:
            return [Connection(url, {s: s for s in symbols})]

        def parse(self, raw: Any, connection: Any, state: Any, received: Any) -> None:
            return None

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, close_at_once, "127.0.0.1", 0, None)
        url = f"ws://127.0.0.1:{server.port}/"
        feed = DroppedFeed(None, taker_fee=0.001,
                           backoff=Backoff(first=0.01, maximum=0.01, healthy_after=60))
        assert feed.reconnects == 0
        nursery.start_soon(feed.stream_quotes, ["BTCUSDT"], Sink())
        with trio.fail_after(20):
            while feed.reconnects < 3:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert accepted >= feed.reconnects >= 3


def closed_trade(trade_id: int, state: TradeState, fee: str) -> Trade:
    """A trade in ``state`` whose one buy fill paid ``fee`` USDT."""
    buy = Order(client_order_id=f"t{trade_id}b", trade_id=trade_id, exchange="a",
                symbol="BTCUSDT", side=Side.BUY, price=Decimal("100"),
                quantity=Decimal("0.01"))
    fill = Fill(order_id=buy.client_order_id, trade_id=trade_id, exchange="a",
                symbol="BTCUSDT", side=Side.BUY, price=Decimal("100"),
                quantity=Decimal("0.01"), fee=Decimal(fee), fee_asset="USDT", timestamp=NOW)
    return Trade(id=trade_id, signal_id=1, mode="simulation", symbol="BTCUSDT",
                 buy_exchange="a", sell_exchange="b", quantity=Decimal("0.01"),
                 planned_buy_price=Decimal("100"), planned_sell_price=Decimal("101"),
                 planned_profit=Decimal("0.005"), started_at=NOW, state=state,
                 orders=(buy,), fills=(fill,) if fee != "0" else ())


def test_closed_trades_are_counted_by_state_with_their_fees() -> None:
    stats = TradingStats()
    trades = [closed_trade(1, TradeState.FAILED, "0.001"),
              closed_trade(2, TradeState.UNWOUND, "0.002"),
              closed_trade(3, TradeState.FAILED, "0.004"),
              closed_trade(4, TradeState.CANCELLED, "0")]
    for trade in trades:
        stats.add(trade, NOW)
    assert stats.closed_by_state == {"failed": 2, "unwound": 1, "cancelled": 1}
    assert stats.fees_total == sum(trade_figures(t).fees for t in trades) == Decimal("0.007")
