"""Inventory: how each traded asset is spread over the venues, against its targets
(``spec/behaviour.md``, "Inventory").

Every cross-exchange trade leaves more of the base asset where it bought and more of the
quote currency where it sold. For each asset of the traded symbols, on each venue:

* ``share``: the venue's part of the asset's total over the venues (reserved amounts
  included: they are still the venue's);
* ``target``: the part it should hold: ``[inventory] targets`` when the asset is listed
  there (venues not listed: 0), else an equal part for every venue holding balances;
* ``drift = share - target`` (-1..1; the drifts of an asset sum to 0).

A route (buy on A, sell on B) moves the base asset to A and the quote currency to B. Its
*pull* says how much that trade moves both back toward their targets: for the base
``drift_B - drift_A``, for the quote ``drift_A - drift_B`` (each capped to -1..1), and the
route's pull is their mean: 1 when A holds none of the base and B all of it (and the
other way for the quote), -1 the other way, 0 when the route changes nothing that
matters. With ``arbitrage.inventory_skew = k`` the strategy holds the route to
``min_profit_threshold * (1 - k * pull)``: lower toward the targets, higher away, linear
in between. ``k`` is at most 1, so a threshold never falls below 0: the trade's expected
profit still covers its fees and slippage allowance.

A venue quoted in another currency (:mod:`arbotd.fx`: a KRW venue trading BTCUSDT) holds
that currency where the others hold the quote currency: its KRW counts in the quote
currency's shares at the live rate (the mid of its rate market; without a rate yet its
KRW is left out), together with any USDT it holds. The plan never moves KRW to a USDT
venue: it moves the quote currency, and a transfer from such a venue says that the KRW
is to be turned into USDT on that venue's own rate market first (``from_currency``), one
to it that the USDT is to be turned into KRW there on arrival (``to_currency``).

The rebalancing plan lists the transfers (asset, from, to, amount) that put every venue
at its target exactly, the fewest for each asset (each transfer empties a surplus or
fills a deficit), with the network fee ``[inventory] network_fees`` estimates for it.
Nothing is withdrawn automatically: a person carries the plan out and records the
transfers (``POST /api/v1/inventory/transfers``); in simulation a recorded transfer
moves the paper balances.
"""

from __future__ import annotations

import decimal
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from arbotd._config import setting
from arbotd._ledger import USD_ASSETS, Ledger
from arbotd._model import Quote, split_symbol
from arbotd.fx import Conversion

__all__ = [
    "STATE_KEY",
    "AssetInventory",
    "Inventory",
    "InventoryConfig",
    "RecordedTransfer",
    "Transfer",
    "VenueShare",
    "format_report",
    "inventory_report",
]

log = logging.getLogger(__name__)

_EXACT = decimal.Context(prec=60, traps=[decimal.InvalidOperation])
# How far the targets of an asset may sum from 1 (they are written by hand as decimals).
_TARGET_SUM_TOLERANCE = 1e-9
#: The key the inventory's state (transfers, what drift cost) is saved under in storage.
STATE_KEY = "inventory"
# Recorded transfers kept (and saved across restarts) for the API.
MAX_TRANSFERS_KEPT = 200


def _targets_ok(targets: dict[str, dict[str, float]]) -> str | None:
    for asset, venues in targets.items():
        if not asset.isalnum() or asset.upper() != asset:
            return f"assets are written like BTC (upper case), got {asset!r}"
        if not venues:
            return f"{asset}: expected at least one venue"
        for venue, share in venues.items():
            if not math.isfinite(share) or not 0 <= share <= 1:
                return f"{asset}.{venue}: a target share is between 0 and 1, got {share!r}"
        total = sum(venues.values())
        if abs(total - 1) > _TARGET_SUM_TOLERANCE:
            return f"{asset}: the target shares sum to {total:g}, expected 1"
    return None


