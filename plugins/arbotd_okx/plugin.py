"""The hooks of the builtin ``okx`` plugin: the ``[exchanges.okx]`` table, the OKX
market-data feed and the OKX trading account."""

from __future__ import annotations

import time

import arbotd
from arbotd_okx.account import OkxAccount
from arbotd_okx.config import OkxConfig
from arbotd_okx.stream import OkxFeed

ACCOUNT_STATE = "okx.account"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"exchanges.okx": OkxConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[OkxFeed]:
    settings: OkxConfig = config["exchanges.okx"]
    if not settings.enabled:
        return []
    clock = getattr(runtime, "clock", None) or time.time
    return [OkxFeed(settings, clock=clock)]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[OkxAccount]:
    """The account, the same object across reloads while its settings do not change (it
    keeps its clock offset, loaded rules and the orders it sent)."""
    settings: OkxConfig = config["exchanges.okx"]
    if not settings.enabled:
        return []
    account = runtime.plugin_state.get(ACCOUNT_STATE)
    if not isinstance(account, OkxAccount) or account.settings != settings:
        account = OkxAccount(settings)
        runtime.plugin_state[ACCOUNT_STATE] = account
    return [account]
