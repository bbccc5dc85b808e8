"""The hooks of the builtin ``bitget`` plugin: the ``[exchanges.bitget]`` table, the
Bitget market-data feed and the Bitget trading account."""

from __future__ import annotations

import arbotd
from arbotd.exchange import enabled_settings, kept_account, runtime_clock
from arbotd_bitget.account import BitgetAccount
from arbotd_bitget.config import BitgetConfig
from arbotd_bitget.stream import BitgetFeed

SECTION = "exchanges.bitget"
ACCOUNT_STATE = "bitget.account"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {SECTION: BitgetConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BitgetFeed]:
    settings: BitgetConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    return [BitgetFeed(settings, clock=runtime_clock(runtime))]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BitgetAccount]:
    """The account, the same object across reloads while its settings do not change (it
    keeps its clock offset, loaded rules and the orders it sent)."""
    settings: BitgetConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    return [kept_account(runtime, ACCOUNT_STATE, BitgetAccount(settings))]