def _fees_ok(fees: dict[str, float]) -> str | None:
    for asset, fee in fees.items():
        if not asset.isalnum() or asset.upper() != asset:
            return f"assets are written like BTC (upper case), got {asset!r}"
        if not math.isfinite(fee) or fee < 0:
            return f"{asset}: a network fee is an amount of the asset, 0 or more, got {fee!r}"
    return None


@attrs.frozen
class InventoryConfig:
    """``[inventory]``: where each asset should be, when drift is worth a warning, and
    what moving an asset costs."""

    # Asset -> venue -> target share (the shares of an asset sum to 1). Assets not
    # listed: an equal share on every venue holding balances.
    targets: dict[str, dict[str, float]] = setting(factory=dict, check=_targets_ok)
    # A venue whose share of an asset is this far from its target is warned about (log,
    # bus event "inventory"), once until it comes back under.
    warn_drift: float = setting(0.25, gt=0, le=1)
    # Asset -> estimated network fee of one transfer, in the asset (BTC = 0.0002).
    network_fees: dict[str, float] = setting(factory=dict, check=_fees_ok)


@attrs.frozen
class VenueShare:
    """One venue's holding of an asset."""

    venue: str
    amount: Decimal
    target: float
    share: float
    drift: float


@attrs.frozen
class AssetInventory:
    """An asset over every venue; ``price`` (quote currency, ``None`` when unknown)
    values it."""

    asset: str
    total: Decimal
    price: float | None
    venues: tuple[VenueShare, ...]

    @property
    def max_drift(self) -> float:
        """The largest drift of a venue, in absolute value."""
        return max((abs(venue.drift) for venue in self.venues), default=0.0)


@attrs.frozen
class Transfer:
    """A transfer of the plan: ``amount`` of ``asset`` from ``source`` to
    ``destination``; ``network_fee`` (of the asset) is an estimate, ``fee_value`` its
    worth in the quote currency (``None`` without a price)."""

    asset: str
    source: str
    destination: str
    amount: Decimal
    network_fee: Decimal
    fee_value: float | None
    # A venue quoted in another currency holds the asset as that currency (KRW): bought
    # with it there before the transfer (source), sold for it there after (destination).
    from_currency: str | None = None
    to_currency: str | None = None


@attrs.frozen
class RecordedTransfer:
    """A transfer a person carried out and recorded."""

    id: int
    asset: str
    source: str
    destination: str
    amount: Decimal
    network_fee: Decimal
    timestamp: float
    actor: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "asset": self.asset, "from": self.source, "to": self.destination,
            "amount": str(self.amount), "network_fee": str(self.network_fee),
            "timestamp": self.timestamp, "actor": self.actor,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordedTransfer:
        return cls(
            id=int(data["id"]), asset=str(data["asset"]), source=str(data["from"]),
            destination=str(data["to"]), amount=Decimal(str(data["amount"])),
            network_fee=Decimal(str(data["network_fee"])), timestamp=float(data["timestamp"]),
            actor=data.get("actor"),
        )


