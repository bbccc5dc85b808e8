"""Trading control, its configuration, and risk: ``/trading/*`` and ``/risk/*``.

``PUT /trading/config`` takes partial tables, ``{"arbitrage": {"min_profit_threshold":
0.004}}``, of the keys on the allow-list: those the sections declare
``setting(api=True)`` (trading parameters; see ``arbotd.api_editable_settings``). Any
other key of the configuration is refused with ``FORBIDDEN`` naming it, an unknown one
with ``VALIDATION_ERROR``, and nothing is written. The file is validated, written with
its comments kept, and applied as a reload would (and refused, unwritten, when a reload
would be). ``updated_fields`` names the keys whose value changed, by their key name as in
the reference (``"min_profit_threshold"``).
"""

from __future__ import annotations

import difflib
from typing import Any

from quart import Blueprint, Response

from arbotd import ConfigError, LimitUse, api_editable_settings, find_setting
from arbotd_api.context import json_body, kind, state, string_list
from arbotd_api.errors import ApiError, json_response
from arbotd_api.routes.backtests import check_backtest_fields, start_backtest

blueprint = Blueprint("trading", __name__)

ARBITRAGE_FIELDS = ("min_profit_threshold", "max_position_size", "trade_amount_usd",
                    "use_trend_filter", "trend_filter_mode")
RISK_FIELDS = ("max_drawdown_percent", "stop_loss_percent", "max_concurrent_trades")


def _control() -> Any:
    control = state().runtime.control
    assert control is not None
    return control


@blueprint.post("/trading/start")
@kind("write")
async def start_trading() -> Response:
    body = await json_body(optional=True)
    mode = body.get("mode", state().runtime.config.daemon.mode)
    if not isinstance(mode, str):
        raise ApiError("VALIDATION_ERROR", "mode must be a string", {"field": "mode"})
    if mode == "backtest":
        # A replay of recorded quotes beside the daemon; its trading is left alone.
        return await start_backtest(body)
    check_backtest_fields(body)
    result = _control().start(mode, string_list(body, "symbols"), string_list(body, "exchanges"))
    return json_response({"success": True, "message": "Trading started successfully", **result})


@blueprint.post("/trading/stop")
@kind("write")
async def stop_trading() -> Response:
    await json_body(optional=True)
    result = _control().stop()
    return json_response({"success": True, "message": "Trading stopped successfully", **result})


def _pick(section: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(section, f) for f in fields if hasattr(section, f)}


@blueprint.get("/trading/config")
@kind("read")
async def get_trading_config() -> Response:
    runtime = state().runtime
    config = runtime.config
    exchanges: dict[str, dict[str, bool]] = {
        name: {"enabled": bool(getattr(section, "enabled", True))}
        for name, section in config.under("exchanges").items()
    }
    if runtime.feeds is not None:
        for name in runtime.feeds.adapters:
            exchanges.setdefault(name, {"enabled": True})
    return json_response({
        "arbitrage": _pick(config.get("arbitrage"), ARBITRAGE_FIELDS),
        "risk_management": _pick(config.get("risk_management"), RISK_FIELDS),
        "exchanges": dict(sorted(exchanges.items())),
    })


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        if not value:
            raise ApiError("VALIDATION_ERROR", f"{path}: empty table", {"field": path})
        for key, item in value.items():
            _flatten(item, f"{path}.{key}", out)
    elif value is None:
        raise ApiError("VALIDATION_ERROR", f"{path}: null is not a value", {"field": path})
    else:
        out[path] = value


def config_updates(body: dict[str, Any]) -> dict[str, Any]:
    if not body:
        raise ApiError("VALIDATION_ERROR", "Nothing to update")
    updates: dict[str, Any] = {}
    for table, values in body.items():
        if not isinstance(values, dict):
            raise ApiError("VALIDATION_ERROR", f"{table} must be an object of keys to values",
                           {"field": table})
        _flatten(values, table, updates)
    return updates


