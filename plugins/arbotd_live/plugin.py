"""The hooks of the builtin ``live`` plugin: the ``[live]`` table, and the executor of
``live`` mode (which is also the service keeping the trading accounts ready)."""

from __future__ import annotations

import arbotd
from arbotd_live.config import LiveConfig
from arbotd_live.executor import LiveExecutor


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"live": LiveConfig}


def _executor(config: arbotd.Config, runtime: arbotd.Runtime) -> LiveExecutor:
    """One executor per running daemon: the executor and the service are the same
    object."""
    executor = runtime.plugin_state.get("live.executor")
    if executor is None:
        executor = LiveExecutor(config["live"], runtime)
        executor.set_accounts(_accounts(config, runtime))
        runtime.plugin_state["live.executor"] = executor
    return executor


def _accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[arbotd.ExchangeAccount]:
    return [
        account
        for batch in runtime.pm.hook.register_accounts(config=config, runtime=runtime)
        for account in batch or ()
    ]


@arbotd.hookimpl
def register_executors(config: arbotd.Config, runtime: arbotd.Runtime) -> list[LiveExecutor]:
    return [_executor(config, runtime)]


@arbotd.hookimpl
def register_services(config: arbotd.Config, runtime: arbotd.Runtime) -> list[LiveExecutor]:
    return [_executor(config, runtime)]


@arbotd.hookimpl
def on_reload(new: arbotd.Config, runtime: arbotd.Runtime) -> None:
    executor = runtime.plugin_state.get("live.executor")
    if executor is None:
        return
    executor.settings = new["live"]
    executor.set_accounts(_accounts(new, runtime))
