"""WebSocket ``trade_update`` messages carry a trade's native prices and rates, as
``GET /trades`` lists them."""

from __future__ import annotations

from decimal import Decimal

from arbotd import Trade
from arbotd_api.ws import trade_data

D = Decimal


def test_trade_updates_show_native_prices_and_rates() -> None:
    trade = Trade(7, 7, "live", "BTCUSDT", "won", "dear", D("0.5"), D("100"), D("101"),
                  D("0.3"), 0.0, buy_native_price=D("135000"), buy_rate=D("1350"))
    data = trade_data(trade)
    assert (data["buy_native_price"], data["buy_rate"]) == (135_000.0, 1350.0)
    assert (data["sell_native_price"], data["sell_rate"]) == (None, None)
    same = trade_data(Trade(8, 8, "live", "BTCUSDT", "a", "b", D("0.5"), D("100"),
                            D("101"), D("0.3"), 0.0))
    assert {same[k] for k in ("buy_native_price", "sell_native_price", "buy_rate",
                              "sell_rate")} == {None}
