"""Inventory: ``GET /inventory`` and ``POST /inventory/transfers``.

``GET /inventory`` shows every traded asset on every venue against its target share,
the transfers that restore the targets (with estimated network fees) and the profit
turned down for lack of balance since the last recorded transfer
(:func:`arbotd.inventory.inventory_report`).

``POST /inventory/transfers`` (trading scope) records a transfer a person carried out:
``{"asset": "BTC", "from": "binance", "to": "okx", "amount": 0.25, "network_fee":
0.0002}`` (``network_fee`` optional, default ``[inventory] network_fees``). In
simulation the paper balances move (``amount`` leaves ``from``, ``amount -
network_fee`` reaches ``to``); in live mode the exchanges' balances tell, and the record
only restarts the count of what drift cost. Nothing is ever withdrawn by the daemon.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

from quart import Blueprint, Response

from arbotd.inventory import STATE_KEY, inventory_report
from arbotd_api.audit import current_actor
from arbotd_api.context import json_body, kind, state
from arbotd_api.errors import ApiError, json_response

__all__ = ["blueprint"]

blueprint = Blueprint("inventory", __name__)

def _runtime() -> Any:
    runtime = state().runtime
    assert runtime.engine is not None
    return runtime


def _skew(runtime: Any) -> float:
    arbitrage = runtime.config.get("arbitrage")
    return float(getattr(arbitrage, "inventory_skew", 0.0)) if arbitrage is not None else 0.0


@blueprint.get("/inventory")
@kind("read")
async def get_inventory() -> Response:
    runtime = _runtime()
    report = inventory_report(runtime.engine.inventory, skew=_skew(runtime))
    return json_response({"timestamp": runtime.clock(), **report})


def _invalid(field: str, message: str) -> ApiError:
    return ApiError("VALIDATION_ERROR", message, {"field": field})


def _amount(body: dict[str, Any], field: str, default: float | None = None) -> Decimal:
    value = body.get(field, default)
    if value is None:
        raise _invalid(field, f"{field} is required")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(field, f"{field} must be a number")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value))
    except decimal.InvalidOperation:
        raise _invalid(field, f"{field} must be a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e12"):
        raise _invalid(field, f"{field} must be a finite amount from 0 to 1e12")
    return amount


@blueprint.post("/inventory/transfers")
@kind("write")
async def record_transfer() -> Response:
    body = await json_body()
    runtime = _runtime()
    inventory = runtime.engine.inventory
    asset = body.get("asset")
    if not isinstance(asset, str) or asset not in inventory.assets:
        raise ApiError("VALIDATION_ERROR",
                       f"asset must be one of the traded assets {inventory.assets}",
                       {"field": "asset", "valid_assets": inventory.assets})
    venues = sorted(runtime.engine.market.fees)
    for field in ("from", "to"):
        if body.get(field) not in venues:
            raise ApiError("EXCHANGE_NOT_AVAILABLE",
                           f"{field} must be an enabled exchange, got {body.get(field)!r}",
                           {"field": field, "available_exchanges": venues})
    source, destination = body["from"], body["to"]
    if source == destination:
        raise _invalid("to", "from and to must be different exchanges")
    amount = _amount(body, "amount")
    if amount <= 0:
        raise _invalid("amount", "amount must be more than 0")
    fee = _amount(body, "network_fee", inventory.config.network_fees.get(asset, 0.0))
    if fee >= amount:
        raise _invalid("network_fee", "network_fee must be less than amount")
    control = runtime.control
    paper = ((control.mode if control is not None else None)
             or runtime.config.daemon.mode) != "live"
    if paper:
        try:
            runtime.ledger.transfer(asset, source, destination, amount, fee)
        except ValueError as err:
            raise ApiError("INSUFFICIENT_BALANCE", str(err),
                           {"exchange": source, "asset": asset}) from None
    transfer = inventory.record_transfer(asset, source, destination, amount, fee,
                                         runtime.clock(), actor=current_actor())
    storage = runtime.storage
    save = getattr(storage, "save_state", None)
    if callable(save):
        # On disk before the answer: the next start knows the transfer happened.
        await save(STATE_KEY, inventory.state())
    return json_response({"success": True, "paper_balances_moved": paper,
                          "transfer": transfer.to_json()}, status=201)

