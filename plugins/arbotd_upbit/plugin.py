"""The hooks of the builtin ``upbit`` plugin: the ``[exchanges.upbit]`` table, the Upbit
market-data feed (KRW markets and their KRW-USDT rate) and the Upbit trading account."""

from __future__ import annotations

import arbotd
from arbotd.exchange import enabled_settings, kept_account, runtime_clock
from arbotd_upbit.account import UpbitAccount
from arbotd_upbit.config import UpbitConfig
from arbotd_upbit.stream import UpbitFeed

SECTION = "exchanges.upbit"
ACCOUNT_STATE = "upbit.account"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {SECTION: UpbitConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[UpbitFeed]:
    settings: UpbitConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    return [UpbitFeed(settings, clock=runtime_clock(runtime))]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[UpbitAccount]:
    """The account, the same object across reloads while its settings do not change (it
    keeps its loaded rules, the orders it sent and its connections)."""
    settings: UpbitConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    return [kept_account(runtime, ACCOUNT_STATE, UpbitAccount(settings))]
