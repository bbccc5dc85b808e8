"""``GET /audit``: the audit trail (:mod:`arbotd_api.audit` says what is recorded). It
tells who can do what from where, so it needs the trading scope, like the writes it lists.

Entries come newest first, paged like ``/trades`` (``limit``, ``offset``). Filters:
``start_time`` and ``end_time`` (both included), each epoch seconds (``1704067200``) or an
ISO 8601 time with its zone (``2024-01-01T00:00:00Z``); ``actor``, ``action``
(``POST /api/v1/trading/start``) and ``outcome`` (``success``, an error code) match
exactly. Without a storage that keeps the audit trail: 503 ``STORAGE_NOT_AVAILABLE``.
"""

from __future__ import annotations

import datetime as dt
import re

from quart import Blueprint, Response, request

from arbotd import AuditStore
from arbotd_api.context import MAX_TIME, int_param, kind, state
from arbotd_api.errors import ApiError, json_response

__all__ = ["MAX_LIMIT", "MAX_OFFSET", "TIME_PATTERN", "blueprint"]

blueprint = Blueprint("audit", __name__)

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000
TIME_PATTERN = (r"^(?:\d{1,12}(?:\.\d{1,9})?"
                r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2}))$")
"""A time parameter: epoch seconds, or ISO 8601 with its zone (``Z`` or ``+02:00``)."""
_TIME = re.compile(TIME_PATTERN)


def _invalid(name: str, message: str, raw: str) -> ApiError:
    return ApiError("VALIDATION_ERROR", message, {"field": name, "provided": raw[:64]})


def time_param(name: str) -> float | None:
    """Query parameter ``name`` as epoch seconds, from epoch seconds or an ISO 8601 time
    with its zone; ``None`` when absent or empty."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not _TIME.fullmatch(raw):
        raise _invalid(name, f"{name} must be epoch seconds or an ISO 8601 time with its "
                       "zone, like 2024-01-01T00:00:00Z", raw)
    if "T" not in raw:
        value = float(raw)
    else:
        try:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError):
            raise _invalid(name, f"{name} is not a valid date and time", raw) from None
    if not 0 <= value <= MAX_TIME:
        raise _invalid(name, f"{name} must be from 1970 to the year 9999", raw)
    return value


def _text_param(name: str) -> str | None:
    raw = request.args.get(name)
    return raw or None


@blueprint.get("/audit")
@kind("trading_read")
async def list_audit() -> Response:
    storage = state().runtime.storage
    if not isinstance(storage, AuditStore):
        raise ApiError("STORAGE_NOT_AVAILABLE",
                       "No storage with an audit trail is enabled: enable the sql plugin "
                       "and [storage]")
    start, end = time_param("start_time"), time_param("end_time")
    if start is not None and end is not None and start > end:
        raise ApiError("VALIDATION_ERROR", "start_time is after end_time",
                       {"field": "start_time"})
    answer = await storage.audit_entries(
        start_time=start, end_time=end, actor=_text_param("actor"),
        action=_text_param("action"), outcome=_text_param("outcome"),
        limit=int_param("limit", 100, 1, MAX_LIMIT),
        offset=int_param("offset", 0, 0, MAX_OFFSET),
    )
    return json_response(answer)
