"""Hook implementations of the ``risk`` plugin."""

from __future__ import annotations

from arbotd import Config, Runtime, hookimpl
from arbotd_risk.config import RiskConfig
from arbotd_risk.manager import RiskManager


@hookimpl
def register_config_sections() -> dict[str, type]:
    return {"risk_management": RiskConfig}


@hookimpl
def register_risk_checks(config: Config, runtime: Runtime) -> list[RiskManager]:
    return [RiskManager(config["risk_management"], runtime)]


@hookimpl
def on_reload(new: Config, changed: frozenset[str], runtime: Runtime) -> None:
    if "risk_management" not in changed or runtime.control is None:
        return
    for check in runtime.control.risk_checks:
        if isinstance(check, RiskManager):
            check.config = new["risk_management"]
