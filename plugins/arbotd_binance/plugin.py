"""The hooks of the builtin ``binance`` plugin: the ``[exchanges.binance]`` table, the
Binance market-data feed and the Binance trading account, which share one request weight
budget (Binance counts the weight of an IP, whichever client spends it)."""

from __future__ import annotations

from typing import Any

import arbotd
from arbotd.exchange import (
    RequestBudget,
    enabled_settings,
    kept_account,
    runtime_clock,
    traded_symbols,
)
from arbotd_binance.account import BinanceAccount
from arbotd_binance.config import BinanceConfig
from arbotd_binance.rest import weight_budget
from arbotd_binance.stream import BinanceFeed

SECTION = "exchanges.binance"
ACCOUNT_STATE = "binance.account"
BUDGET_STATE = "binance.request_weight"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {SECTION: BinanceConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BinanceFeed]:
    settings: BinanceConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    return [BinanceFeed(settings, clock=runtime_clock(runtime),
                        budget=_shared_budget(runtime, settings))]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BinanceAccount]:
    """The Binance account, the same object across reloads while ``[exchanges.binance]``
    is unchanged (its connections, loaded rules and request budget carry on)."""
    settings: BinanceConfig | None = enabled_settings(config, SECTION)
    if settings is None:
        return []
    account = BinanceAccount(settings, symbols=lambda: traded_symbols(runtime),
                             budget=_shared_budget(runtime, settings))
    return [kept_account(runtime, ACCOUNT_STATE, account)]


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
