"""History, performance, analytics and batch trading: ``/trades``, ``/trades/{id}``,
``/signals``, ``/prices/history``, ``/performance``, ``/analytics/query`` and
``/batch/trades``.

The history comes from the storage backend when it is a :class:`arbotd.HistoryStore`;
otherwise (no storage plugin, or one without history) those endpoints answer 503
``STORAGE_NOT_AVAILABLE``.

Parameters are checked strictly: a malformed value answers ``VALIDATION_ERROR`` naming
it in ``details.field``; a symbol that is not configured ``INVALID_SYMBOL`` with the
valid ones; an exchange that is not enabled ``EXCHANGE_NOT_AVAILABLE`` (as
``/prices/current``). Dates are ``YYYY-MM-DD`` (UTC days), times epoch seconds.

- ``/trades/{trade_id}``: a trade id that is not a positive integer is a
  ``VALIDATION_ERROR`` (400); an unknown one ``NOT_FOUND`` (404).
- ``/prices/history`` answers at most :data:`MAX_CANDLES` candles: a longer range at that
  interval is a ``VALIDATION_ERROR`` on ``interval``.
- ``/performance`` and the ``symbol_performance`` query count the trades of the daemon's
  current trading mode only (the mode trading was last started in, else ``[daemon]
  mode``), so paper results never mix with live ones.
- ``POST /analytics/query`` only reads: it needs the read scope and counts as a read
  for the rate limits.
- ``POST /batch/trades`` needs the trading scope. Each operation runs on its own and
  reports ``{"operation": n, "success", "trade_id"?, "error"?}``; a malformed operation
  refuses the whole request (``VALIDATION_ERROR``, ``details.operation`` its 1-based
  number, ``details.field`` its JSON path). ``execute_signal`` takes a signal the engine
  found in the last :data:`SIGNAL_MAX_AGE` seconds (the API cannot see a strategy's own
  freshness setting) and hands it, with the quantity asked for (at most the signal's),
  to the control's checks, as the engine would while trading is on; one the balances
  cannot cover fails with ``"code": "INSUFFICIENT_BALANCE"`` and ``details`` (the exchange
  and asset short, required and available). ``cancel_trade`` cancels a trade in flight
  whose orders have not left or are not final yet (paper orders waiting to fill); it
  answers once the trade is over, ``success`` when it ended ``cancelled``, else why not
  (its orders had filled; a finished or unknown trade).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
from quart import Blueprint, Response, request

from arbotd import FINAL_STATES, HistoryStore, TradeState
from arbotd_api.context import MAX_ID, epoch_param, int_param, json_body, kind, path_id, state
from arbotd_api.errors import ApiError, json_response

__all__ = ["MAX_CANDLES", "SIGNAL_MAX_AGE", "blueprint"]

blueprint = Blueprint("history", __name__)

T = TypeVar("T")

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000
MAX_CANDLES = 10_000
MAX_OPERATIONS = 100
SIGNAL_MAX_AGE = 10.0
"""Seconds after which a signal can no longer be executed through ``/batch/trades``."""

INTERVALS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
PERIODS = ("day", "week", "month", "year")
QUERY_TYPES = ("symbol_performance",)
SYMBOL_METRICS = ("profit", "win_rate", "volume")
OPERATION_TYPES = ("execute_signal", "cancel_trade")
TRADE_STATES = tuple(member.value for member in TradeState)
_FINAL = frozenset(member.value for member in FINAL_STATES)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class StorageNotAvailable(ApiError):
    """503: the history endpoints need a storage backend that keeps history."""

    def __init__(self) -> None:
        super().__init__(
            "STORAGE_NOT_AVAILABLE",
            "No storage with history is enabled: enable the sql plugin and [storage]",
        )


def _invalid(field: str, message: str, **details: Any) -> ApiError:
    return ApiError("VALIDATION_ERROR", message, {"field": field, **details})


def _store() -> HistoryStore:
    storage = state().runtime.storage
    if not isinstance(storage, HistoryStore):
        raise StorageNotAvailable()
    return storage


async def _ask(call: Callable[..., Awaitable[T]], field: str, **kwargs: Any) -> T:
    """A store method; its ``ValueError`` is the caller's mistake about ``field``."""
    try:
        return await call(**kwargs)
    except ValueError as err:
        raise _invalid(field, str(err)) from None


