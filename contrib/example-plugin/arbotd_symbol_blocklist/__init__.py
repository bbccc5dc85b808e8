"""arbotd plugin: never trade the symbols listed in ``[symbol_blocklist]``.

An example of a third-party plugin. It owns one config section, contributes one risk
check, and applies an edited blocklist on reload (SIGHUP, ``systemctl reload arbotd``,
or ``PUT /api/v1/trading/config``) without a restart::

    [symbol_blocklist]
    symbols = ["LUNAUSDT", "FTTUSDT"]

Signals for a blocked symbol are still found and reported, but rejected with the reason
``symbol_blocked`` instead of being traded.

It imports only from the public ``arbotd`` package, and is found through its entry point
(see ``pyproject.toml``)::

    [project.entry-points.arbotd]
    symbol_blocklist = "arbotd_symbol_blocklist"
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import attrs

import arbotd
from arbotd import Config, LimitUse, Runtime, Signal, hookimpl, setting

__all__ = ["BlocklistConfig", "SymbolBlocklist", "__version__"]

__version__ = "0.1.0"

SECTION = "symbol_blocklist"

log = logging.getLogger(__name__)


MAX_SYMBOLS = 1000


def _no_blank_symbols(symbols: tuple[str, ...]) -> str | None:
    if len(symbols) > MAX_SYMBOLS:
        return f"expected at most {MAX_SYMBOLS} symbols, got {len(symbols)}"
    if any(not s.strip() for s in symbols):
        return 'expected symbols such as "BTCUSDT", got an empty string'
    return None


@attrs.frozen
class BlocklistConfig:
    """``[symbol_blocklist]``: ``symbols`` are never traded (case does not matter). A
    trading filter: the API may change it (``api=True``)."""

    symbols: tuple[str, ...] = setting((), check=_no_blank_symbols, api=True)


class SymbolBlocklist:
    """The risk check: rejects a signal whose symbol is blocked. ``check`` runs once per
    signal, so it is one set lookup."""

    name = "symbol_blocklist"

    def __init__(self, symbols: Iterable[str] = ()) -> None:
        self.blocked: frozenset[str] = frozenset()
        self.set_symbols(symbols)

    def set_symbols(self, symbols: Iterable[str]) -> None:
        # Rebinding one attribute is atomic: a signal checked during a reload sees either
        # the old set or the new one.
        self.blocked = frozenset(s.strip().upper() for s in symbols)

    def check(self, signal: Signal) -> str | None:
        return "symbol_blocked" if signal.symbol.upper() in self.blocked else None

    def limits(self) -> list[LimitUse]:
        return []


@hookimpl
def register_config_sections() -> dict[str, type]:
    return {SECTION: BlocklistConfig}


@hookimpl
def register_risk_checks(config: Config, runtime: Runtime) -> list[arbotd.RiskCheck]:
    check = SymbolBlocklist(config[SECTION].symbols)
    _log_blocked(check)
    return [check]


@hookimpl
def on_reload(new: Config, changed: frozenset[str], runtime: Runtime) -> None:
    # The risk checks were built once at start; update ours in place.
    if SECTION not in changed or runtime.control is None:
        return
    for check in runtime.control.risk_checks:
        if isinstance(check, SymbolBlocklist):
            check.set_symbols(new[SECTION].symbols)
            _log_blocked(check)


def _log_blocked(check: SymbolBlocklist) -> None:
    if check.blocked:
        log.info("symbol_blocklist: not trading %s", ", ".join(sorted(check.blocked)))
    else:
        log.info("symbol_blocklist: no symbol blocked")
