"""Hook implementations of the ``xarb`` plugin."""

from __future__ import annotations

import logging

from arbotd import USD_ASSETS, Config, Runtime, hookimpl
from arbotd_xarb.config import ArbitrageConfig
from arbotd_xarb.strategy import CrossExchangeStrategy

log = logging.getLogger(__name__)


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
    _warn_if_no_balance_covers(new["arbitrage"], runtime)


def _warn_if_no_balance_covers(settings: ArbitrageConfig, runtime: Runtime) -> None:
    """A trade size no exchange's dollars could pay is most likely a typo (a reload or an
    edit through the API): trades would be cut to what the balances allow, so it is
    logged rather than refused. Nothing is said before balances are known."""
    ledger = runtime.ledger
    held = [float(sum(ledger.total(exchange, asset) for asset in USD_ASSETS))
            for exchange in ledger.exchanges()]
    if held and settings.trade_amount_usd > max(held):
        log.warning("arbitrage.trade_amount_usd = %g is more than any exchange holds in "
                    "dollars (at most %g): trades are cut to what the balances allow",
                    settings.trade_amount_usd, max(held))