def _mode() -> str:
    runtime = state().runtime
    control = runtime.control
    return (control.mode if control is not None else None) or runtime.config.daemon.mode


# --- parameters -------------------------------------------------------------------------


def _valid_symbols() -> list[str]:
    control = state().runtime.control
    return list(control.symbols) if control is not None else []


def check_symbol(symbol: str, field: str = "symbol") -> str:
    valid = _valid_symbols()
    if symbol not in valid:
        raise ApiError("INVALID_SYMBOL", f"Symbol {symbol!r} is not supported",
                       {"valid_symbols": valid, "provided_symbol": symbol, "field": field})
    return symbol


def _symbol_param(*, required: bool = False) -> str | None:
    raw = request.args.get("symbol")
    if not raw:
        if required:
            raise _invalid("symbol", "symbol is required")
        return None
    return check_symbol(raw)


def _exchange_param() -> str | None:
    raw = request.args.get("exchange")
    if not raw:
        return None
    engine = state().runtime.engine
    venues = sorted(engine.market.fees) if engine is not None else []
    if raw not in venues:
        raise ApiError("EXCHANGE_NOT_AVAILABLE", f"Exchange {raw!r} is not enabled",
                       {"available_exchanges": venues, "provided_exchange": raw})
    return raw


def parse_date(raw: Any, field: str) -> dt.date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str) and _DATE.fullmatch(raw):
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    raise _invalid(field, f"{field} must be a date as YYYY-MM-DD", provided=raw)


def _date_range(source: Any, prefix: str = "") -> tuple[dt.date | None, dt.date | None]:
    """``start_date`` and ``end_date`` of ``source``; errors name ``prefix + key``."""
    start_field, end_field = f"{prefix}start_date", f"{prefix}end_date"
    start = parse_date(source.get("start_date"), start_field)
    end = parse_date(source.get("end_date"), end_field)
    if start is not None and end is not None and start > end:
        raise _invalid(start_field, f"{start_field} is after {end_field}")
    return start, end


def _time_range(*, required: bool = False) -> tuple[float | None, float | None]:
    start = epoch_param("start_time", required=required)
    end = epoch_param("end_time", required=required)
    if start is not None and end is not None and start > end:
        raise _invalid("start_time", "start_time is after end_time")
    return start, end


