"""Audit entries of what changes the daemon outside the API: ``arbotd user`` commands and
reloads by signal. The API records its own calls (``arbotd_api.audit``); both end in the
storage backend's :class:`~arbotd.AuditStore`, when it has one.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from arbotd._errors import ArbotError
from arbotd._interfaces import AuditStore
from arbotd._runtime import ReloadOutcome

__all__ = ["SUCCESS", "audited_command", "local_account", "record", "record_reload"]

log = logging.getLogger(__name__)

T = TypeVar("T")

SUCCESS = "success"
"""The outcome of a call that did what it was asked."""


def record(storage: object, **fields: Any) -> bool:
    """``storage.record_audit(**fields)`` when ``storage`` keeps an audit trail; whether
    it did. Never raises: the act it records has happened either way."""
    if not isinstance(storage, AuditStore):
        return False
    try:
        storage.record_audit(**fields)
    except Exception:
        log.exception("could not record the audit entry %s %s", fields.get("action"),
                      fields.get("outcome"))
        return False
    return True


def local_account() -> str:
    """The name of the account running this process (who ran a command)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container)
        return f"uid:{os.getuid()}"


async def audited_command(storage: object, action: str, details: Mapping[str, Any],
                          change: Callable[[], Awaitable[T]]) -> T:
    """Run ``change`` (a command's change, ``storage`` open) and record it: ``action``
    (``user add``) by the local account, with ``details`` (never a password) and the
    outcome, ``success`` or ``failed`` with the error's words."""
    fields = {"actor": local_account(), "method": "cli", "source": "local",
              "action": action}
    try:
        result = await change()
    except ArbotError as err:
        record(storage, **fields, outcome="failed", details={**details, "error": str(err)})
        raise
    record(storage, **fields, outcome=SUCCESS, details=dict(details))
    return result


def record_reload(storage: object, outcome: ReloadOutcome, *, trigger: str = "SIGHUP"
                  ) -> None:
    """A reload asked for by a signal: ``applied`` with the sections that changed, or
    ``refused`` with the reason (the running configuration stayed)."""
    fields = {"actor": "signal", "method": "signal", "source": "local",
              "action": f"{trigger} reload"}
    if outcome.error is None:
        record(storage, **fields, outcome="applied",
               details={"changed": sorted(outcome.changed)})
        return
    problems = [{"field": p.path, "message": p.message} for p in outcome.error.problems]
    reason = str(outcome.error.problems[0]) if outcome.error.problems else str(outcome.error)
    record(storage, **fields, outcome="refused",
           details={"reason": reason, "problems": problems})
