"""The plugin manager: loading, disabling, contract checks, and the rule that every hook
is documented, implemented by the test plugin and tested."""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path

import attrs
import pytest

import arbotd
from arbotd import PluginError, hookspecs, make_plugin_manager
from arbotd._plugins import PluginInfo, collect_config_schema
from arbotd.inventory import InventoryConfig

TESTS = Path(__file__).parents[1]
HOOK_NAMES = sorted(
    name
    for name, function in vars(hookspecs).items()
    if hasattr(function, f"{hookspecs.PROJECT_NAME}_spec")
)


def test_the_hookspecs_are_found():
    assert "configure" in HOOK_NAMES
    assert "register_config_sections" in HOOK_NAMES
    assert len(HOOK_NAMES) == len(make_plugin_manager(entry_points=False).hook.__dict__)


# --- the contract is documented and tested -------------------------------------------------


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_hookspec_has_a_docstring(name):
    assert inspect.getdoc(getattr(hookspecs, name)), f"hookspec {name} has no docstring"


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_hookspec_has_a_test(name):
    pattern = re.compile(rf"^(async )?def test_hook_{name}\(", re.MULTILINE)
    sources = [path.read_text() for path in TESTS.rglob("test_*.py")]

    assert any(pattern.search(source) for source in sources), (
        f"no test_hook_{name} under tests/: show that the daemon calls {name}"
    )


def test_the_test_plugin_implements_every_hook(everything):
    pm = make_plugin_manager(plugins=[("everything", everything)], entry_points=False)

    [info] = pm.describe()
    assert list(info.hooks) == HOOK_NAMES


# --- building the manager ------------------------------------------------------------------


def test_plugins_given_directly_are_registered(everything):
    pm = make_plugin_manager(plugins=[("everything", everything)], entry_points=False)

    assert pm.get_plugin("everything") is everything


def test_a_disabled_plugin_is_blocked(everything, caplog):
    pm = make_plugin_manager(
        disabled=["everything"], plugins=[("everything", everything)], entry_points=False
    )

    assert pm.get_plugin("everything") is None
    assert pm.is_blocked("everything")
    assert pm.hook.register_config_sections() == []
    assert "plugins.disable" not in caplog.text


def test_an_installed_plugin_is_loaded_through_its_entry_point(installed_everything):
    pm = make_plugin_manager()

    plugin = pm.get_plugin("everything")
    assert plugin is not None
    assert plugin.__name__ == "arbotd_test_everything"
    assert "everything" in collect_config_schema(pm)


def test_an_installed_plugin_can_be_disabled(installed_everything):
    pm = make_plugin_manager(disabled=["everything"])

    assert pm.get_plugin("everything") is None
    assert "everything" not in collect_config_schema(pm)


def test_disabling_a_plugin_that_is_not_installed_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="arbotd._plugins"):
        make_plugin_manager(disabled=["arbot_nonesuch"], entry_points=False)

    assert "plugins.disable names 'arbot_nonesuch'" in caplog.text


# --- broken plugins are named --------------------------------------------------------------


class Misspelt:
    @arbotd.hookimpl
    def register_exchange(self, config, runtime):  # the hook is register_exchanges
        return []


class WrongArguments:
    @arbotd.hookimpl
    def configure(self, settings):
        pass


def test_a_misspelt_hook_is_an_error_naming_the_plugin():
    with pytest.raises(PluginError, match=r"(?s)plugin 'misspelt': .*register_exchange"):
        make_plugin_manager(plugins=[("misspelt", Misspelt())], entry_points=False)


def test_a_hook_with_unknown_arguments_is_an_error_naming_the_plugin():
    with pytest.raises(PluginError, match=r"(?s)plugin 'wrong': .*settings"):
        make_plugin_manager(plugins=[("wrong", WrongArguments())], entry_points=False)


def test_two_plugins_with_one_name_is_an_error(everything):
    with pytest.raises(PluginError, match=r"plugin 'everything' cannot be registered"):
        make_plugin_manager(
            plugins=[("everything", everything), ("everything", Misspelt)],
            entry_points=False,
        )


# --- who owns which config section -----------------------------------------------------------


@attrs.frozen
class Section:
    value: int = arbotd.setting(1)


def _claims(*tables: str) -> object:
    """A plugin that registers ``tables`` as its config sections."""

    class Claimant:
        @arbotd.hookimpl
        def register_config_sections(self):
            return dict.fromkeys(tables, Section)

    return Claimant()


def _schema_of(*plugins: tuple[str, object]) -> dict[str, type]:
    return collect_config_schema(make_plugin_manager(plugins=plugins, entry_points=False))


def test_sections_of_the_core_and_of_plugins(everything):
    schema = _schema_of(("everything", everything), ("venues", _claims("exchanges.binance")))

    assert schema == {
        "daemon": arbotd.DaemonConfig,
        "plugins": arbotd.PluginsConfig,
        "inventory": InventoryConfig,
        "everything": everything.EverythingConfig,
        "exchanges.binance": Section,
    }


def test_two_plugins_cannot_claim_one_section():
    with pytest.raises(
        PluginError, match=r"config section \[arbitrage\] is claimed by both 'one' and 'two'"
    ):
        _schema_of(("one", _claims("arbitrage")), ("two", _claims("arbitrage")))


def test_a_plugin_cannot_claim_a_core_section():
    with pytest.raises(PluginError, match=r"\[daemon\] is claimed by both 'arbotd \(core\)'"):
        _schema_of(("greedy", _claims("daemon")))


def test_a_section_cannot_be_nested_in_another_plugins_section():
    with pytest.raises(
        PluginError,
        match=r"config section \[exchanges.binance\] \(inner\) is nested inside "
        r"\[exchanges\] \(outer\)",
    ):
        _schema_of(("outer", _claims("exchanges")), ("inner", _claims("exchanges.binance")))


def test_a_section_must_be_an_attrs_class():
    class NotAttrs:
        @arbotd.hookimpl
        def register_config_sections(self):
            return {"mine": dict}

    with pytest.raises(PluginError, match=r"plugin 'bad': config section 'mine' must be an attrs"):
        _schema_of(("bad", NotAttrs()))


# --- what `arbotd plugins` shows -------------------------------------------------------------


def test_describe_a_plugin_given_directly(everything):
    pm = make_plugin_manager(plugins=[("everything", everything)], entry_points=False)

    assert pm.describe() == [
        PluginInfo(
            name="everything",
            version="",
            hooks=tuple(HOOK_NAMES),
            source=everything.__file__,
            enabled=True,
        )
    ]


def test_describe_installed_plugins_enabled_then_disabled(installed_everything, everything):
    pm = make_plugin_manager(disabled=["everything"], plugins=[("direct", everything)])

    infos = {info.name: info for info in pm.describe()}
    assert infos["everything"] == PluginInfo(
        name="everything",
        version="1.2.3",
        hooks=(),
        source="arbotd_test_everything (entry point of arbotd-test-everything 1.2.3)",
        enabled=False,
    )
    assert infos["direct"].enabled
    names = [info.name for info in pm.describe()]
    assert names.index("direct") < names.index("everything")


def test_describe_an_installed_plugin(installed_everything):
    pm = make_plugin_manager()

    [info] = [info for info in pm.describe() if info.name == "everything"]
    assert info.version == "1.2.3"
    assert info.source == "arbotd_test_everything (entry point of arbotd-test-everything 1.2.3)"
    assert info.hooks == tuple(HOOK_NAMES)
    assert info.enabled
