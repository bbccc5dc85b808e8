"""arbotd: a cross-exchange arbitrage trading daemon.

This module is the public API for plugins and embedders; everything else is private.
"""

from arbotd._config import Config, DaemonConfig, PluginsConfig, secret_from_env, setting
from arbotd._configwrite import update_config_file
from arbotd._errors import (
    ArbotError,
    ConfigError,
    ConfigProblem,
    ExchangeError,
    PermanentExchangeError,
    PluginError,
    TemporaryExchangeError,
    TradingError,
)
from arbotd._interfaces import Service
from arbotd._plugins import PluginManager, make_plugin_manager
from arbotd._runtime import ReloadOutcome, Runtime
from arbotd._version import __version__
from arbotd.hookspecs import hookimpl

__all__ = [
    "ArbotError",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DaemonConfig",
    "ExchangeError",
    "PermanentExchangeError",
    "PluginError",
    "PluginManager",
    "PluginsConfig",
    "ReloadOutcome",
    "Runtime",
    "Service",
    "TemporaryExchangeError",
    "TradingError",
    "__version__",
    "hookimpl",
    "make_plugin_manager",
    "secret_from_env",
    "setting",
    "update_config_file",
]
