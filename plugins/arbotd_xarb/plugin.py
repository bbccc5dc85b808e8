"""Hook implementations of the ``xarb`` plugin."""

from __future__ import annotations

from arbotd import Config, Runtime, hookimpl
from arbotd_xarb.config import ArbitrageConfig
from arbotd_xarb.strategy import CrossExchangeStrategy


@hookimpl
def register_config_sections() -> dict[str, type]:
    return {"arbitrage": ArbitrageConfig}


@hookimpl
def register_strategies(config: Config) -> list[CrossExchangeStrategy]:
    return [CrossExchangeStrategy(config["arbitrage"])]


@hookimpl
def on_reload(new: Config, changed: frozenset[str], runtime: Runtime) -> None:
    if "arbitrage" not in changed:
        return
    for strategy in runtime.strategies:
        if isinstance(strategy, CrossExchangeStrategy):
            strategy.apply(new["arbitrage"])
