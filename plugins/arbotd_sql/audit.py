"""The audit trail in the ``audit_log`` table: entries as rows, and the query of
``GET /api/v1/audit``.

A row is built when the entry is recorded (on the event loop, cheap: a dict and one
``orjson.dumps``) and written by the writer thread like any other record. Text is cut to
the column sizes, since PostgreSQL refuses a longer value and the writer would then lose
the entry; ``details`` longer than :data:`MAX_DETAILS_CHARS` is kept as a cut preview.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
import peewee

from arbotd import iso_utc
from arbotd_sql.models import AuditEntry

__all__ = ["MAX_DETAILS_CHARS", "audit_entries", "audit_row"]

MAX_DETAILS_CHARS = 16_384
"""The longest ``details`` kept whole (JSON text); longer is kept as a cut preview."""


def _cut(value: str, field: peewee.CharField) -> str:
    limit = field.max_length
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _details_text(details: Mapping[str, Any] | None) -> str | None:
    if not details:
        return None
    try:
        text = orjson.dumps(details, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # nested too deep, an integer too large
        text = orjson.dumps({"unreadable_details": repr(details)[:MAX_DETAILS_CHARS]}).decode()
    if len(text) > MAX_DETAILS_CHARS:
        text = orjson.dumps({"truncated": True,
                             "preview": text[:MAX_DETAILS_CHARS]}).decode()
    return text


def audit_row(
    *,
    actor: str,
    method: str,
    action: str,
    outcome: str,
    source: str | None = None,
    status: int | None = None,
    details: Mapping[str, Any] | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """The ``audit_log`` row of an entry (see :meth:`arbotd.AuditStore.record_audit`)."""
    return {
        "timestamp": time.time() if timestamp is None else timestamp,
        "actor": _cut(str(actor), AuditEntry.actor),
        "method": _cut(str(method), AuditEntry.method),
        "source": None if source is None else _cut(str(source), AuditEntry.source),
        "action": _cut(str(action), AuditEntry.action),
        "details": _details_text(details),
        "outcome": _cut(str(outcome), AuditEntry.outcome),
        "status": status,
    }


def audit_entries(
    *,
    start_time: float | None = None,
    end_time: float | None = None,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of the audit trail, for ``GET /audit``.

    Returns ``{"entries": [{"id", "timestamp": float (epoch seconds), "recorded_at":
    str (ISO), "actor", "method", "source": str | None, "action", "outcome", "status":
    int | None, "details": dict}, ...], "total_count": int, "pagination": {"limit",
    "offset", "has_more"}}``, newest first (``timestamp``, then ``id``, descending).
    ``start_time <= timestamp <= end_time``; ``actor``, ``action`` and ``outcome`` match
    exactly.
    """
    conditions = []
    if start_time is not None:
        conditions.append(AuditEntry.timestamp >= start_time)
    if end_time is not None:
        conditions.append(AuditEntry.timestamp <= end_time)
    for column, value in ((AuditEntry.actor, actor), (AuditEntry.action, action),
                          (AuditEntry.outcome, outcome)):
        if value is not None:
            conditions.append(column == value)
    query = AuditEntry.select()
    if conditions:
        query = query.where(*conditions)
    total = query.count()
    page = list(query.order_by(AuditEntry.timestamp.desc(), AuditEntry.id.desc())
                .limit(limit).offset(offset))
    return {
        "entries": [_entry(row) for row in page],
        "total_count": total,
        "pagination": {"limit": limit, "offset": offset,
                       "has_more": offset + len(page) < total},
    }


def _entry(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "timestamp": row.timestamp,
        "recorded_at": iso_utc(row.timestamp),
        "actor": row.actor,
        "method": row.method,
        "source": row.source,
        "action": row.action,
        "outcome": row.outcome,
        "status": row.status,
        "details": _details(row.details),
    }


def _details(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}
