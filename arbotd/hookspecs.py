"""The plugin contract: every hook arbotd calls.

A plugin is a module (or object) with functions marked ``@arbotd.hookimpl`` whose names
are the hook names below. Builtin plugins and third-party ones are found the same way,
through the ``arbotd`` entry-point group::

    [project.entry-points.arbotd]
    myplugin = "my_package.plugin"

Hooks are called at start-up, at reload and at shutdown, never per quote: a plugin
contributes objects (config sections, exchange adapters, strategies, risk checks,
executors, a storage backend, services) and the engine calls those objects' plain methods
on the hot path. Hooks are always called with keyword arguments, so an implementation may
accept only the arguments it needs.

Hooks, in the order the daemon calls them:

1. ``register_config_sections``  at start and at every reload, before validating
2. ``configure``                 once the configuration is valid (historic)
3. ``provide_storage``           the one storage backend (first result wins)
4. ``register_exchanges``, ``register_strategies``, ``register_risk_checks``,
   ``register_executors``        the objects the engine works with
5. ``register_services``         long-running tasks, started with ``nursery.start``
6. ``on_reload``                 after a new configuration was validated and applied
7. ``shutdown``                  when the daemon begins to stop
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from arbotd._config import Config
    from arbotd._interfaces import (
        ExchangeAccount,
        ExchangeAdapter,
        Executor,
        RiskCheck,
        Service,
        Storage,
        Strategy,
    )
    from arbotd._runtime import Runtime

PROJECT_NAME = "arbotd"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_config_sections() -> dict[str, type]:
    """Declare the TOML tables this plugin owns.

    Return a mapping from the dotted table path to the attrs class the table is
    structured into, e.g. ``{"arbitrage": ArbitrageConfig}`` or
    ``{"exchanges.binance": BinanceConfig}``. Every field needs a default, declared with
    :func:`arbotd.setting` so bounds are checked and errors name the key. A table absent
    from the file is given its defaults. Two plugins may not claim the same table.

    The fields also say who may change them: ``setting(api=True)`` puts a trading
    parameter on the allow-list of ``PUT /api/v1/trading/config`` (nothing else is
    editable there), and ``setting(reload="restart")`` (or ``reload=arbotd.one_way(...)``)
    marks what a reload may not change: endpoints, secrets' variable names, anything
    read only at start. Such a reload is refused as a whole.
    """


@hookspec(historic=True)
def configure(config: Config, runtime: Runtime) -> None:
    """Called once, after the configuration was validated and before anything starts.

    :param config: the validated configuration; ``config["section"]`` is the structured
        instance of a table.
    :param runtime: the running daemon's shared objects (engine, bus, control, storage).
    """


@hookspec(firstresult=True)
def provide_storage(config: Config, runtime: Runtime) -> Storage | None:
    """Return the storage backend, or ``None`` to let another plugin provide it.

    The first plugin to return a backend wins. Without one, the daemon keeps everything in
    memory only and says so at start.
    """


@hookspec
def register_exchanges(config: Config, runtime: Runtime) -> list[ExchangeAdapter]:
    """Return the exchange adapters this plugin provides for the enabled venues.

    Return an empty list when none of this plugin's venues is enabled. Venue names must be
    unique across plugins.
    """


@hookspec
def register_accounts(config: Config, runtime: Runtime) -> list[ExchangeAccount]:
    """Return the trading accounts of this plugin's enabled real exchanges, for ``live``
    mode (simulated venues have none: they trade on paper).

    Called at start and after every reload; return accounts whether or not their API keys
    are set (``missing_credentials`` tells), so that live mode can say which are missing.
    An account should compare equal to the one built from the same settings, so that a
    reload keeps it (and its connections and loaded rules).
    """


@hookspec
def register_strategies(config: Config) -> list[Strategy]:
    """Return the strategies that turn quotes into trade opportunities.

    A strategy's ``evaluate`` is called on the hot path for every quote of a symbol: it
    must be a plain, fast, synchronous function of its inputs.
    """


@hookspec
def register_risk_checks(config: Config, runtime: Runtime) -> list[RiskCheck]:
    """Return risk checks; a signal is executed only when every check accepts it.

    A check rejects with a reason; its ``limits`` report current use for
    ``/api/v1/risk/limits``.
    """


@hookspec
def register_executors(config: Config, runtime: Runtime) -> list[Executor]:
    """Return executors, each serving one trading mode (``executor.mode``):
    ``simulation`` and ``backtest`` fill on paper, ``live`` sends real orders."""


@hookspec
def register_services(config: Config, runtime: Runtime) -> list[Service]:
    """Return long-running services (an API server, a recorder, a storage writer).

    Each is started with ``await nursery.start(service.run)`` in the daemon's nursery and
    must call ``task_status.started()`` once it is ready. It should return promptly once
    ``runtime.shutdown_requested`` is set; whatever is still running after the configured
    shutdown timeout is cancelled.
    """


@hookspec
def on_reload(old: Config, new: Config, changed: frozenset[str], runtime: Runtime) -> None:
    """Called after a reload (SIGHUP, ``systemctl reload``, or a config change through the
    API) validated a new configuration and applied it.

    :param changed: the table paths whose values changed, e.g. ``{"arbitrage"}``.

    Only a valid configuration reaches this hook; an invalid file changes nothing, and
    neither does one that would change a setting only a restart may change, or that
    lacks a table the running configuration's file has.
    """


@hookspec
def shutdown(runtime: Runtime) -> None:
    """Called once when the daemon begins to stop, before services are asked to end."""
