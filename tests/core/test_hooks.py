"""Every hook of ``arbotd.hookspecs``, called the way its docstring promises.

The daemon runs in the test's own trio run (``start_daemon``), with only the test plugin
``tests/plugins/everything.py`` loaded; it records each call it receives. A meta-test in
``test_plugins.py`` requires a ``test_hook_<name>`` here for every hook.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import arbotd
from arbotd import ConfigError, make_plugin_manager
from arbotd._daemon import Daemon

CONFIG = """
[daemon]
autostart = false
shutdown_timeout_seconds = 5

[everything]
greeting = "hello"
"""


@pytest.fixture
def config_path(write_config) -> Path:
    return write_config(CONFIG)


def prepared(config_path: Path, *plugins: tuple[str, object]) -> arbotd.Runtime:
    """The runtime of a daemon that loaded its plugins and configuration but does not run."""
    return Daemon(config_path, plugins=plugins, entry_points=False).prepare()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# --- configuration ---------------------------------------------------------------------------


async def test_hook_register_config_sections(config_path, everything, start_daemon):
    edit(config_path, 'greeting = "hello"', 'greeting = "hi"')

    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        assert runtime.config["everything"] == everything.EverythingConfig(greeting="hi")
        asked_at_start = len(everything.called("register_config_sections"))
        assert asked_at_start >= 1

        # A reload validates the new file with the sections the plugins declare again.
        edit(config_path, "[everything]", "[everything]\nlevel = 2.5")
        assert (await runtime.reload()).ok
        assert runtime.config["everything"].level == 2.5
        assert len(everything.called("register_config_sections")) > asked_at_start


def test_a_plugin_section_is_validated_like_the_core_ones(config_path, everything):
    edit(config_path, 'greeting = "hello"', "level = 11\ncolor = 1")

    with pytest.raises(ConfigError) as caught:
        prepared(config_path, ("everything", everything))

    assert [str(p) for p in caught.value.problems] == [
        f"{config_path}: everything.color: unknown key",
        f"{config_path}: everything.level: expected a number in [0, 10], got 11",
    ]


async def test_hook_configure(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        [call] = everything.called("configure")
        assert call == {"config": runtime.config, "runtime": runtime}
        assert call["config"]["everything"].greeting == "hello"

        # Called once: a reload is announced through on_reload, not configure.
        edit(config_path, 'greeting = "hello"', 'greeting = "hi"')
        await runtime.reload()
        assert len(everything.called("configure")) == 1


async def test_hook_configure_comes_before_services(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)):
        order = [name for name, _ in everything.calls]
        assert order.index("configure") < order.index("register_services")


# --- what plugins contribute -------------------------------------------------------------------


async def test_hook_provide_storage(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        assert everything.called("provide_storage") == [
            {"config": runtime.config, "runtime": runtime}
        ]
        assert isinstance(runtime.storage, everything.ListStorage)
        assert isinstance(runtime.storage, arbotd.Storage)


def test_provide_storage_first_backend_wins(config_path, everything):
    class NoStorage:
        @arbotd.hookimpl
        def provide_storage(self, config, runtime):
            return None

    runtime = prepared(config_path, ("everything", everything), ("none", NoStorage()))

    storage = runtime.pm.hook.provide_storage(config=runtime.config, runtime=runtime)
    assert isinstance(storage, everything.ListStorage)


async def test_hook_register_exchanges(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        assert {"config": runtime.config, "runtime": runtime} in everything.called(
            "register_exchanges"
        )
        [[adapter]] = runtime.pm.hook.register_exchanges(config=runtime.config, runtime=runtime)
        assert isinstance(adapter, arbotd.ExchangeAdapter)


async def test_hook_register_strategies(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        assert {"config": runtime.config} in everything.called("register_strategies")
        [[strategy]] = runtime.pm.hook.register_strategies(config=runtime.config)
        assert isinstance(strategy, arbotd.Strategy)


async def test_hook_register_risk_checks(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        assert {"config": runtime.config, "runtime": runtime} in everything.called(
            "register_risk_checks"
        )
        [[check]] = runtime.pm.hook.register_risk_checks(config=runtime.config, runtime=runtime)
        assert isinstance(check, arbotd.RiskCheck)


async def test_hook_register_executors(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        assert {"config": runtime.config, "runtime": runtime} in everything.called(
            "register_executors"
        )
        [[executor]] = runtime.pm.hook.register_executors(config=runtime.config, runtime=runtime)
        assert isinstance(executor, arbotd.Executor)
        assert executor.mode == "simulation"


async def test_hook_register_services(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        [service] = everything.services
        # Started with nursery.start: running by the time the daemon says READY.
        assert service.state == "running"
        assert service.runtime is daemon.runtime
        assert isinstance(service, arbotd.Service)

    assert service.state == "stopped"


# --- reload and shutdown -------------------------------------------------------------------------


async def test_hook_on_reload(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        old = runtime.config
        edit(config_path, 'greeting = "hello"', 'greeting = "hi"')

        outcome = await runtime.reload()

        assert outcome == arbotd.ReloadOutcome(changed=frozenset({"everything"}))
        [call] = everything.called("on_reload")
        assert call == {
            "old": old,
            "new": runtime.config,
            "changed": frozenset({"everything"}),
            "runtime": runtime,
        }
        assert call["new"]["everything"].greeting == "hi"


async def test_on_reload_is_not_called_for_an_invalid_file(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        running = runtime.config
        edit(config_path, 'greeting = "hello"', "level = -1")

        outcome = await runtime.reload()

        assert not outcome.ok
        assert str(outcome.error) == (
            f"{config_path}: everything.level: expected a number in [0, 10], got -1"
        )
        assert runtime.config is running
        assert runtime.last_config_error is outcome.error
        assert "reload failed, previous configuration kept" in daemon.status_line()
        assert everything.called("on_reload") == []


async def test_on_reload_after_a_change_through_update_config(
    config_path, everything, start_daemon
):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime

        changed_keys, outcome = await runtime.update_config({"everything.level": 2.5})

        assert changed_keys == ["everything.level"]
        assert outcome.changed == {"everything"}
        [call] = everything.called("on_reload")
        assert call["new"]["everything"].level == 2.5
        assert "level = 2.5" in config_path.read_text()

        # An invalid value is refused before it reaches the file or the plugins.
        with pytest.raises(ConfigError, match=r"everything\.level: expected a number"):
            await runtime.update_config({"everything.level": 99})
        assert runtime.config["everything"].level == 2.5
        assert len(everything.called("on_reload")) == 1


async def test_hook_shutdown(config_path, everything, start_daemon):
    async with start_daemon(config_path, ("everything", everything)) as daemon:
        runtime = daemon.runtime
        assert everything.called("shutdown") == []

    assert everything.called("shutdown") == [{"runtime": runtime}]


def test_hooks_accept_only_the_arguments_they_need():
    class Minimal:
        @arbotd.hookimpl
        def register_exchanges(self):
            return []

    pm = make_plugin_manager(plugins=[("minimal", Minimal())], entry_points=False)

    assert pm.hook.register_exchanges(config=None, runtime=None) == [[]]
