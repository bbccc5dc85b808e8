"""Hook implementations of the ``api`` plugin."""

from __future__ import annotations

import weakref
from typing import Any

from arbotd import Config, Runtime, hookimpl
from arbotd_api.config import ApiConfig
from arbotd_api.service import ApiService

# The running server of each daemon, for its reloads (and tests, which ask it for the
# bound address). Weakly keyed: nothing outlives its daemon.
_services: weakref.WeakKeyDictionary[Any, ApiService] = weakref.WeakKeyDictionary()


def service_for(runtime: Runtime) -> ApiService | None:
    return _services.get(runtime)


@hookimpl
def register_config_sections() -> dict[str, type]:
    return {"api": ApiConfig}


@hookimpl
def register_services(config: Config, runtime: Runtime) -> list[ApiService]:
    settings: ApiConfig = config["api"]
    if not settings.enabled:
        return []
    service = ApiService(settings, runtime)
    _services[runtime] = service
    return [service]


@hookimpl
def on_reload(new: Config, changed: frozenset[str], runtime: Runtime) -> None:
    service = _services.get(runtime)
    if "api" in changed and service is not None:
        service.apply(new["api"])
