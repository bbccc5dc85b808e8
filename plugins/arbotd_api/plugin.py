"""Hook implementations of the ``api`` plugin."""

from __future__ import annotations

from arbotd import Config, Runtime, hookimpl
from arbotd_api.config import ApiConfig
from arbotd_api.service import ApiService

_SERVICE = "api.service"


def service_for(runtime: Runtime) -> ApiService | None:
    """The daemon's API server, for its reloads (and tests, which ask for the bound
    address)."""
    return runtime.plugin_state.get(_SERVICE)


@hookimpl
def register_config_sections() -> dict[str, type]:
    return {"api": ApiConfig}


@hookimpl
def register_services(config: Config, runtime: Runtime) -> list[ApiService]:
    settings: ApiConfig = config["api"]
    if not settings.enabled:
        return []
    service = ApiService(settings, runtime)
    runtime.plugin_state[_SERVICE] = service
    return [service]


@hookimpl
def on_reload(new: Config, runtime: Runtime) -> None:
    # Even when [api] is unchanged: the reload may have brought new secrets.
    service = service_for(runtime)
    if service is not None:
        service.apply(new["api"])


@hookimpl
def shutdown(runtime: Runtime) -> None:
    service = service_for(runtime)
    if service is not None and service.state is not None:
        # The count of refusals not yet summed up, while the storage still writes (it
        # closes only once trading has drained).
        service.state.audit.flush(runtime.storage, final=True)
