"""The hooks of the builtin ``binance`` plugin: the ``[exchanges.binance]`` table, the
Binance market-data feed and the Binance trading account, which share one request weight
budget (Binance counts the weight of an IP, whichever client spends it)."""

from __future__ import annotations

import time
from typing import Any

import arbotd
from arbotd.exchange import RequestBudget
from arbotd_binance.account import BinanceAccount
from arbotd_binance.config import BinanceConfig
from arbotd_binance.rest import weight_budget
from arbotd_binance.stream import BinanceFeed

ACCOUNT_STATE = "binance.account"
BUDGET_STATE = "binance.request_weight"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"exchanges.binance": BinanceConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BinanceFeed]:
    settings: BinanceConfig = config["exchanges.binance"]
    if not settings.enabled:
        return []
    clock = getattr(runtime, "clock", None) or time.time
    return [BinanceFeed(settings, clock=clock, budget=_shared_budget(runtime, settings))]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BinanceAccount]:
    """The Binance account, the same object across reloads while ``[exchanges.binance]``
    is unchanged (its connections, loaded rules and request budget carry on)."""
    settings: BinanceConfig = config["exchanges.binance"]
    if not settings.enabled:
        return []
    state: dict[str, Any] = runtime.plugin_state
    account = state.get(ACCOUNT_STATE)
    if not isinstance(account, BinanceAccount) or account.config != settings:
        account = BinanceAccount(settings, symbols=lambda: _traded_symbols(runtime),
                                 budget=_shared_budget(runtime, settings))
        state[ACCOUNT_STATE] = account
    return [account]


def _shared_budget(runtime: arbotd.Runtime | None, settings: BinanceConfig
                   ) -> RequestBudget | None:
    """The request weight budget the feed's snapshots and the account share, kept across
    reloads while ``request_budget_fraction`` is unchanged (``None`` without a runtime:
    each client then keeps its own)."""
    state: dict[str, Any] | None = getattr(runtime, "plugin_state", None)
    if state is None:
        return None
    budget = state.get(BUDGET_STATE)
    if not isinstance(budget, RequestBudget) or (
            budget.fraction != settings.request_budget_fraction):
        budget = state[BUDGET_STATE] = weight_budget(settings.request_budget_fraction)
    return budget


def _traded_symbols(runtime: arbotd.Runtime) -> list[str]:
    """Every symbol a strategy trades now (the feeds subscribe to the same set)."""
    return list(dict.fromkeys(s for strategy in runtime.strategies for s in strategy.symbols))
