"""The running daemon's shared state, handed to every hook as ``runtime``."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import tomlkit
import tomlkit.exceptions
import trio

from arbotd._bus import Bus
from arbotd._config import Config, changed_sections, load_config, read_document, structure_document
from arbotd._configwrite import atomic_write_text, edit_document, set_document_values
from arbotd._control import Control
from arbotd._engine import Engine
from arbotd._errors import ConfigError, ConfigProblem, PluginError, ReloadRefused, TradingError
from arbotd._feeds import FeedSupervisor
from arbotd._interfaces import (
    DurableStorage,
    ExchangeAdapter,
    Storage,
    StoredState,
    Strategy,
)
from arbotd._ledger import Ledger
from arbotd._plugins import PluginManager, collect_config_schema, disabled_sections
from arbotd._reloadguard import reload_refusal
from arbotd._secrets import install_secrets, read_secrets
from arbotd.fx import rolling_premium_windows, venue_conversions
from arbotd.inventory import STATE_KEY as INVENTORY_STATE_KEY

__all__ = [
    "ReloadOutcome",
    "Runtime",
    "config_from_text",
    "load_with_plugins",
    "peek_disabled",
]

log = logging.getLogger(__name__)

# How often drift is checked and the inventory's state kept.
INVENTORY_CHECK_INTERVAL = 60.0
# The rolling premium baselines' samples, kept this often (seconds) and at shutdown.
PREMIUM_KEY = "premium_baseline"
PREMIUM_SAVE_INTERVAL = 10.0
EQUITY_SNAPSHOT_INTERVAL = 60.0


def peek_disabled(path: Path) -> list[str]:
    """The ``[plugins] disable`` list, read before the plugins are loaded (their sections
    cannot be validated until then). A malformed value is reported by full validation."""
    try:
        document = read_document(path)
    except ConfigError:
        return []
    value = document.get("plugins", {}).get("disable", [])
    value = value.unwrap() if hasattr(value, "unwrap") else value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return []


def load_with_plugins(path: Path, pm: PluginManager) -> Config:
    """Validate the file at ``path`` against the sections of the core and of every plugin
    ``pm`` holds. Raises :class:`ConfigError`."""
    return load_config(path, collect_config_schema(pm), ignored=disabled_sections(pm))


def config_from_text(text: str, pm: PluginManager, *, path: Path,
                     updates: Mapping[str, Any] | None = None) -> Config:
    """The configuration a file holding ``text`` would give, with ``updates`` (dotted key
    paths to values, typed as the file would hold them) set in it, validated as
    :func:`load_with_plugins` validates a file: in memory, nothing is written or read.
    ``path`` names the file in errors. Raises :class:`ConfigError` naming the key of each
    problem. A parameter sweep builds each run's configuration this way, on whichever
    machine runs it."""
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.TOMLKitError as err:
        raise ConfigError([ConfigProblem(str(path), "", f"invalid TOML: {err}")]) from err
    set_document_values(document, updates or {}, file=str(path))
    sections = structure_document(document, collect_config_schema(pm), file=str(path),
                                  ignored=disabled_sections(pm))
    return Config(path=path, document=document, sections=sections)


@attrs.frozen
class ReloadOutcome:
    """What a reload did: the sections that changed, or the error that kept the old
    configuration."""

    changed: frozenset[str] = frozenset()
    error: ConfigError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Runtime:
    """Shared objects of the running daemon.

    ``config`` is always the last valid configuration. ``last_config_error`` holds the
    error of the latest failed reload (cleared by a successful one), for ``/health`` and
    the service manager's status line. ``shutdown_requested`` is set when the daemon
    begins to stop; services watch it to end gracefully.
    """

    def __init__(self, config: Config, pm: PluginManager) -> None:
        self.config = config
        self.pm = pm
        self.clock = time.time
        # Set by use_virtual_clock: time follows trio's clock (a MockClock in tests).
        self.virtual_time = False
        self.started_at = time.time()
        self.shutdown_requested = trio.Event()
        self.last_config_error: ConfigError | None = None
        self._reload_lock = trio.Lock()

        self.bus = Bus()
        self.ledger = Ledger()
        self.storage: Storage | None = None
        self.strategies: list[Strategy] = []
        self.engine: Engine | None = None
        self.control: Control | None = None
        self.feeds: FeedSupervisor | None = None
        # Objects a plugin keeps for this daemon (its server, its market session), keyed
        # "plugin.what": they live exactly as long as the daemon, so no plugin needs
        # module-level state.
        self.plugin_state: dict[str, Any] = {}

    # --- assembling the trading core --------------------------------------------------

    def assemble(self) -> None:
        """Ask the plugins for storage, strategies, exchanges, risk checks and executors,
        and build the engine, the control facade and the feed supervisor from them."""
        config, pm = self.config, self.pm
        self.storage = pm.hook.provide_storage(config=config, runtime=self)
        if self.storage is None:
            log.warning("no storage plugin enabled: signals and trades are kept in memory only")
        self.strategies = _flatten(pm.hook.register_strategies(config=config))
        storage = self.storage
        self.engine = Engine(
            strategies=self.strategies,
            bus=self.bus,
            ledger=self.ledger,
            clock=self.clock,
            on_signal_recorded=storage.record_signal if storage is not None else None,
            observe=storage.observe_quote if storage is not None else None,
        )
        if storage is not None:
            self.ledger.on_funding = lambda exchange, asset, amount: storage.record_funding(
                exchange, asset, amount, self.clock()
            )
        self.feeds = FeedSupervisor(self.engine)
        self.control = Control(
            engine=self.engine,
            ledger=self.ledger,
            bus=self.bus,
            clock=self.clock,
            risk_checks=_flatten(pm.hook.register_risk_checks(config=config, runtime=self)),
            executors=_flatten(pm.hook.register_executors(config=config, runtime=self)),
            storage=self.storage,
            # Durable writes wait for a worker thread, and a virtual clock runs on while
            # one waits: in virtual time, trades are recorded through the writer alone.
            durable=storage if isinstance(storage, DurableStorage) and not self.virtual_time
            else None,
        )
        self._install_exchanges(config)

    def _install_exchanges(self, config: Config) -> None:
        assert self.engine is not None and self.feeds is not None and self.control is not None
        adapters: dict[str, ExchangeAdapter] = {}
        for adapter in _flatten(self.pm.hook.register_exchanges(config=config, runtime=self)):
            if adapter.name in adapters:
                raise PluginError(f"two plugins provide an exchange named {adapter.name!r}")
            adapters[adapter.name] = adapter
        symbols = list(dict.fromkeys(s for st in self.strategies for s in st.symbols))
        self.engine.set_venues(
            {name: a.taker_fee for name, a in adapters.items()},
            {name: a.premium_baseline for name, a in adapters.items()},
            venue_conversions(adapters.values()),
            rolling_premium_windows(adapters.values()),
        )
        self.engine.set_symbols(symbols)
        self.control.symbols = symbols
        self.engine.inventory.configure(config["inventory"], symbols)
        self.feeds.configure(adapters, symbols)

    def configure_plugins(self) -> None:
        """Call every plugin's ``configure`` hook for this runtime, in pluggy's order. For
        runtimes other than the daemon's (a command's, a backtest's): unlike the daemon's
        ``call_historic``, the plugin manager keeps no reference to them afterwards."""
        arguments = {"config": self.config, "runtime": self}
        for impl in reversed(self.pm.hook.configure.get_hookimpls()):
            impl.function(*(arguments[name] for name in impl.argnames))

    def start_trading_if_configured(self) -> None:
        daemon = self.config.daemon
        if not daemon.autostart or self.control is None:
            return
        if self.control.emergency:
            log.warning("not starting trading at start-up: an emergency stop is in force")
            return
        try:
            self.control.start(daemon.mode)
        except TradingError as err:
            log.error("cannot start trading in %s mode: %s", daemon.mode, err)

    async def run_core(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """The core service: storage, feeds and trade execution.

        Storage opens first (numbering and paper accounts resume where they stopped);
        trades a crash left unfinished are reconciled before the service counts as
        started, so trading never resumes around them. On shutdown, trading stops first
        and trades in flight finish (they need the feeds' prices), then the feeds stop,
        and storage writes what it still holds last.
        """
        assert self.feeds is not None and self.control is not None
        assert self.engine is not None
        state = await self.storage.open() if self.storage is not None else None
        try:
            if state is not None:
                self.restore(state)
            async with trio.open_nursery() as nursery:
                await nursery.start(self.feeds.run)
                await nursery.start(self.control.run)
                if state is not None and state.unfinished_trades:
                    await self.control.recover(state.unfinished_trades)
                    # The outcome is on disk before anything else happens.
                    await self.storage.flush()
                if self.storage is not None:
                    nursery.start_soon(self._snapshot_equity)
                nursery.start_soon(self._watch_inventory)
                if self.storage is not None:
                    nursery.start_soon(self._keep_premium)
                task_status.started()
                await self.shutdown_requested.wait()
                if self.control.active:
                    log.info("waiting for %d trades in flight to finish",
                             len(self.control.active))
                await self.control.drain()
                self._save_premium()
                nursery.cancel_scope.cancel()
        finally:
            self.bus.close()
            if self.storage is not None:
                with trio.CancelScope(shield=True):
                    await self.storage.close()

    def restore(self, state: StoredState) -> None:
        """Hand what storage saved to the objects that keep running state: numbering, the
        paper accounts, today's closed trades and an emergency stop (the control
        facade), the last hour's signals (the engine, and strategies with hourly caps and
        cool-downs), and whatever strategies and risk checks saved (``restore(state)``,
        where they have it)."""
        assert self.engine is not None and self.control is not None
        self.engine.next_signal_id = state.next_signal_id
        self.engine.restore_signals(state.recent_signals)
        self.control.restore(state)
        self.ledger.restore(state.starting, state.balances)
        self.engine.inventory.restore(state.saved.get(INVENTORY_STATE_KEY))
        self.engine.restore_premium(state.saved.get(PREMIUM_KEY))
        for part in [*self.strategies, *self.control.risk_checks]:
            restore = getattr(part, "restore", None)
            if callable(restore):
                try:
                    restore(state)
                except Exception:
                    log.exception("%s could not take back its saved state",
                                  getattr(part, "name", part))

    async def _snapshot_equity(self) -> None:
        """Once a minute: equity and balances, for drawdown and Sharpe ratio.

        A minute in which a held asset has no valid price (its venues' market data is
        down) is skipped: valued without it, the equity would show a loss that is not
        one."""
        assert self.engine is not None and self.storage is not None
        skipping = False
        while True:
            await trio.sleep(EQUITY_SNAPSHOT_INTERVAL)
            if not any(True for _ in self.ledger.balances()):
                continue
            equity = self.ledger.full_value_usd(self.engine.price_usd)
            if equity is None:
                if not skipping:
                    log.warning(
                        "equity snapshots paused: no valid price for %s",
                        ", ".join(self.ledger.unpriced_assets(self.engine.price_usd)),
                    )
                skipping = True
                continue
            if skipping:
                log.info("equity snapshots resumed: every asset held has a price again")
                skipping = False
            self.storage.record_equity(self.clock(), equity, list(self.ledger.balances()))

    async def _keep_premium(self) -> None:
        """Keep the rolling premium baselines' samples across restarts."""
        while True:
            await trio.sleep(PREMIUM_SAVE_INTERVAL)
            self._save_premium()

    def _save_premium(self) -> None:
        assert self.engine is not None
        record = getattr(self.storage, "record_state", None)
        if record is not None and self.engine.rolling_premium.windows:
            record(PREMIUM_KEY, self.engine.rolling_premium.dump())

    async def _watch_inventory(self) -> None:
        """Once a minute: warn of drift past ``[inventory] warn_drift`` (a log line and a
        bus status event ``inventory_drift``, once until it comes back), and keep what
        drift cost across restarts."""
        assert self.engine is not None
        inventory = self.engine.inventory
        kept = None
        while True:
            await trio.sleep(INVENTORY_CHECK_INTERVAL)
            if inventory.keep_history:
                # A backtest reports the drift over time.
                inventory.sample(self.clock())
            for asset, venue, drift, past in inventory.check_drift():
                self.bus.publish("status", {
                    "event": "inventory_drift", "asset": asset, "exchange": venue,
                    "drift": round(drift, 6),
                    "warn_drift": inventory.config.warn_drift, "past": past,
                    "timestamp": self.clock()})
            state = inventory.state()
            if self.storage is not None and state != kept:
                record = getattr(self.storage, "record_state", None)
                if callable(record):
                    record(INVENTORY_STATE_KEY, state)
                kept = state

    def use_virtual_clock(self, epoch: float) -> None:
        """Let wall time follow trio's clock from ``epoch`` (seconds since the epoch at trio
        time 0): with a ``MockClock``, quote ages, cool-downs, fill delays and daily limits
        then run in virtual time. Call before the daemon assembles the engine.

        Durable writes (a trade recorded before its orders leave, reserved ids, a saved
        emergency stop) are left to the batched writer then: they wait for a worker
        thread, and a virtual clock would run on while they wait."""
        self.clock = lambda: epoch + trio.current_time()
        self.virtual_time = True

    @property
    def uptime(self) -> float:
        return time.time() - self.started_at

    async def reload(self) -> ReloadOutcome:
        """Re-read the configuration file and the secrets file (``[daemon]
        secrets_file``), validate them, and apply them.

        An invalid file changes nothing: the old configuration stays in force and the
        error is logged, kept in ``last_config_error`` and returned. So does a valid file
        that a reload may not apply (:class:`ReloadRefused`: it would weaken protection,
        move an endpoint, or it lacks a table the running daemon has); a restart applies
        it. Reloads never run concurrently.
        """
        async with self._reload_lock:
            try:
                new = load_with_plugins(self.config.path, self.pm)
                # Read with the file, so that a secrets file that cannot be read keeps
                # the old secrets and the old configuration alike.
                secrets = read_secrets(new.daemon.secrets_file)
            except ConfigError as err:
                return self._refuse(err)
            refusal = reload_refusal(self.config, new)
            if refusal is not None:
                return self._refuse(refusal)
            install_secrets(secrets)
            return self.apply(new)

    async def update_config(self, updates: dict[str, Any]) -> tuple[list[str], ReloadOutcome]:
        """Write ``updates`` (dotted key paths to values) into the configuration file,
        keeping its comments, and apply the result as a reload would.

        The edited file is validated before it is written: invalid values raise
        :class:`ConfigError` and leave the file and the running configuration as they
        were. An edited file that a reload may not apply (the file on disk lost a table,
        or holds a change only a restart applies) is not written either: the outcome
        carries the :class:`ReloadRefused`, as a refused reload does. Returns the key
        paths that changed and the outcome.

        Which keys the API may send is the caller's to check (``api_editable_settings``).
        """
        async with self._reload_lock:
            path = self.config.path
            schema = collect_config_schema(self.pm)
            ignored = disabled_sections(self.pm)

            def edit() -> tuple[Config, list[str]]:
                document, changed = edit_document(path, updates)
                sections = structure_document(document, schema, file=str(path),
                                              ignored=ignored)
                return Config(path=path, document=document, sections=sections), changed

            new, changed_keys = await trio.to_thread.run_sync(edit)
            refusal = reload_refusal(self.config, new)
            if refusal is not None:
                return [], self._refuse(refusal)
            if changed_keys:
                text = tomlkit.dumps(new.document)
                await trio.to_thread.run_sync(atomic_write_text, path, text)
            return changed_keys, self.apply(new)

    def _refuse(self, err: ConfigError) -> ReloadOutcome:
        self.last_config_error = err
        what = ("reload refused, keeping the running configuration (a restart applies the "
                "file)" if isinstance(err, ReloadRefused)
                else "reload failed, keeping the running configuration")
        for problem in err.problems:
            log.error("%s: %s", what, problem)
        return ReloadOutcome(error=err)

    def apply(self, new: Config) -> ReloadOutcome:
        """Install an already validated configuration and tell the plugins."""
        old = self.config
        changed = changed_sections(old, new)
        self.config = new
        self.last_config_error = None
        if changed:
            log.info("configuration reloaded; changed sections: %s", ", ".join(sorted(changed)))
        else:
            log.info("configuration reloaded; nothing changed")
        # Each plugin is told on its own, so that one failing does not keep the news from
        # the others.
        arguments = {"old": old, "new": new, "changed": changed, "runtime": self}
        for impl in reversed(self.pm.hook.on_reload.get_hookimpls()):
            try:
                impl.function(*(arguments[name] for name in impl.argnames))
            except Exception:
                log.exception(
                    "plugin %r failed to apply the reloaded configuration", impl.plugin_name
                )
        if self.engine is not None:
            try:
                self._install_exchanges(new)
            except Exception:
                log.exception("could not apply the new exchange settings")
        return ReloadOutcome(changed=changed)


def _flatten(batches: Any) -> list[Any]:
    return [item for batch in batches for item in batch or ()]
