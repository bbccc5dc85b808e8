"""Inventory: shares, drift, a route's pull, the rebalancing plan, transfers, and what is
kept across restarts, against hand-computed numbers."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest

from arbotd import ConfigError, Ledger
from arbotd.inventory import Inventory, InventoryConfig, format_report, inventory_report


def ledger_of(balances: dict[tuple[str, str], str]) -> Ledger:
    ledger = Ledger()
    for (venue, asset), amount in balances.items():
        ledger.set_balance(venue, asset, Decimal(amount))
    return ledger


def inventory_of(balances: dict[tuple[str, str], str], *, symbols=("BTCUSDT",),
                 **config: object) -> Inventory:
    inventory = Inventory(ledger_of(balances), {"BTC": 50_000.0}.get)
    inventory.configure(InventoryConfig(**config), symbols)
    return inventory


def test_shares_and_drift_with_equal_targets() -> None:
    # 3 BTC on a, 1 on b: shares 0.75 / 0.25 against 0.5 / 0.5.
    inventory = inventory_of({("a", "BTC"): "3", ("b", "BTC"): "1",
                              ("a", "USDT"): "1000", ("b", "USDT"): "1000"})
    btc = inventory.asset("BTC")
    assert btc.total == Decimal(4)
    assert [(v.venue, v.share, v.target, v.drift) for v in btc.venues] == [
        ("a", 0.75, 0.5, 0.25), ("b", 0.25, 0.5, -0.25)]
    assert btc.max_drift == 0.25
    assert inventory.asset("USDT").max_drift == 0.0
    assert inventory.assets == ["BTC", "USDT"]


def test_configured_targets_and_venues_without_balances() -> None:
    # c holds nothing but its target names it: it counts, with share 0.
    inventory = inventory_of(
        {("a", "BTC"): "2", ("b", "BTC"): "2"},
        targets={"BTC": {"a": 0.5, "b": 0.25, "c": 0.25}})
    btc = {v.venue: v for v in inventory.asset("BTC").venues}
    assert btc["a"].drift == 0.0
    assert btc["b"].drift == pytest.approx(0.25)
    assert btc["c"].drift == pytest.approx(-0.25)


def test_route_pull_toward_and_away() -> None:
    # BTC: all of it on b; USDT: all of it on a. Buying on a and selling on b moves BTC to
    # a and USDT to b: straight back toward the targets (pull 1); the other way: -1.
    inventory = inventory_of({("b", "BTC"): "2", ("a", "USDT"): "100000",
                              ("a", "BTC"): "0", ("b", "USDT"): "0"})
    assert inventory.route_pull("BTC", "USDT", "a", "b") == 1.0
    assert inventory.route_pull("BTC", "USDT", "b", "a") == -1.0
    # Half way: BTC 0.75 on b (drift +0.25 / -0.25), USDT even: (0.5 + 0) / 2.
    inventory = inventory_of({("a", "BTC"): "1", ("b", "BTC"): "3",
                              ("a", "USDT"): "10", ("b", "USDT"): "10"})
    assert inventory.route_pull("BTC", "USDT", "a", "b") == pytest.approx(0.25)
    assert inventory.route_pull("BTC", "USDT", "b", "a") == pytest.approx(-0.25)


def test_nothing_held_means_no_pull() -> None:
    inventory = inventory_of({("a", "USDT"): "10", ("b", "USDT"): "10"})
    assert inventory.route_pull("BTC", "USDT", "a", "b") == 0.0
    assert inventory.plan() == []


def test_the_plan_restores_the_targets_exactly() -> None:
    balances = {("a", "BTC"): "0.7", ("b", "BTC"): "0.2", ("c", "BTC"): "0.1",
                ("a", "USDT"): "100", ("b", "USDT"): "1000", ("c", "USDT"): "333.33"}
    inventory = inventory_of(balances, targets={"BTC": {"a": 0.2, "b": 0.3, "c": 0.5}},
                             network_fees={"BTC": 0.0002})
    plan = inventory.plan()
    moved = {key: Decimal(amount) for key, amount in balances.items()}
    with decimal.localcontext(prec=60):
        for transfer in plan:
            assert transfer.amount > 0
            moved[(transfer.source, transfer.asset)] -= transfer.amount
            moved[(transfer.destination, transfer.asset)] += transfer.amount
    assert moved[("a", "BTC")] == Decimal("0.2")
    assert moved[("b", "BTC")] == Decimal("0.3")
    assert moved[("c", "BTC")] == Decimal("0.5")
    # USDT, equal targets of 1433.33: a third each, to the last digit of the sum.
    usdt = [moved[(v, "USDT")] for v in "abc"]
    with decimal.localcontext(prec=60):
        assert sum(usdt) == Decimal("1433.33")
        assert max(usdt) - min(usdt) < Decimal("1e-50")
    # The fewest transfers: BTC needs two (a gives to b and to c), USDT two.
    btc = [t for t in plan if t.asset == "BTC"]
    assert [(t.source, t.destination, t.amount) for t in btc] == [
        ("a", "c", Decimal("0.4")), ("a", "b", Decimal("0.1"))]
    assert all(t.network_fee == Decimal("0.0002") for t in btc)
    assert btc[0].fee_value == pytest.approx(10.0)   # 0.0002 BTC at 50,000
    assert len([t for t in plan if t.asset == "USDT"]) == 2


def test_a_transfer_moves_paper_balances_as_funding() -> None:
    ledger = ledger_of({("a", "BTC"): "1", ("b", "BTC"): "0"})
    funded: list[tuple[str, str, Decimal]] = []
    ledger.on_funding = lambda venue, asset, amount: funded.append((venue, asset, amount))
    ledger.transfer("BTC", "a", "b", Decimal("0.4"), Decimal("0.001"))
    assert ledger.total("a", "BTC") == Decimal("0.6")
    assert ledger.total("b", "BTC") == Decimal("0.399")
    # The starting balances move too: profit figures stay those of the trades.
    assert ledger.starting[("a", "BTC")] == Decimal("0.6")
    assert funded == [("a", "BTC", Decimal("-0.4")), ("b", "BTC", Decimal("0.399"))]
    with pytest.raises(ValueError, match=r"holds 0\.6 BTC free"):
        ledger.transfer("BTC", "a", "b", Decimal("1"))
    with pytest.raises(ValueError, match="positive amount"):
        ledger.transfer("BTC", "a", "b", Decimal("0"))


def test_lost_profit_counts_a_route_once_per_window_and_restarts_with_a_transfer() -> None:
    inventory = inventory_of({("a", "BTC"): "1"})
    route = ("BTCUSDT", "a", "b")
    inventory.note_balance_rejection(route, 2.0, 100.0, 60.0)
    inventory.note_balance_rejection(route, 2.0, 130.0, 60.0)   # the same opportunity
    inventory.note_balance_rejection(("BTCUSDT", "b", "a"), 1.5, 130.0, 60.0)
    inventory.note_balance_rejection(route, 2.5, 161.0, 60.0)
    assert inventory.lost_profit == pytest.approx(6.0)
    assert inventory.balance_rejections == 4
    assert inventory.lost_since == 100.0
    inventory.record_transfer("BTC", "a", "b", Decimal("0.5"), Decimal(0), 200.0, actor="ops")
    assert (inventory.lost_profit, inventory.lost_since) == (0.0, 200.0)

    restarted = inventory_of({("a", "BTC"): "1"})
    restarted.restore(inventory.state())
    assert restarted.state() == inventory.state()
    assert restarted.transfers[0].actor == "ops"
    restarted.restore({"transfers": [{"id": "x"}]})   # damaged: logged, not fatal


def test_drift_warnings_once_until_back(caplog: pytest.LogCaptureFixture) -> None:
    ledger = ledger_of({("a", "BTC"): "3", ("b", "BTC"): "1"})
    inventory = Inventory(ledger)
    inventory.configure(InventoryConfig(warn_drift=0.2), ["BTCUSDT"])
    assert [(a, v, past) for a, v, _, past in inventory.check_drift()] == [
        ("BTC", "a", True), ("BTC", "b", True)]
    assert inventory.check_drift() == []
    assert "BTC on a holds 75.0 % of the total, its target is 50.0 %" in caplog.text
    ledger.set_balance("a", "BTC", Decimal(1))
    assert [past for *_, past in inventory.check_drift()] == [False, False]


def test_report_and_its_text() -> None:
    inventory = inventory_of({("a", "BTC"): "3", ("b", "BTC"): "1",
                              ("a", "USDT"): "50", ("b", "USDT"): "50"},
                             network_fees={"BTC": 0.0001})
    report = inventory_report(inventory, skew=0.5)
    [btc, usdt] = report["assets"]
    assert usdt["value"] == 100.0
    assert btc["value"] == 200_000.0
    assert [v["drift"] for v in btc["exchanges"]] == [0.25, -0.25]
    assert report["plan"] == [{"asset": "BTC", "from": "a", "to": "b", "amount": 1.0,
                               "network_fee": 0.0001, "fee_value": 5.0,
                               "from_currency": None, "to_currency": None}]
    text = format_report(report)
    assert "BTC    a -> b: 1" in text
    assert "+25.0%" in text and "inventory_skew 0.5" in text


@pytest.mark.parametrize("targets, message", [
    ({"BTC": {"a": 0.5, "b": 0.4}}, "BTC: the target shares sum to 0.9, expected 1"),
    ({"BTC": {"a": 1.5, "b": -0.5}}, "BTC.a: a target share is between 0 and 1"),
    ({"btc": {"a": 1.0}}, "assets are written like BTC"),
    ({"BTC": {}}, "BTC: expected at least one venue"),
])
def test_bad_targets_are_refused_by_name(tmp_path, targets, message) -> None:
    from arbotd import make_plugin_manager
    from arbotd._runtime import load_with_plugins

    lines = [f"[inventory.targets.{asset}]" + "".join(
        f"\n{venue} = {share}" for venue, share in venues.items())
        for asset, venues in targets.items()]
    path = tmp_path / "arbot.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_with_plugins(path, make_plugin_manager(entry_points=False))
    assert message in str(caught.value)


def test_targets_load_from_the_file(tmp_path) -> None:
    from arbotd import make_plugin_manager
    from arbotd._runtime import load_with_plugins

    path = tmp_path / "arbot.toml"
    path.write_text("[inventory]\nwarn_drift = 0.1\nnetwork_fees = { BTC = 0.0002 }\n"
                    "[inventory.targets.BTC]\nbinance = 0.6\nokx = 0.4\n")
    config = load_with_plugins(path, make_plugin_manager(entry_points=False))
    assert config["inventory"] == InventoryConfig(
        targets={"BTC": {"binance": 0.6, "okx": 0.4}}, warn_drift=0.1,
        network_fees={"BTC": 0.0002})


def test_a_venue_quoted_in_krw_counts_its_krw_as_usdt_and_is_never_sent_krw() -> None:
    """won holds 2,700,000 KRW (2,000 USDT at the rate's mid of 1,350) and 1,000 USDT:
    3,000 USDT of 4,000; usd holds 1,000. Equal targets: won gives 1,000 USDT to usd,
    bought with KRW on won first; the plan never names KRW."""
    from arbotd import Quote
    from arbotd.fx import Conversion

    inventory = inventory_of({("won", "KRW"): "2700000", ("won", "USDT"): "1000",
                              ("usd", "USDT"): "1000", ("won", "BTC"): "1",
                              ("usd", "BTC"): "1"})
    inventory.conversions = {"won": Conversion("KRW", "USDTKRW")}
    inventory.rates = {"won": Quote("won", "USDTKRW", 1_349.0, 1_351.0, 1.0, 1.0, 0.0, 0.0)}
    usdt = {v.venue: v for v in inventory.asset("USDT").venues}
    assert usdt["won"].amount == Decimal(3000) and usdt["usd"].amount == Decimal(1000)
    assert (usdt["won"].share, usdt["won"].drift) == (0.75, 0.25)
    assert inventory.assets == ["BTC", "USDT"]
    [move] = inventory.plan()
    assert (move.asset, move.source, move.destination, move.amount) == (
        "USDT", "won", "usd", Decimal(1000))
    assert (move.from_currency, move.to_currency) == ("KRW", None)
    # The other way round: usd sends USDT, which won turns into KRW on arrival.
    inventory.ledger.set_balance("won", "KRW", Decimal(0))
    inventory.ledger.set_balance("won", "USDT", Decimal(0))
    [move] = inventory.plan()
    assert (move.source, move.destination, move.amount) == ("usd", "won", Decimal(500))
    assert (move.from_currency, move.to_currency) == (None, "KRW")
    text = format_report(inventory_report(inventory))
    assert "sell it for KRW on won on arrival" in text
    # Without a rate its KRW is of unknown worth: left out.
    inventory.ledger.set_balance("won", "KRW", Decimal(2_700_000))
    inventory.rates = {}
    assert {v.venue: v.amount for v in inventory.asset("USDT").venues}["won"] == 0
