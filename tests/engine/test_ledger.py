"""Balances change only through fills and fees; paper accounts survive a restart."""

from __future__ import annotations

from decimal import Decimal

from arbotd import Fill, Ledger, Side

D = Decimal


def test_fills_move_both_assets_and_charge_the_fee_exactly() -> None:
    ledger = Ledger()
    ledger.set_balance("a", "USDT", D("1000"))
    ledger.apply_fill(Fill("o1", 1, "a", "ETHUSDT", Side.BUY, D("3021.37"), D("0.0330966"),
                           D("0.10000"), "USDT", 0.0))
    assert ledger.total("a", "ETH") == D("0.0330966")
    assert ledger.total("a", "USDT") == D("1000") - D("3021.37") * D("0.0330966") - D("0.1")


def test_reservations_hide_money_without_moving_it() -> None:
    ledger = Ledger()
    ledger.set_balance("a", "USDT", D("100"))
    assert ledger.reserve("a", "USDT", D("60"))
    assert not ledger.reserve("a", "USDT", D("60"))
    assert ledger.available("a", "USDT") == 40.0 and ledger.total("a", "USDT") == D("100")
    [balance] = ledger.balances()
    assert (balance.free, balance.locked, balance.total) == (D("40"), D("60"), D("100"))
    ledger.release("a", "USDT", D("60"))
    assert ledger.available("a", "USDT") == 100.0


def test_funding_is_reported_and_accounts_restore() -> None:
    funded: list[tuple[str, str, Decimal]] = []
    ledger = Ledger()
    ledger.on_funding = lambda *args: funded.append(args)
    ledger.fund("a", "USDT", D("10000"))
    assert funded == [("a", "USDT", D("10000"))]

    restarted = Ledger()
    restarted.restore({("a", "USDT"): D("10000")}, {("a", "USDT"): D("10012.5")})
    assert restarted.total("a", "USDT") == D("10012.5")
    assert restarted.starting[("a", "USDT")] == D("10000")
    assert restarted.available("a", "USDT") == 10012.5


def test_a_valuation_missing_a_price_is_incomplete_not_a_loss() -> None:
    ledger = Ledger()
    ledger.set_balance("a", "USDT", D("1000"))
    ledger.set_balance("a", "BTC", D("0.5"))
    ledger.set_balance("b", "ETH", D("0"))  # nothing held: needs no price
    prices = {"BTC": 60000.0}
    assert ledger.full_value_usd(prices.get) == 31000.0
    assert ledger.full_value_usd(prices.get, starting=True) == 31000.0
    assert ledger.full_value_usd({}.get) is None
    assert ledger.full_value_usd({}.get, "b") == 0.0  # b holds nothing unpriced
    assert ledger.value_usd({}.get) == 1000.0  # for display, the priced part
    assert ledger.unpriced_assets({}.get) == ["BTC"]
