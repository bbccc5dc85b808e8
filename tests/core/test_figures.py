"""The one definition of every money figure, against trades computed by hand."""

from __future__ import annotations

from decimal import Decimal

from arbotd import Fill, Order, OrderStatus, Side, Trade, TradeState
from arbotd.figures import (
    daily_closes,
    max_drawdown_percent,
    money,
    money_text,
    profit_factor,
    size,
    summarize,
    trade_figures,
)

D = Decimal
QTY = D("0.00154945")


def order(leg: str, side: Side, exchange: str, purpose: str = "entry") -> Order:
    return Order(f"arb1{leg}", 1, exchange, "BTCUSDT", side, D(0), QTY, purpose=purpose,
                 status=OrderStatus.FILLED)


def fill(leg: str, side: Side, exchange: str, price: str, qty: Decimal = QTY,
         fee: str = "0", asset: str = "USDT", value: str | None = None) -> Fill:
    return Fill(f"arb1{leg}", 1, exchange, "BTCUSDT", side, D(price), qty, D(fee), asset,
                1_750_000_000.0, None if value is None else D(value))


def trade(*fills: Fill, orders: tuple[Order, ...] | None = None,
          state: TradeState = TradeState.COMPLETED, quantity: Decimal = QTY) -> Trade:
    planned = Trade(1, 1, "simulation", "BTCUSDT", "a", "b", quantity, D("64540.50"),
                    D("64963.21"), D("0.4542"), 1_750_000_000.0)
    legs = orders or (order("b", Side.BUY, "a"), order("s", Side.SELL, "b"))
    submitted = planned.advance(TradeState.SUBMITTED, orders=legs, fills=fills)
    if state is TradeState.UNWOUND:
        submitted = submitted.advance(TradeState.UNWINDING)
    return submitted.advance(state, completed_at=1_750_000_001.0)


def test_a_completed_trade_by_hand() -> None:
    # Bought 5.55 above the planned 64540.50, sold 2.41 below the planned 64963.21.
    figures = trade_figures(trade(
        fill("b", Side.BUY, "a", "64546.05", fee="0.10001155"),
        fill("s", Side.SELL, "b", "64960.80", fee="0.10065252"),
    ))
    # gross = (64960.80 - 64546.05) * 0.00154945 = 414.75 * 0.00154945 = 0.6426344...
    assert figures.gross == D("414.75") * QTY
    assert figures.fees == D("0.20066407")
    assert figures.net == figures.gross - figures.fees
    # price slippage: (5.55 + 2.41) * 0.00154945 = 0.012333622, positive: worse.
    assert figures.buy_slippage == D("5.55") * QTY
    assert figures.sell_slippage == D("2.41") * QTY
    assert money(figures.slippage) == 0.01233362
    assert figures.filled_quantity == figures.planned_quantity == QTY
    assert figures.realized_profit == figures.net and figures.final


def test_a_partial_fill_shows_the_filled_quantity() -> None:
    filled = D("0.00103300")
    figures = trade_figures(trade(
        fill("b", Side.BUY, "a", "64540.50", filled),
        fill("s", Side.SELL, "b", "64963.21", filled),
        quantity=D("0.00147570"),
    ))
    assert figures.filled_quantity == filled and figures.planned_quantity == D("0.00147570")
    assert figures.slippage == 0


def test_an_unwound_trade_counts_the_unwind_as_money_not_as_slippage() -> None:
    legs = (order("b", Side.BUY, "a"), order("s", Side.SELL, "b"),
            order("u0", Side.SELL, "a", "unwind"))
    figures = trade_figures(trade(
        fill("b", Side.BUY, "a", "64540.50"),
        fill("u0", Side.SELL, "a", "64500.00"),
        orders=legs, state=TradeState.UNWOUND,
    ))
    assert figures.gross == D("-40.50") * QTY  # the loss of selling back lower
    assert figures.filled_quantity == 0  # nothing was arbitraged
    assert figures.bought == figures.sold == QTY
    assert figures.slippage == 0  # the buy got its planned price; the unwind is not a leg


def test_fees_are_valued_at_fill_time_whatever_their_asset() -> None:
    figures = trade_figures(trade(
        fill("b", Side.BUY, "a", "64540.50", fee="0.00000155", asset="BTC"),
        fill("s", Side.SELL, "b", "64963.21", fee="0.00016", asset="BNB", value="0.1"),
    ))
    # 0.00000155 BTC at the buy's price, and the BNB fee at the value recorded with it.
    assert figures.fees == D("0.00000155") * D("64540.50") + D("0.1")
    assert figures.unpriced_fee_assets == ()
    unpriced = trade_figures(trade(
        fill("b", Side.BUY, "a", "64540.50"),
        fill("s", Side.SELL, "b", "64963.21", fee="0.00016", asset="BNB"),
    ))
    assert unpriced.fees == 0 and unpriced.unpriced_fee_assets == ("BNB",)


def test_a_trade_in_flight_has_no_realised_profit_yet() -> None:
    running = Trade(1, 1, "simulation", "BTCUSDT", "a", "b", QTY, D("64540.50"),
                    D("64963.21"), D("0.4542"), 0.0).advance(
        TradeState.SUBMITTED, orders=(order("b", Side.BUY, "a"),),
        fills=(fill("b", Side.BUY, "a", "64540.50", fee="0.1"),))
    figures = trade_figures(running)
    assert figures.realized_profit is None and not figures.final
    assert figures.fees == D("0.1")


def test_summaries_and_profit_factor_with_reasons() -> None:
    summary = summarize([(D("3"), D("0.2")), (D("-1"), D("0.2")), (D("2"), D("0.1")),
                         (D("0"), D("0.1"))])
    assert (summary.trades, summary.wins, summary.losses) == (4, 2, 1)
    assert summary.net == D("4") and summary.fees == D("0.6") and summary.gross == D("4.6")
    assert summary.win_rate == 50.0
    assert summary.profit_factor.value == 5.0  # (3 + 2) / 1
    assert summarize([(D("1"), D("0"))]).profit_factor.reason == "no losing trades"
    assert profit_factor(D(0), D(0), 0).reason == "no closed trades"


def test_rounding_at_the_edges_leaves_no_float_noise() -> None:
    assert money(D("9700.579871162636")) == 9700.57987116
    assert money(9700.579871162636) == 9700.57987116
    assert size(0.029264580000000002) == 0.02926458
    assert money(D("1234.5"), "KRW") == 1234.0  # half to even, KRW has no decimals
    assert money_text(D("0.451804000"), "USDT") == "0.451804"
    assert money(None) is None


def test_equity_series() -> None:
    assert daily_closes([(86_400.0 * 2 + 5, 3.0), (86_400.0 + 5, 1.0),
                         (86_400.0 + 9, 2.0)]) == [2.0, 3.0]
    assert max_drawdown_percent([100.0, 120.0, 90.0, 130.0, 117.0]) == 25.0
