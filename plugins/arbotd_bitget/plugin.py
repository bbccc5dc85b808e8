"""The hooks of the builtin ``bitget`` plugin: the ``[exchanges.bitget]`` table, the
Bitget market-data feed and the Bitget trading account."""

from __future__ import annotations

import time

import arbotd
from arbotd_bitget.account import BitgetAccount
from arbotd_bitget.config import BitgetConfig
from arbotd_bitget.stream import BitgetFeed

ACCOUNT_STATE = "bitget.account"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"exchanges.bitget": BitgetConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BitgetFeed]:
    settings: BitgetConfig = config["exchanges.bitget"]
    if not settings.enabled:
        return []
    clock = getattr(runtime, "clock", None) or time.time
    return [BitgetFeed(settings, clock=clock)]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BitgetAccount]:
    """The account, the same object across reloads while its settings do not change (it
    keeps its clock offset, loaded rules and the orders it sent)."""
    settings: BitgetConfig = config["exchanges.bitget"]
    if not settings.enabled:
        return []
    account = runtime.plugin_state.get(ACCOUNT_STATE)
    if not isinstance(account, BitgetAccount) or account.settings != settings:
        account = BitgetAccount(settings)
        runtime.plugin_state[ACCOUNT_STATE] = account
    return [account]
