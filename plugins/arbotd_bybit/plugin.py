"""The hooks of the builtin ``bybit`` plugin: the ``[exchanges.bybit]`` table, the Bybit
market-data feed and the Bybit trading account."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import arbotd
from arbotd_bybit.account import BybitAccount
from arbotd_bybit.config import BybitConfig
from arbotd_bybit.stream import BybitFeed

_ACCOUNT = "bybit.account"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"exchanges.bybit": BybitConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BybitFeed]:
    settings: BybitConfig = config["exchanges.bybit"]
    if not settings.enabled:
        return []
    return [BybitFeed(settings, clock=_clock(runtime))]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BybitAccount]:
    """The account, the same object across reloads while the settings it depends on are
    unchanged, so that its loaded rules, clock offset and connections survive."""
    settings: BybitConfig = config["exchanges.bybit"]
    if not settings.enabled:
        return []
    state: dict[str, Any] = runtime.plugin_state
    account = BybitAccount(settings, clock=_clock(runtime))
    kept = state.get(_ACCOUNT)
    if isinstance(kept, BybitAccount) and kept == account:
        return [kept]
    state[_ACCOUNT] = account
    return [account]


def _clock(runtime: Any) -> Callable[[], float]:
    return getattr(runtime, "clock", None) or time.time
