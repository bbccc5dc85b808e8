"""arbotd: a cross-exchange arbitrage trading daemon.

This module is the public API for plugins and embedders; everything else is private.
"""

from arbotd._apiedit import api_editable_settings, find_setting
from arbotd._bus import Bus, Event, Subscription, SubscriptionClosed
from arbotd._config import (
    Config,
    DaemonConfig,
    PluginsConfig,
    SettingRule,
    secret_from_env,
    setting,
    setting_rule,
)
from arbotd._configwrite import update_config_file
from arbotd._control import Control, describe_trade
from arbotd._engine import Engine
from arbotd._errors import (
    ArbotError,
    ConfigError,
    ConfigProblem,
    ExchangeError,
    PermanentExchangeError,
    PluginError,
    ReloadRefused,
    TemporaryExchangeError,
    TradingError,
)
from arbotd._execution import client_order_id
from arbotd._interfaces import (
    AuditStore,
    DurableStorage,
    ExchangeAccount,
    ExchangeAdapter,
    Executor,
    FeedStatus,
    HistoryStore,
    LimitUse,
    MarketView,
    QuoteSink,
    RiskCheck,
    Service,
    Storage,
    StoredState,
    Strategy,
    UserStore,
)
from arbotd._ledger import USD_ASSETS, Ledger
from arbotd._model import (
    FINAL_STATES,
    Balance,
    Fill,
    Order,
    OrderStatus,
    Quote,
    Side,
    Signal,
    Trade,
    TradeState,
    split_symbol,
    to_decimal,
)
from arbotd._passwords import hash_password, verify_password
from arbotd._plugins import PluginManager, collect_config_schema, make_plugin_manager
from arbotd._reloadguard import one_way
from arbotd._runtime import ReloadOutcome, Runtime, config_from_text
from arbotd._timefmt import iso_utc
from arbotd._version import __version__
from arbotd.hookspecs import hookimpl

__all__ = [
    "FINAL_STATES",
    "USD_ASSETS",
    "ArbotError",
    "AuditStore",
    "Balance",
    "Bus",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Control",
    "DaemonConfig",
    "DurableStorage",
    "Engine",
    "Event",
    "ExchangeAccount",
    "ExchangeAdapter",
    "ExchangeError",
    "Executor",
    "FeedStatus",
    "Fill",
    "HistoryStore",
    "Ledger",
    "LimitUse",
    "MarketView",
    "Order",
    "OrderStatus",
    "PermanentExchangeError",
    "PluginError",
    "PluginManager",
    "PluginsConfig",
    "Quote",
    "QuoteSink",
    "ReloadOutcome",
    "ReloadRefused",
    "RiskCheck",
    "Runtime",
    "Service",
    "SettingRule",
    "Side",
    "Signal",
    "Storage",
    "StoredState",
    "Strategy",
    "Subscription",
    "SubscriptionClosed",
    "TemporaryExchangeError",
    "Trade",
    "TradeState",
    "TradingError",
    "UserStore",
    "__version__",
    "api_editable_settings",
    "client_order_id",
    "collect_config_schema",
    "config_from_text",
    "describe_trade",
    "find_setting",
    "hash_password",
    "hookimpl",
    "iso_utc",
    "make_plugin_manager",
    "one_way",
    "secret_from_env",
    "setting",
    "setting_rule",
    "split_symbol",
    "to_decimal",
    "update_config_file",
    "verify_password",
]
