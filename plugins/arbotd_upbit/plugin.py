"""The hooks of the builtin ``upbit`` plugin: the ``[exchanges.upbit]`` table, the Upbit
market-data feed (KRW markets and their KRW-USDT rate) and the Upbit trading account."""

from __future__ import annotations

import time

import arbotd
from arbotd_upbit.account import UpbitAccount
from arbotd_upbit.config import UpbitConfig
from arbotd_upbit.stream import UpbitFeed

ACCOUNT_STATE = "upbit.account"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"exchanges.upbit": UpbitConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[UpbitFeed]:
    settings: UpbitConfig = config["exchanges.upbit"]
    if not settings.enabled:
        return []
    clock = getattr(runtime, "clock", None) or time.time
    return [UpbitFeed(settings, clock=clock)]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[UpbitAccount]:
    """The account, the same object across reloads while its settings do not change."""
    settings: UpbitConfig = config["exchanges.upbit"]
    if not settings.enabled:
        return []
    account = runtime.plugin_state.get(ACCOUNT_STATE)
    if not isinstance(account, UpbitAccount) or account.settings != settings:
        account = UpbitAccount(settings)
        runtime.plugin_state[ACCOUNT_STATE] = account
    return [account]