class Inventory:
    """The inventory of the traded assets, read from the ledger's balances."""

    def __init__(
        self, ledger: Ledger, price_of: Callable[[str], float | None] | None = None
    ) -> None:
        self.ledger = ledger
        self.price_of = price_of or (lambda asset: None)
        # Venues quoted in another currency and their latest rate quotes (the engine's).
        self.conversions: Mapping[str, Conversion] = {}
        self.rates: Mapping[str, Quote] = {}
        self.config = InventoryConfig()
        self._assets: list[str] = []
        # The profit of signals turned down for lack of balance since the last recorded
        # transfer, each route counted at most once per ``window`` (as the signals it
        # would have sent), and when that count began.
        self.lost_profit = 0.0
        self.lost_since: float | None = None
        self.balance_rejections = 0
        self._lost_at: dict[tuple[str, str, str], float] = {}
        self.transfers: list[RecordedTransfer] = []
        # (asset, venue) pairs past ``warn_drift``, warned about once.
        self._warned: set[tuple[str, str]] = set()
        # ``(time, asset, venue, share, drift)`` samples (:meth:`sample`), once a minute
        # while ``keep_history`` (backtests, for their report; the daemon does not).
        self.keep_history = False
        self.history: list[tuple[float, str, str, float, float]] = []

    def configure(self, config: InventoryConfig, symbols: Iterable[str]) -> None:
        """Install the ``[inventory]`` settings and the traded symbols (start, reload)."""
        self.config = config
        assets: dict[str, None] = {}
        for symbol in symbols:
            try:
                base, quote = split_symbol(symbol)
            except ValueError:
                continue
            assets[base] = None
            assets[quote] = None
        self._assets = sorted(assets)

    # --- reading ------------------------------------------------------------------------

    @property
    def assets(self) -> list[str]:
        return list(self._assets)

    def venues(self, asset: str) -> list[str]:
        """The venues an asset is counted on: those holding balances, and those its
        targets name."""
        venues = set(self.ledger.exchanges())
        venues.update(self.config.targets.get(asset, ()))
        return sorted(venues)

    def targets(self, asset: str, venues: Sequence[str]) -> dict[str, Decimal]:
        """Each venue's target share of ``asset`` (exact decimals summing to 1)."""
        configured = self.config.targets.get(asset)
        if not venues:
            return {}
        if configured is None:
            weights = {venue: Decimal(1) for venue in venues}
        else:
            weights = {venue: Decimal(repr(configured.get(venue, 0.0))) for venue in venues}
        total = _sum(weights.values())
        if not total:
            return {venue: Decimal(0) for venue in venues}
        return _exact_parts(Decimal(1), {venue: _EXACT.divide(weight, total)
                                         for venue, weight in weights.items()}, venues)

    def _holdings(self, asset: str) -> tuple[list[str], dict[str, Decimal], Decimal]:
        """The venues ``asset`` is counted on, what each holds, and the total."""
        venues = self.venues(asset)
        amounts = {venue: self._held(venue, asset) for venue in venues}
        return venues, amounts, _sum(amounts.values())

    def _held(self, venue: str, asset: str) -> Decimal:
        """What ``venue`` holds of ``asset``; on a venue quoted in another currency, the
        quote currency includes that currency at the rate market's mid."""
        amount = self.ledger.total(venue, asset)
        conversion = self.conversions.get(venue)
        if conversion is None or conversion.priced != asset:
            return amount
        native = self.ledger.total(venue, conversion.currency)
        rate = self.rates.get(venue)
        if not native or rate is None or rate.mid <= 0:
            return amount
        return _EXACT.add(amount, _EXACT.divide(native, Decimal(repr(rate.mid))))

    def _held_as(self, venue: str, asset: str) -> str | None:
        """The currency ``venue`` holds ``asset`` as, when it is quoted in another one."""
        conversion = self.conversions.get(venue)
        if conversion is None or conversion.priced != asset:
            return None
        return conversion.currency

    def asset(self, asset: str) -> AssetInventory:
        venues, amounts, total = self._holdings(asset)
        targets = self.targets(asset, venues)
        rows = []
        for venue in venues:
            target = float(targets[venue])
            share = float(amounts[venue] / total) if total > 0 else target
            rows.append(VenueShare(venue=venue, amount=amounts[venue], target=target,
                                   share=share, drift=share - target))
        return AssetInventory(asset=asset, total=total, price=self._price(asset),
                              venues=tuple(rows))

    def snapshot(self) -> list[AssetInventory]:
        """Every traded asset, in name order."""
        return [self.asset(asset) for asset in self._assets]

    def route_pull(self, base: str, quote: str, buy_venue: str, sell_venue: str) -> float:
        """How much buying ``base`` on ``buy_venue`` and selling it on ``sell_venue``
        moves the inventory toward its targets: -1 (straight away) .. 1 (straight back).
        Runs only for books that may pay, never per quote."""
        base_drift = self._drifts(base, buy_venue, sell_venue)
        quote_drift = self._drifts(quote, buy_venue, sell_venue)
        base_pull = _clamp(base_drift[1] - base_drift[0])
        quote_pull = _clamp(quote_drift[0] - quote_drift[1])
        return (base_pull + quote_pull) / 2

    def _drifts(self, asset: str, first: str, second: str) -> tuple[float, float]:
        venues, amounts, total = self._holdings(asset)
        if total <= 0:
            return 0.0, 0.0
        targets = self.targets(asset, venues)
        return tuple(  # type: ignore[return-value]
            float(amounts.get(venue, Decimal(0)) / total) - float(targets.get(venue, 0))
            for venue in (first, second)
        )

    def _price(self, asset: str) -> float | None:
        if asset in USD_ASSETS:
            return 1.0
        return self.price_of(asset)

    # --- the plan ------------------------------------------------------------------------

    def plan(self) -> list[Transfer]:
        """The transfers that bring every venue of every traded asset to its target
        exactly, largest surplus to largest deficit."""
        transfers: list[Transfer] = []
        for asset in self._assets:
            transfers.extend(self.plan_asset(asset))
        return transfers

    def plan_asset(self, asset: str) -> list[Transfer]:
        venues, amounts, total = self._holdings(asset)
        if total <= 0:
            return []
        targets = self.targets(asset, venues)
        if not any(targets.values()):
            return []
        wanted = _exact_parts(total, targets, venues)
        surplus = {v: _EXACT.subtract(amounts[v], wanted[v]) for v in venues}
        givers = sorted((v for v in venues if surplus[v] > 0), key=lambda v: (-surplus[v], v))
        takers = sorted((v for v in venues if surplus[v] < 0), key=lambda v: (surplus[v], v))
        fee = Decimal(repr(self.config.network_fees.get(asset, 0.0)))
        price = self._price(asset)
        fee_value = float(fee) * price if price is not None else None
        transfers = []
        gi = ti = 0
        while gi < len(givers) and ti < len(takers):
            giver, taker = givers[gi], takers[ti]
            amount = min(surplus[giver], _EXACT.minus(surplus[taker]))
            transfers.append(Transfer(asset=asset, source=giver, destination=taker,
                                      amount=amount, network_fee=fee, fee_value=fee_value,
                                      from_currency=self._held_as(giver, asset),
                                      to_currency=self._held_as(taker, asset)))
            surplus[giver] = _EXACT.subtract(surplus[giver], amount)
            surplus[taker] = _EXACT.add(surplus[taker], amount)
            if not surplus[giver]:
                gi += 1
            if not surplus[taker]:
                ti += 1
        return transfers

    # --- what drift costs -------------------------------------------------------------------

    def note_balance_rejection(
        self, route: tuple[str, str, str], profit: float, now: float, window: float
    ) -> None:
        """A signal worth ``profit`` was turned down for lack of balance on ``route``:
        count its profit as lost, once per ``window`` seconds a route (a book that stays
        crossed is turned down on every quote, but would have sent one signal)."""
        self.balance_rejections += 1
        last = self._lost_at.get(route)
        if last is not None and now - last < max(window, 1.0):
            return
        self._lost_at[route] = now
        if profit > 0:
            if self.lost_since is None:
                self.lost_since = now
            self.lost_profit += profit

    def record_transfer(
        self, asset: str, source: str, destination: str, amount: Decimal,
        network_fee: Decimal, timestamp: float, actor: str | None = None,
    ) -> RecordedTransfer:
        """Keep a transfer a person carried out; the lost profit counts anew from it.
        The caller moves paper balances (:meth:`arbotd.Ledger.transfer`) where they are
        the daemon's own."""
        transfer = RecordedTransfer(
            id=(self.transfers[-1].id + 1) if self.transfers else 1, asset=asset,
            source=source, destination=destination, amount=amount,
            network_fee=network_fee, timestamp=timestamp, actor=actor)
        self.transfers.append(transfer)
        del self.transfers[:-MAX_TRANSFERS_KEPT]
        self.lost_profit = 0.0
        self.lost_since = timestamp
        self._lost_at.clear()
        return transfer

    # --- warnings ---------------------------------------------------------------------------

    def check_drift(self) -> list[tuple[str, str, float, bool]]:
        """``(asset, venue, drift, past)`` for each venue that passed ``warn_drift``
        (``past``) or came back under it since the last check; logged here."""
        level = self.config.warn_drift
        changes = []
        for inventory in self.snapshot():
            for row in inventory.venues:
                key = (inventory.asset, row.venue)
                past = abs(row.drift) >= level and inventory.total > 0
                if past and key not in self._warned:
                    self._warned.add(key)
                    changes.append((inventory.asset, row.venue, row.drift, True))
                    log.warning(
                        "inventory: %s on %s holds %.1f %% of the total, its target is "
                        "%.1f %% (drift %+.1f %%, warn_drift %.1f %%): see GET "
                        "/api/v1/inventory for the transfers that restore the targets",
                        inventory.asset, row.venue, row.share * 100, row.target * 100,
                        row.drift * 100, level * 100)
                elif not past and key in self._warned:
                    self._warned.discard(key)
                    changes.append((inventory.asset, row.venue, row.drift, False))
                    log.info("inventory: %s on %s is back within warn_drift (drift %+.1f %%)",
                             inventory.asset, row.venue, row.drift * 100)
        return changes

    def sample(self, now: float) -> None:
        """Keep every asset's shares and drifts at ``now`` in :attr:`history`."""
        for inventory in self.snapshot():
            if inventory.total <= 0:
                continue
            for row in inventory.venues:
                self.history.append((now, inventory.asset, row.venue, row.share, row.drift))

    def max_drifts(self) -> dict[str, dict[str, float]]:
        """The largest drift (in absolute value, sign kept) of each asset on each venue
        over :attr:`history`."""
        worst: dict[str, dict[str, float]] = {}
        for _, asset, venue, _, drift in self.history:
            venues = worst.setdefault(asset, {})
            if abs(drift) > abs(venues.get(venue, 0.0)):
                venues[venue] = drift
            else:
                venues.setdefault(venue, 0.0)
        return {asset: {v: round(d, 6) for v, d in sorted(venues.items())}
                for asset, venues in sorted(worst.items())}

    # --- kept across restarts -----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "lost_profit": self.lost_profit,
            "lost_since": self.lost_since,
            "balance_rejections": self.balance_rejections,
            "transfers": [t.to_json() for t in self.transfers],
        }

    def restore(self, saved: Mapping[str, Any] | None) -> None:
        if not saved:
            return
        try:
            self.lost_profit = float(saved.get("lost_profit", 0.0))
            since = saved.get("lost_since")
            self.lost_since = float(since) if since is not None else None
            self.balance_rejections = int(saved.get("balance_rejections", 0))
            self.transfers = [RecordedTransfer.from_json(t) for t in saved.get("transfers", ())]
        except (TypeError, ValueError, KeyError, decimal.InvalidOperation) as err:
            log.warning("inventory: the saved state could not be read (%s); starting afresh",
                        err)