def refuse_outside_allow_list(updates: dict[str, Any], schema: dict[str, type]) -> None:
    """Raise unless every key of ``updates`` is a setting the API may change: a known key
    that is not on the allow-list is ``FORBIDDEN`` (it is set in the file, by someone with
    access to the machine), an unknown one a ``VALIDATION_ERROR``."""
    editable = list(api_editable_settings(schema))
    forbidden: list[str] = []
    unknown: list[str] = []
    for key in updates:
        path, field = find_setting(key, schema)
        if field is None:
            unknown.append(path)
        elif path not in editable:
            forbidden.append(path)
    if forbidden:
        raise ApiError(
            "FORBIDDEN",
            f"{forbidden[0]} cannot be changed through the API: set it in the configuration "
            "file; the API may change trading parameters only",
            {"field": forbidden[0], "forbidden": forbidden, "editable": editable},
        )
    if unknown:
        path = unknown[0]
        close = difflib.get_close_matches(path, editable, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        what = "is a table, not a key" if path in schema else "unknown key"
        raise ApiError("VALIDATION_ERROR", f"{path}: {what}{hint}",
                       {"field": path, "editable": editable})


def _problems(err: ConfigError) -> dict[str, Any]:
    problems = [{"field": p.path, "message": p.message} for p in err.problems]
    return {"field": problems[0]["field"] if problems else "", "problems": problems}


@blueprint.put("/trading/config")
@kind("write")
async def put_trading_config() -> Response:
    updates = config_updates(await json_body())
    runtime = state().runtime
    refuse_outside_allow_list(updates, runtime.config.schema)
    try:
        changed, outcome = await runtime.update_config(updates)
    except ConfigError as err:
        first = err.problems[0] if err.problems else None
        message = f"{first.path}: {first.message}" if first else "Invalid configuration"
        raise ApiError("VALIDATION_ERROR", message, _problems(err)) from None
    if outcome.error is not None:
        # The file on disk holds what only a restart may apply (or lost tables): the
        # edit is refused as that reload is, and nothing is written.
        first = outcome.error.problems[0]
        raise ApiError("VALIDATION_ERROR",
                       "Not applied and not written: the configuration file holds changes "
                       f"only a restart applies ({first.path or first.file}: "
                       f"{first.message})", _problems(outcome.error))
    return json_response({
        "success": True,
        "message": "Configuration updated successfully" if changed
        else "Configuration unchanged",
        "updated_fields": [path.rsplit(".", 1)[-1] for path in changed],
    })


@blueprint.post("/risk/emergency-stop")
@kind("write")
async def emergency_stop() -> Response:
    await json_body(optional=True)
    result = await _control().emergency_stop()
    return json_response({"success": True, "message": "Emergency stop activated", **result})


def current_key(name: str) -> str:
    """The reference's name for the current use of a limit: ``max_drawdown_percent`` →
    ``current_drawdown_percent``, ``max_concurrent_trades`` → ``current_active_trades``,
    ``daily_loss_limit`` → ``current_daily_loss``."""
    if name == "max_concurrent_trades":
        return "current_active_trades"
    if name.startswith("max_"):
        return "current_" + name[4:]
    if name.endswith("_limit"):
        return "current_" + name[: -len("_limit")]
    return "current_" + name


@blueprint.get("/risk/limits")
@kind("read")
async def risk_limits() -> Response:
    uses: list[LimitUse] = [use for check in _control().risk_checks for use in check.limits()]
    limits: dict[str, float] = {}
    warnings: list[str] = []
    for use in uses:
        # Money to its precision, percents to 4 places: no float noise at the edge.
        limits[use.name] = round(use.limit, 8)
        limits[current_key(use.name)] = round(use.current, 8)
        if use.status != "normal":
            warnings.append(f"{use.name}: {use.current:g} of {use.limit:g} used "
                            f"({use.status})")
    statuses = {use.status for use in uses}
    overall = ("critical" if "critical" in statuses
               else "warning" if "warning" in statuses else "normal")
    return json_response({"limits": limits, "status": overall, "warnings": warnings})
