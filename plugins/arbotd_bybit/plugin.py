"""The hooks of the builtin ``bybit`` plugin: the ``[exchanges.bybit]`` table, the Bybit
market-data feed and the Bybit trading account."""

from __future__ import annotations

import arbotd
from arbotd.exchange import enabled_settings, kept_account, runtime_clock
from arbotd_bybit.account import BybitAccount
from arbotd_bybit.config import BybitConfig
from arbotd_bybit.stream import BybitFeed

SECTION = "exchanges.bybit"
ACCOUNT_STATE = "bybit.account"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {SECTION: BybitConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BybitFeed]:
    settings: BybitConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    return [BybitFeed(settings, clock=runtime_clock(runtime))]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BybitAccount]:
    """The account, the same object across reloads while the settings it depends on are
    unchanged, so that its loaded rules, clock offset and connections survive."""
    settings: BybitConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    account = BybitAccount(settings, clock=runtime_clock(runtime))
    return [kept_account(runtime, ACCOUNT_STATE, account)]