def inventory_report(inventory: Inventory, *, skew: float = 0.0) -> dict[str, Any]:
    """The inventory as ``GET /api/v1/inventory`` shows it (and ``arbotd inventory`` and
    a backtest's report): every traded asset on every venue, the plan, what drift cost.
    Amounts to the asset's precision, money to the quote currency's
    (:mod:`arbotd.figures`); shares and drifts are fractions."""
    from arbotd.figures import money

    assets = []
    for row in inventory.snapshot():
        price = row.price
        assets.append({
            "asset": row.asset,
            "total": money(row.total, row.asset),
            "price": price,
            "value": money(float(row.total) * price) if price is not None else None,
            "max_drift": round(row.max_drift, 6),
            "exchanges": [{
                "exchange": venue.venue,
                "amount": money(venue.amount, row.asset),
                "value": money(float(venue.amount) * price) if price is not None else None,
                "target": round(venue.target, 6),
                "share": round(venue.share, 6),
                "drift": round(venue.drift, 6),
            } for venue in row.venues],
        })
    plan = inventory.plan()
    fee_values = [t.fee_value for t in plan]
    return {
        "assets": assets,
        "plan": [{
            "asset": t.asset, "from": t.source, "to": t.destination,
            "amount": money(t.amount, t.asset),
            "network_fee": money(t.network_fee, t.asset),
            "fee_value": money(t.fee_value) if t.fee_value is not None else None,
            "from_currency": t.from_currency,
            "to_currency": t.to_currency,
        } for t in plan],
        "plan_fee_value": (money(sum(v for v in fee_values if v is not None))
                           if all(v is not None for v in fee_values) else None),
        "lost_profit": money(inventory.lost_profit),
        "lost_since": inventory.lost_since,
        "balance_rejections": inventory.balance_rejections,
        "inventory_skew": skew,
        "warn_drift": inventory.config.warn_drift,
        "transfers": [t.to_json() for t in reversed(inventory.transfers[-20:])],
    }