def _choice_param(name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise _invalid(name, f"{name} must be one of {', '.join(choices)}",
                       provided=raw, allowed=list(choices))
    return raw


def _bool_param(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise _invalid(name, f"{name} must be true or false", provided=raw)


# --- history ------------------------------------------------------------------------------


@blueprint.get("/trades")
@kind("read")
async def list_trades() -> Response:
    store = _store()
    start, end = _date_range(request.args)
    answer = await _ask(
        store.trades, "status",
        start_date=start, end_date=end, symbol=_symbol_param(),
        status=_choice_param("status", TRADE_STATES),
        limit=int_param("limit", 100, 1, MAX_LIMIT),
        offset=int_param("offset", 0, 0, MAX_OFFSET),
    )
    return json_response(answer)


@blueprint.get("/trades/<trade_id>")
@kind("read")
async def get_trade(trade_id: str) -> Response:
    number = path_id(trade_id, "trade_id")
    store = _store()
    answer = await store.trade(number)
    if answer is None:
        raise ApiError("NOT_FOUND", f"Trade {number} not found", {"trade_id": number})
    return json_response(answer)


@blueprint.get("/signals")
@kind("read")
async def list_signals() -> Response:
    store = _store()
    start, end = _time_range()
    answer = await _ask(
        store.signals, "start_time",
        start_time=start, end_time=end, symbol=_symbol_param(),
        executed=_bool_param("executed"),
        limit=int_param("limit", 100, 1, MAX_LIMIT),
        offset=int_param("offset", 0, 0, MAX_OFFSET),
    )
    return json_response(answer)


@blueprint.get("/prices/history")
@kind("read")
async def price_history() -> Response:
    store = _store()
    symbol = _symbol_param(required=True)
    exchange = _exchange_param()
    start, end = _time_range(required=True)
    assert start is not None and end is not None
    interval = _choice_param("interval", tuple(INTERVALS)) or "1m"
    size = INTERVALS[interval]
    candles = math.floor(end / size) - math.ceil(start / size) + 1
    if candles > MAX_CANDLES:
        raise _invalid("interval", f"the range holds {candles} candles of {interval}, more "
                       f"than {MAX_CANDLES}: ask for a shorter range or a longer interval",
                       max_candles=MAX_CANDLES, requested_candles=candles)
    answer = await _ask(store.price_history, "interval", symbol=symbol, exchange=exchange,
                        start_time=start, end_time=end, interval=interval)
    return json_response(answer)


@blueprint.get("/performance")
@kind("read")
async def performance() -> Response:
    store = _store()
    period = _choice_param("period", PERIODS)
    start, end = _date_range(request.args)
    if period is not None and (start is not None or end is not None):
        raise _invalid("period", "give either period or start_date/end_date, not both")
    answer = await _ask(store.performance, "start_date", start=start, end=end,
                        period=period, mode=_mode())
    return json_response(answer)


# --- analytics ------------------------------------------------------------------------------


def _string_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _invalid(field, f"{field} must be a non-empty list of strings")
    return value


@blueprint.post("/analytics/query")
@kind("read")
async def analytics_query() -> Response:
    body = await json_body()
    query_type = body.get("query_type")
    if query_type not in QUERY_TYPES:
        raise _invalid("query_type", f"query_type must be one of {', '.join(QUERY_TYPES)}",
                       supported=list(QUERY_TYPES), provided=query_type)
    unknown = sorted(set(body) - {"query_type", "parameters"})
    if unknown:
        raise _invalid(unknown[0], f"unknown field {unknown[0]!r}")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise _invalid("parameters", "parameters must be an object")
    allowed = ("symbols", "start_date", "end_date", "metrics")
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise _invalid(f"parameters.{unknown[0]}", f"unknown parameter {unknown[0]!r}",
                       allowed=list(allowed))
    symbols = None
    if parameters.get("symbols") is not None:
        symbols = _string_list(parameters["symbols"], "parameters.symbols")
        for symbol in symbols:
            check_symbol(symbol, "parameters.symbols")
        symbols = list(dict.fromkeys(symbols))
    metrics = None
    if parameters.get("metrics") is not None:
        metrics = _string_list(parameters["metrics"], "parameters.metrics")
        unknown = [m for m in metrics if m not in SYMBOL_METRICS]
        if unknown:
            raise _invalid("parameters.metrics", f"unknown metric {unknown[0]!r}",
                           allowed=list(SYMBOL_METRICS))
        metrics = list(dict.fromkeys(metrics))
    start, end = _date_range(parameters, "parameters.")
    began = time.perf_counter()
    results = await _ask(_store().symbol_performance, "parameters", symbols=symbols,
                         start=start, end=end, metrics=metrics, mode=_mode())
    elapsed = round((time.perf_counter() - began) * 1000)
    return json_response({"query_type": query_type, "results": results,
                          "execution_time_ms": elapsed})


# --- batch operations ---------------------------------------------------------------------------


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def _operations(body: dict[str, Any]) -> list[dict[str, Any]]:
    operations = body.get("operations")
    if not isinstance(operations, list) or not operations:
        raise _invalid("operations", "operations must be a non-empty list")
    if len(operations) > MAX_OPERATIONS:
        raise _invalid("operations", f"at most {MAX_OPERATIONS} operations per request")
    fields = {"execute_signal": {"type", "signal_id", "quantity"},
              "cancel_trade": {"type", "trade_id"}}
    for index, operation in enumerate(operations):
        number, path = index + 1, f"operations[{index}]"

        def bad(field: str, message: str, *, number: int = number, path: str = path
                ) -> ApiError:
            where = f"{path}.{field}" if field else path
            return _invalid(where, f"operation {number}: {message}", operation=number)

        if not isinstance(operation, dict):
            raise bad("", "must be an object")
        kind_ = operation.get("type")
        if kind_ not in OPERATION_TYPES:
            raise bad("type", f"type must be one of {', '.join(OPERATION_TYPES)}")
        unknown = sorted(set(operation) - fields[kind_])
        if unknown:
            raise bad(unknown[0], f"unknown field {unknown[0]!r}")
        if kind_ == "execute_signal":
            if not _positive_int(operation.get("signal_id")):
                raise bad("signal_id", "signal_id must be a positive integer")
            quantity = operation.get("quantity")
            if quantity is not None and not (
                isinstance(quantity, int | float) and not isinstance(quantity, bool)
                and math.isfinite(quantity) and quantity > 0
            ):
                raise bad("quantity", "quantity must be a positive number")
        elif not _positive_int(operation.get("trade_id")):
            raise bad("trade_id", "trade_id must be a positive integer")
    return operations


def _execute_signal(signal_id: int, quantity: float | None) -> dict[str, Any]:
    runtime = state().runtime
    control, engine = runtime.control, runtime.engine
    assert control is not None and engine is not None
    signal = next((s for s in reversed(engine.last_signals) if s.id == signal_id), None)
    if signal is None:
        return {"success": False, "error": "Signal not found"}
    already = signal.executed or any(
        trade.signal_id == signal_id
        for trade in (*control.active.values(), *control.recent_trades.values())
    )
    if already:
        return {"success": False, "error": "Signal already executed"}
    if control.clock() - signal.timestamp > SIGNAL_MAX_AGE:
        return {"success": False, "error": "Signal expired"}
    if quantity is not None:
        if quantity > signal.quantity:
            return {"success": False,
                    "error": f"Quantity exceeds the signal's quantity ({signal.quantity:g})"}
        scale = quantity / signal.quantity
        signal = attrs.evolve(signal, quantity=quantity, profit=signal.profit * scale,
                              fees=signal.fees * scale)
    if not control.trading:
        return {"success": False, "error": "Trading is not started"}
    shortfall = control.balance_shortfall(signal)
    outcome = control.consider(signal)
    if not outcome.executed:
        if outcome.reject_reason == "balance" and shortfall is not None:
            return {"success": False, "code": "INSUFFICIENT_BALANCE",
                    "error": f"Insufficient {shortfall['asset']} on "
                             f"{shortfall['exchange']} for this trade",
                    "details": shortfall}
        return {"success": False,
                "error": f"Signal rejected: {outcome.reject_reason or 'not accepted'}"}
    if runtime.storage is not None:
        runtime.storage.record_signal(outcome)
    trade_id = max(t.id for t in control.recent_trades.values() if t.signal_id == signal_id)
    return {"success": True, "trade_id": trade_id}


async def _cancel_trade(trade_id: int) -> dict[str, Any]:
    control = state().runtime.control
    assert control is not None
    if trade_id in control.active:
        cancelled, message = await control.cancel_trade(trade_id)
        if cancelled:
            return {"success": True, "trade_id": trade_id}
        return {"success": False, "error": message}
    known = control.recent_trades.get(trade_id)
    if known is not None:
        final = known.is_final
    else:
        storage = state().runtime.storage
        stored = await storage.trade(trade_id) if isinstance(storage, HistoryStore) else None
        if stored is None:
            return {"success": False, "error": "Trade not found"}
        final = stored["status"] in _FINAL
    if final:
        return {"success": False, "error": "Trade already finished"}
    return {"success": False, "error": "Trade is left unfinished from before a restart and "
                                       "is reconciled with the exchanges; it cannot be "
                                       "cancelled"}


@blueprint.post("/batch/trades")
@kind("write")
async def batch_trades() -> Response:
    body = await json_body()
    unknown = sorted(set(body) - {"operations"})
    if unknown:
        raise _invalid(unknown[0], f"unknown field {unknown[0]!r}")
    results = []
    for number, operation in enumerate(_operations(body), start=1):
        if operation["type"] == "execute_signal":
            result = _execute_signal(operation["signal_id"], operation.get("quantity"))
        else:
            result = await _cancel_trade(operation["trade_id"])
        results.append({"operation": number, **result})
    return json_response({"results": results})
