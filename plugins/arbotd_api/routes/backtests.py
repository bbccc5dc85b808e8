"""Backtests over the quotes the daemon recorded: ``POST /trading/start`` with
``"mode": "backtest"``, ``GET /backtests`` and ``GET /backtests/{backtest_id}``.

A backtest replays the storage's recorded quotes (``[storage] record_quotes = true``)
from ``start_time`` to ``end_time`` (epoch seconds, both required) through the configured
strategies, risk checks and paper fills, in virtual time, in a worker thread of its own.
The daemon's feeds, trading state and database are left alone: the answer to the start
request is the usual start fields plus ``backtest_id``, and the results are read with
``GET /backtests/{backtest_id}`` (``status`` ``running``, ``completed`` or ``failed``,
``progress_percent``, ``metrics`` once completed, and a page of its trades, ``limit`` and
``offset`` as for ``/trades``). Optional fields: ``symbols`` and ``exchanges`` (only
these are replayed), ``balance`` (starting quote-currency balance per exchange, default
``[backtest] balance``). One backtest runs at a time; the 20 latest finished ones are kept
until the daemon restarts.

The backtests are run by the object a plugin offers at
``runtime.plugin_state["backtest"]`` (the builtin ``replay`` plugin; its module
``arbotd_replay.runner`` documents the methods used here). Without it, ``mode:
backtest`` answers ``TRADING_DISABLED``.
"""

from __future__ import annotations

import math
from typing import Any

from quart import Blueprint, Response

from arbotd_api.context import MAX_TIME, int_param, kind, path_id, state, string_list
from arbotd_api.errors import ApiError, json_response

__all__ = ["RUNNER_KEY", "blueprint", "start_backtest"]

blueprint = Blueprint("backtests", __name__)

RUNNER_KEY = "backtest"
MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000


def _runner() -> Any:
    runner = state().runtime.plugin_state.get(RUNNER_KEY)
    if runner is None:
        raise ApiError("TRADING_DISABLED",
                       "backtests need the replay plugin, which is not installed or is "
                       "disabled", {"mode": "backtest"})
    return runner


def _number(body: dict[str, Any], field: str, *, required: bool) -> float | None:
    value = body.get(field)
    if value is None:
        if required:
            raise ApiError("VALIDATION_ERROR", f"{field} is required for a backtest "
                           "(epoch seconds)", {"field": field})
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value < 0:
        raise ApiError("VALIDATION_ERROR", f"{field} must be a number >= 0",
                       {"field": field, "provided": value})
    if field.endswith("_time") and value > MAX_TIME:
        raise ApiError("VALIDATION_ERROR", f"{field} must be epoch seconds before the year "
                       "10000", {"field": field, "provided": value})
    return float(value)


def check_backtest_fields(body: dict[str, Any]) -> None:
    """Refuse a start request whose backtest fields are malformed, whatever its mode: the
    other modes do not use them, but a wrong value is still a wrong request."""
    _number(body, "start_time", required=False)
    _number(body, "end_time", required=False)
    _balance(body)


def _balance(body: dict[str, Any]) -> float | None:
    balance = _number(body, "balance", required=False)
    if balance is not None and balance <= 0:
        raise ApiError("VALIDATION_ERROR", "balance must be above 0", {"field": "balance"})
    return balance


async def start_backtest(body: dict[str, Any]) -> Response:
    """``POST /trading/start`` with ``"mode": "backtest"``."""
    runner = _runner()
    start = _number(body, "start_time", required=True)
    end = _number(body, "end_time", required=True)
    assert start is not None and end is not None
    if start >= end:
        raise ApiError("VALIDATION_ERROR", "end_time must be after start_time",
                       {"field": "end_time"})
    balance = _balance(body)
    result = await runner.start_stored(
        start_time=start, end_time=end, symbols=string_list(body, "symbols"),
        exchanges=string_list(body, "exchanges"), balance=balance)
    return json_response({"success": True, "message": "Backtest started", **result})


@blueprint.get("/backtests")
@kind("read")
async def list_backtests() -> Response:
    jobs = _runner().jobs()
    return json_response({"backtests": [job.describe() for job in jobs],
                          "total_count": len(jobs)})


@blueprint.get("/backtests/<backtest_id>")
@kind("read")
async def get_backtest(backtest_id: str) -> Response:
    number = path_id(backtest_id, "backtest_id")
    limit = int_param("limit", 100, 1, MAX_LIMIT)
    offset = int_param("offset", 0, 0, MAX_OFFSET)
    job = _runner().job(number)
    if job is None:
        raise ApiError("NOT_FOUND", f"Backtest {number} not found", {"backtest_id": number})
    trades, total = job.trades(limit, offset)
    return json_response({
        **job.describe(),
        "trades": trades,
        "pagination": {"limit": limit, "offset": offset, "total_count": total,
                       "has_more": offset + len(trades) < total},
    })
