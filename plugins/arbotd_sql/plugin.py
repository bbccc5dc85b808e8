"""The hooks of the builtin ``sql`` plugin: the ``[storage]`` table and the storage
backend."""

from __future__ import annotations

from typing import Any

import arbotd
from arbotd_sql.config import StorageConfig
from arbotd_sql.storage import SqlStorage


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"storage": StorageConfig}


@arbotd.hookimpl
def provide_storage(config: arbotd.Config, runtime: arbotd.Runtime) -> SqlStorage:
    """The backend, not opened yet: the core opens it (``await storage.open()``) before
    trading starts, and closes it last."""
    daemon = config.daemon
    return SqlStorage(
        config["storage"],
        state_dir=daemon.resolved_state_dir(),
        mode=lambda: _trading_mode(runtime, daemon.mode),
        shutdown_timeout=daemon.shutdown_timeout_seconds,
    )


def _trading_mode(runtime: Any, configured: str) -> str:
    """The mode trading runs in now (it can be started in another mode than the
    configured one), for the equity snapshots."""
    control = getattr(runtime, "control", None)
    return getattr(control, "mode", None) or configured
