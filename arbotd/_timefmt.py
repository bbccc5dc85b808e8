"""Times as the API reference writes them: UTC, whole seconds, ``Z``."""

from __future__ import annotations

import datetime as dt
import math
import time

__all__ = ["iso_utc"]


def iso_utc(timestamp: float | None = None) -> str:
    """``1704110400.7`` -> ``"2024-01-01T12:00:00Z"`` (now when ``timestamp`` is
    ``None``). Fractions of a second are dropped, never rounded up into the next second."""
    if timestamp is None:
        timestamp = time.time()
    moment = dt.datetime.fromtimestamp(math.floor(timestamp), dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
