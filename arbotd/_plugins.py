"""Building the plugin manager and asking plugins for their config sections."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from arbotd import hookspecs
from arbotd._config import CORE_SECTIONS
from arbotd._errors import PluginError
from arbotd.inventory import InventoryConfig

__all__ = ["PluginInfo", "PluginManager", "collect_config_schema", "make_plugin_manager"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "arbotd"


@attrs.frozen
class PluginInfo:
    """What ``arbotd plugins`` shows about one plugin."""

    name: str
    version: str
    hooks: tuple[str, ...]
    source: str
    enabled: bool


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering where each plugin came from and which were disabled."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.sources: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self.disabled: dict[str, importlib.metadata.EntryPoint | None] = {}

    def describe(self) -> list[PluginInfo]:
        """Every loaded plugin, then every disabled one, sorted by name."""
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            hooks = tuple(sorted(c.name for c in self.get_hookcallers(plugin) or ()))
            infos.append(
                PluginInfo(
                    name=name,
                    version=self.versions.get(name, ""),
                    hooks=hooks,
                    source=self.sources.get(name, _module_file(plugin)),
                    enabled=True,
                )
            )
        for name, ep in self.disabled.items():
            dist = ep.dist if ep is not None else None
            infos.append(
                PluginInfo(
                    name=name,
                    version=dist.version if dist else "",
                    hooks=(),
                    source=_entry_point_source(ep) if ep is not None else "not installed",
                    enabled=False,
                )
            )
        return sorted(infos, key=lambda i: (not i.enabled, i.name))


def make_plugin_manager(
    *,
    disabled: Iterable[str] = (),
    plugins: Iterable[tuple[str, Any]] = (),
    entry_points: bool = True,
) -> PluginManager:
    """Build a plugin manager: the hookspecs, the installed plugins of the ``arbotd``
    entry-point group except the ``disabled`` names, then ``plugins`` given as
    ``(name, module_or_object)`` pairs (used by tests and embedders).

    Raises :class:`PluginError` naming the plugin when one fails to import or implements a
    hook that does not exist (a misspelt hook name).
    """
    pm = PluginManager()
    disabled = list(dict.fromkeys(disabled))
    for name in disabled:
        pm.set_blocked(name)
        pm.disabled[name] = None
    if entry_points:
        for ep in _entry_points():
            if pm.is_blocked(ep.name):
                pm.disabled[ep.name] = ep
                continue
            if pm.get_plugin(ep.name) is not None:
                raise PluginError(
                    f"two installed plugins are named {ep.name!r}: "
                    f"{pm.sources[ep.name]} and {_entry_point_source(ep)}"
                )
            try:
                plugin = ep.load()
            except Exception as err:
                raise PluginError(
                    f"plugin {ep.name!r} ({_entry_point_source(ep)}) failed to load: "
                    f"{type(err).__name__}: {err}"
                ) from err
            _register(pm, ep.name, plugin)
            pm.sources[ep.name] = _entry_point_source(ep)
            if ep.dist is not None:
                pm.versions[ep.name] = ep.dist.version
    given: set[str] = set()
    for name, plugin in plugins:
        given.add(name)
        if pm.is_blocked(name):
            continue
        _register(pm, name, plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        raise PluginError(f"plugin {pm.get_name(err.plugin)!r}: {err}") from err
    for name in disabled:
        if pm.disabled.get(name) is None and name not in given:
            log.warning("plugins.disable names %r, but no installed plugin has that name", name)
    return pm


def _register(pm: PluginManager, name: str, plugin: Any) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as err:
        raise PluginError(f"plugin {name!r}: {err}") from err
    except ValueError as err:
        raise PluginError(f"plugin {name!r} cannot be registered: {err}") from err


def collect_config_schema(pm: PluginManager) -> dict[str, type]:
    """The table path -> attrs class mapping of the core and every loaded plugin.

    Raises :class:`PluginError` when two owners claim one table or a table is nested in
    another owner's table.
    """
    core = {**CORE_SECTIONS, "inventory": InventoryConfig}
    schema: dict[str, type] = dict(core)
    owner = dict.fromkeys(core, "arbotd (core)")
    for impl in pm.hook.register_config_sections.get_hookimpls():
        sections = impl.function() or {}
        for table, cls in sections.items():
            if not attrs.has(cls):
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: config section {table!r} must be an "
                    f"attrs class, got {cls!r}"
                )
            if table in schema:
                raise PluginError(
                    f"config section [{table}] is claimed by both {owner[table]!r} and "
                    f"{impl.plugin_name!r}"
                )
            schema[table] = cls
            owner[table] = impl.plugin_name
    for table in schema:
        for other in schema:
            if other.startswith(table + "."):
                raise PluginError(
                    f"config section [{other}] ({owner[other]}) is nested inside "
                    f"[{table}] ({owner[table]})"
                )
    return schema


def disabled_sections(pm: PluginManager) -> set[str]:
    """The tables that disabled plugins would own, so that leaving a disabled plugin's
    section in the file is not an error. A disabled plugin that cannot even be imported
    contributes nothing."""
    tables: set[str] = set()
    for name, ep in pm.disabled.items():
        if ep is None:
            continue
        try:
            plugin = ep.load()
            probe = PluginManager()
            probe.register(plugin, name=name)
            for impl in probe.hook.register_config_sections.get_hookimpls():
                tables.update((impl.function() or {}).keys())
        except Exception as err:
            log.debug("could not ask disabled plugin %r for its sections: %s", name, err)
    return tables


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


def _entry_point_source(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    where = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
    return f"{ep.value} (entry point of {where})"


def _module_file(plugin: Any) -> str:
    module = getattr(plugin, "__file__", None) or getattr(
        type(plugin), "__module__", repr(plugin)
    )
    return str(module)
