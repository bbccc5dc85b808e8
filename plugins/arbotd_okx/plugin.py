"""The hooks of the builtin ``okx`` plugin: the ``[exchanges.okx]`` table, the OKX
market-data feed and the OKX trading account."""

from __future__ import annotations

import arbotd
from arbotd.exchange import enabled_settings, kept_account, runtime_clock
from arbotd_okx.account import OkxAccount
from arbotd_okx.config import OkxConfig
from arbotd_okx.stream import OkxFeed

SECTION = "exchanges.okx"
ACCOUNT_STATE = "okx.account"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {SECTION: OkxConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[OkxFeed]:
    settings: OkxConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    return [OkxFeed(settings, clock=runtime_clock(runtime))]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[OkxAccount]:
    """The account, the same object across reloads while its settings do not change (it
    keeps its clock offset, loaded rules and the orders it sent)."""
    settings: OkxConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    return [kept_account(runtime, ACCOUNT_STATE, OkxAccount(settings))]