def format_report(report: Mapping[str, Any]) -> str:
    """:func:`inventory_report`'s answer as ``arbotd inventory`` prints it."""
    from arbotd._timefmt import iso_utc

    lines = []
    for asset in report["assets"]:
        price = asset["price"]
        head = f"{asset['asset']}  total {asset['total']:g}"
        if price is not None:
            head += f"  price {price:,.8g}  value {asset['value']:,.2f}"
        lines.append(head)
        lines.append(f"  {'exchange':<12}{'amount':>18}{'share':>10}{'target':>10}{'drift':>10}")
        for venue in asset["exchanges"]:
            lines.append(
                f"  {venue['exchange']:<12}{venue['amount']:>18,.8g}"
                f"{venue['share'] * 100:>9.1f}%{venue['target'] * 100:>9.1f}%"
                f"{venue['drift'] * 100:>+9.1f}%")
    lines.append("")
    if report["plan"]:
        lines.append("Transfers that restore the targets (carry them out by hand, then record "
                     "them: POST /api/v1/inventory/transfers):")
        for move in report["plan"]:
            fee = f"network fee ~{move['network_fee']:g} {move['asset']}"
            if move["fee_value"] is not None:
                fee += f" ({move['fee_value']:,.2f})"
            lines.append(f"  {move['asset']:<6} {move['from']} -> {move['to']}: "
                         f"{move['amount']:,.8g}  ({fee})")
            if move.get("from_currency"):
                lines.append(f"         buy it with {move['from_currency']} on "
                             f"{move['from']} first")
            if move.get("to_currency"):
                lines.append(f"         sell it for {move['to_currency']} on "
                             f"{move['to']} on arrival")
    else:
        lines.append("Every asset is at its targets: no transfer needed.")
    since = report.get("lost_since")
    lines.append(
        f"Profit turned down for lack of balance: {report['lost_profit']:,.2f} "
        f"({report['balance_rejections']} rejections"
        + (f", since {iso_utc(since)}" if since is not None else "") + ")")
    lines.append(f"inventory_skew {report['inventory_skew']:g}, warn_drift "
                 f"{report['warn_drift'] * 100:g} %")
    return "\n".join(lines)


def _exact_parts(whole: Decimal, fractions: Mapping[str, Decimal], order: Sequence[str]
                 ) -> dict[str, Decimal]:
    """``whole`` split by ``fractions`` (of ``order``'s venues, at least one not 0), the
    parts summing to ``whole`` exactly: the last venue in ``order`` with a part takes what
    rounding left."""
    parts = {venue: _EXACT.multiply(whole, fractions[venue]) for venue in order}
    last = max((v for v in order if fractions[v]), key=order.index)
    parts[last] = _EXACT.subtract(whole, _sum(p for v, p in parts.items() if v != last))
    return parts


def _sum(values: Iterable[Decimal]) -> Decimal:
    """An exact sum (the default context would round to 28 digits)."""
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return total


def _clamp(value: float) -> float:
    return -1.0 if value < -1.0 else 1.0 if value > 1.0 else value
