"""What handlers share: the server's state, endpoint kinds and request parsing.

Parsing never lets a malformed value reach code that would fail on it: every number,
time and JSON document a client sends is checked here, and a bad one answers
``VALIDATION_ERROR`` naming it in ``details.field``. The traps it stands in front of:
Python's ``int()`` refuses strings of more than 4,300 digits (a ``ValueError``), times
past the year 9999 overflow ``datetime`` and SQL integers, and JSON nested a thousand
deep parses (orjson allows 1,024 levels) but breaks any code that walks it recursively.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import orjson
from quart import current_app, request

from arbotd import Runtime
from arbotd_api.audittrail import AuditTrail
from arbotd_api.auth import Credentials
from arbotd_api.config import ApiConfig
from arbotd_api.errors import ApiError
from arbotd_api.logins import LoginGuard
from arbotd_api.pricecache import PriceCache
from arbotd_api.ratelimit import RateLimiter

if TYPE_CHECKING:
    # Only a type here: the metrics module reads the routes, which import this one.
    from arbotd_api.metrics import ApiMetrics

__all__ = [
    "MAX_ID",
    "MAX_JSON_DEPTH",
    "MAX_TIME",
    "TRADING_KINDS",
    "ApiState",
    "epoch_param",
    "float_param",
    "int_param",
    "json_body",
    "kind",
    "loads_json",
    "path_id",
    "state",
]

F = TypeVar("F", bound=Callable[..., Any])

# Endpoint kinds: "read" and "write" need credentials when auth is required ("write"
# also the trading scope); "trading_read" is a read that needs the trading scope (the
# audit trail); "public_read"/"public_write" (health, login) never need credentials;
# "scrape" (/metrics) is a read that also takes the scrape token of [api]
# metrics_token_env, rate limited apart from the other reads.
KINDS = ("read", "write", "trading_read", "public_read", "public_write", "scrape")
TRADING_KINDS = ("write", "trading_read")
"""The kinds of endpoint that need the trading scope."""

MAX_JSON_DEPTH = 32
"""Objects and arrays nested deeper than this in a request body answer VALIDATION_ERROR;
the deepest body the API takes has 3 levels."""
MAX_ID = 2**63 - 1
"""The largest id (trades, backtests, signals): a signed 64-bit SQL integer."""
MAX_TIME = 253_402_300_799.0
"""9999-12-31T23:59:59Z: the latest time, in epoch seconds, a request may name."""
_INTEGER = re.compile(r"[0-9]+")
_SHOWN = 64


@attrs.define
class ApiState:
    runtime: Runtime
    settings: ApiConfig
    credentials: Credentials
    limiter: RateLimiter
    logins: LoginGuard
    metrics: ApiMetrics
    prices: PriceCache = attrs.field(factory=PriceCache)
    audit: AuditTrail = attrs.field(factory=AuditTrail)


def state() -> ApiState:
    return current_app.config["ARBOTD"]


def kind(name: str) -> Callable[[F], F]:
    """Mark a view function with its endpoint kind (see ``KINDS``)."""
    assert name in KINDS

    def mark(view: F) -> F:
        view._api_kind = name  # type: ignore[attr-defined]
        return view

    return mark


def _invalid(field: str, message: str, **details: Any) -> ApiError:
    return ApiError("VALIDATION_ERROR", message, {"field": field, **details})


def _shown(raw: str) -> str:
    """``raw`` as echoed back in an error: a huge value is cut, not repeated whole."""
    return raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "..."


def loads_json(raw: bytes | str, what: str = "The body") -> Any:
    """``raw`` parsed; ``VALIDATION_ERROR`` when it is not JSON or is nested deeper than
    :data:`MAX_JSON_DEPTH` (``details.field``: the top-level key holding the nesting)."""
    try:
        value = orjson.loads(raw)
    except ValueError:
        raise ApiError("VALIDATION_ERROR", f"{what} is not valid JSON") from None
    field = _too_deep(value)
    if field is not None:
        raise _invalid(field, f"{field} is nested deeper than {MAX_JSON_DEPTH} levels",
                       max_depth=MAX_JSON_DEPTH)
    return value


def _too_deep(value: Any) -> str | None:
    """The top-level key (``"body"`` for a document that is not an object) under which
    objects and arrays nest deeper than :data:`MAX_JSON_DEPTH`, or ``None``. Iterative,
    so that it never meets the recursion limit it guards against."""
    if isinstance(value, dict):
        roots = [(_shown(str(key)), item, 2) for key, item in value.items()]
    else:
        roots = [("body", value, 1)]
    for field, root, root_depth in roots:
        stack = [(root, root_depth)]
        while stack:
            item, depth = stack.pop()
            if not isinstance(item, dict | list):
                continue
            if depth > MAX_JSON_DEPTH:
                return field
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


async def json_body(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; ``VALIDATION_ERROR`` for anything else. An empty body
    is ``{}`` when ``optional``."""
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        if optional:
            return {}
        raise ApiError("VALIDATION_ERROR", "A JSON object body is required")
    body = loads_json(raw)
    if not isinstance(body, dict):
        raise ApiError("VALIDATION_ERROR", "The body must be a JSON object")
    return body


def string_list(body: dict[str, Any], field: str) -> list[str] | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError("VALIDATION_ERROR", f"{field} must be a list of strings",
                       {"field": field})
    return value


def float_param(name: str) -> float | None:
    """Query parameter ``name`` as a finite number, ``None`` when absent or empty."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(name, f"{name} must be a number", provided=_shown(raw)) from None
    if not math.isfinite(value):
        raise _invalid(name, f"{name} must be a finite number", provided=_shown(raw))
    return value


def epoch_param(name: str, *, required: bool = False) -> float | None:
    """Query parameter ``name`` as epoch seconds from 0 to :data:`MAX_TIME`."""
    value = float_param(name)
    if value is None:
        if required:
            raise _invalid(name, f"{name} is required (epoch seconds)")
        return None
    if value < 0:
        raise _invalid(name, f"{name} must be epoch seconds, not negative")
    if value > MAX_TIME:
        raise _invalid(name, f"{name} must be epoch seconds before the year 10000",
                       maximum=MAX_TIME)
    return value


def _parse_int(raw: str, field: str, low: int, high: int, message: str) -> int:
    """``raw``, decimal digits only, as an integer from ``low`` to ``high`` (both
    non-negative); otherwise ``VALIDATION_ERROR`` with ``message``."""
    if _INTEGER.fullmatch(raw):
        # Too many digits is out of range: int() would refuse past 4,300 of them.
        significant = raw.lstrip("0") or "0"
        if len(significant) <= len(str(high)) and low <= int(significant) <= high:
            return int(significant)
    raise _invalid(field, message, provided=_shown(raw), minimum=low, maximum=high)


def int_param(name: str, default: int, low: int, high: int) -> int:
    """Query parameter ``name`` as an integer from ``low`` to ``high``; ``default`` when
    absent or empty."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    return _parse_int(raw, name, low, high, f"{name} must be an integer from {low} to {high}")


def path_id(raw: str, field: str) -> int:
    """A path's id (``/trades/<trade_id>``): an integer from 1 to :data:`MAX_ID`."""
    return _parse_int(raw, field, 1, MAX_ID, f"{field} must be a positive integer")
