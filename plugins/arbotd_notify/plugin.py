"""Hook implementations of the ``notify`` plugin."""

from __future__ import annotations

from arbotd import Config, Runtime, hookimpl
from arbotd_notify.config import NotifyConfig
from arbotd_notify.service import NotifyService, check_secrets

_SERVICE = "notify.service"


def service_for(runtime: Runtime) -> NotifyService | None:
    """The daemon's notifier, when ``[notify] enabled`` is on."""
    return runtime.plugin_state.get(_SERVICE)


@hookimpl
def register_config_sections() -> dict[str, type]:
    return {"notify": NotifyConfig}


@hookimpl
def register_services(config: Config, runtime: Runtime) -> list[NotifyService]:
    settings: NotifyConfig = config["notify"]
    if not settings.enabled:
        return []
    check_secrets(settings, str(config.path))
    service = NotifyService(settings, runtime)
    runtime.plugin_state[_SERVICE] = service
    return [service]


@hookimpl
def on_reload(new: Config, runtime: Runtime) -> None:
    service = service_for(runtime)
    if service is not None:
        service.apply(new["notify"])
