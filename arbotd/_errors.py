"""Exceptions raised by arbotd, split by what the operator or caller must do.

::

    ArbotError
    ├── ConfigError               the configuration is wrong: fix the file (fatal at start,
    │   │                         ignored with a log line on reload)
    │   └── ReloadRefused         the file is valid, but only a restart may apply it (it
    │                             would weaken protection, move an endpoint, or lost tables)
    ├── PluginError               a plugin is missing, broken or misbehaving
    ├── ExchangeError             something went wrong talking to an exchange
    │   ├── TemporaryExchangeError    retry with backoff (timeouts, 5xx, 429, dropped socket)
    │   └── PermanentExchangeError    do not retry (rejected order, bad key, unknown symbol)
    └── TradingError              a trading action could not be done in the current state

Risk rejections are not exceptions: a rejected opportunity is a normal outcome and is
returned with a reason.
"""

from __future__ import annotations

import attrs

__all__ = [
    "ArbotError",
    "ConfigError",
    "ConfigProblem",
    "ExchangeError",
    "PermanentExchangeError",
    "PluginError",
    "ReloadRefused",
    "TemporaryExchangeError",
    "TradingError",
]


class ArbotError(Exception):
    """Base class of every error arbotd raises on purpose."""


@attrs.frozen
class ConfigProblem:
    """One thing wrong with a configuration file.

    ``path`` is the dotted key path (``arbitrage.min_profit_threshold``), or ``""`` when the
    problem is with the file as a whole (it cannot be read or parsed).
    """

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        if self.path:
            return f"{self.file}: {self.path}: {self.message}"
        return f"{self.file}: {self.message}"


class ConfigError(ArbotError):
    """The configuration is invalid. ``problems`` lists every problem found, not just the
    first, so that ``arbotd check`` can show them all at once."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ReloadRefused(ConfigError):
    """A reload (SIGHUP, or an edit through the API) that is refused as a whole although
    the file is valid: it would turn authentication off, widen the API's bind address,
    change a secret's variable, an endpoint or the plugins, or it lacks a table the running
    daemon has. The running configuration stays in force; a restart applies the file."""


class PluginError(ArbotError):
    """A plugin could not be loaded or broke the plugin contract."""


class ExchangeError(ArbotError):
    """An exchange request or stream failed. ``exchange`` names the venue."""

    def __init__(self, exchange: str, message: str) -> None:
        self.exchange = exchange
        super().__init__(f"{exchange}: {message}")


class TemporaryExchangeError(ExchangeError):
    """Worth retrying after a pause; ``retry_after`` (seconds) when the exchange said."""

    def __init__(self, exchange: str, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(exchange, message)


class PermanentExchangeError(ExchangeError):
    """Retrying will not help: the request itself is wrong or was refused."""


class TradingError(ArbotError):
    """A trading action is not possible now. ``code`` is one of the API reference's error
    codes (``TRADING_DISABLED``, ``INVALID_SYMBOL``, ``EXCHANGE_NOT_AVAILABLE`` ...)."""

    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        self.code = code
        self.details = details or {}
        super().__init__(message)
