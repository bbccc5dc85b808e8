"""Helpers for an exchange plugin's hook implementations (its ``plugin`` module).

A venue's ``plugin`` module keeps its three hookimpls (``register_config_sections``,
``register_exchanges``, ``register_accounts``), each a few lines over these:

* :func:`enabled_settings`: the venue's table, or ``None`` while it is disabled;
* :func:`runtime_clock`: the runtime's clock (a backtest's virtual one), else the wall
  clock;
* :func:`kept_account`: the account built last time when it is interchangeable with the
  one just built (equal :meth:`~arbotd.exchange.VenueAccount.account_key`), so a reload
  that leaves the venue's table alone keeps its loaded rules, clock offset and
  connections;
* :func:`traded_symbols`: every symbol the strategies trade now, for a venue that loads
  the rules of those only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from arbotd._config import Config
    from arbotd._runtime import Runtime

__all__ = ["enabled_settings", "kept_account", "runtime_clock", "traded_symbols"]

A = TypeVar("A")


def enabled_settings(config: Config, section: str) -> Any | None:
    """The ``section`` table of ``config`` (``"exchanges.okx"``), ``None`` when its
    ``enabled`` is false."""
    settings = config[section]
    return settings if settings.enabled else None


def runtime_clock(runtime: Runtime | None) -> Callable[[], float]:
    """The runtime's clock when it has one (backtests), else ``time.time``."""
    return getattr(runtime, "clock", None) or time.time


def kept_account(runtime: Runtime, state_key: str, account: A) -> A:
    """``account``, or the one kept in ``runtime.plugin_state[state_key]`` when that one
    compares equal to it (built from settings it does not tell apart): the kept one then
    carries on, and the new one, never opened, is dropped."""
    state: dict[str, Any] = runtime.plugin_state
    kept = state.get(state_key)
    if type(kept) is type(account) and kept == account:
        return kept
    state[state_key] = account
    return account


def traded_symbols(runtime: Runtime) -> list[str]:
    """Every symbol a strategy trades now (the feeds subscribe to the same set), each
    once, in the strategies' order."""
    return list(dict.fromkeys(s for strategy in runtime.strategies for s in strategy.symbols))
