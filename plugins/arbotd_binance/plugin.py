"""The hooks of the builtin ``binance`` plugin: the ``[exchanges.binance]`` table and the
Binance market-data feed."""

from __future__ import annotations

import time

import arbotd
from arbotd_binance.config import BinanceConfig
from arbotd_binance.stream import BinanceFeed


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"exchanges.binance": BinanceConfig}


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[BinanceFeed]:
    settings: BinanceConfig = config["exchanges.binance"]
    if not settings.enabled:
        return []
    clock = getattr(runtime, "clock", None) or time.time
    return [BinanceFeed(settings, clock=clock)]
