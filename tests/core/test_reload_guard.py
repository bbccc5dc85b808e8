"""A reload never weakens protection: the general mechanism, with a test plugin whose
fields declare how a reload may change them (``setting(reload=...)``).

The daemon runs in the test's trio run; reloads go through ``runtime.reload()`` (what
SIGHUP calls) and ``runtime.update_config()`` (what ``PUT /trading/config`` calls).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import attrs
import pytest

import arbotd
from arbotd import ReloadRefused, hookimpl, one_way, setting

CONFIG = """
[daemon]
autostart = false
shutdown_timeout_seconds = 5

[guarded]
# Comments stay.
address = "inside"
locked = true
level = 1.0

[guarded.inner]
endpoint = "wss://example.invalid"

[other]
note = "kept"
"""


@attrs.frozen
class Inner:
    endpoint: str = setting("", reload="restart")


@attrs.frozen
class GuardedConfig:
    # Only a restart moves it.
    address: str = setting("inside", reload="restart")
    # A reload may turn it on, never off.
    locked: bool = setting(False, reload=one_way(True))
    level: float = setting(1.0, ge=0, le=10, api=True)
    inner: Inner = attrs.field(factory=Inner)


@attrs.frozen
class OtherConfig:
    note: str = setting("")


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A plugin owning ``[guarded]`` and ``[other]``."""
    module = ModuleType("arbotd_test_guarded")

    @hookimpl
    def register_config_sections() -> dict[str, type]:
        return {"guarded": GuardedConfig, "other": OtherConfig}

    module.register_config_sections = register_config_sections
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


@pytest.fixture
def config_path(write_config) -> Path:
    return write_config(CONFIG)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def problems(outcome: arbotd.ReloadOutcome) -> dict[str, str]:
    assert outcome.error is not None
    return {p.path: p.message for p in outcome.error.problems}


async def test_a_restart_only_setting_refuses_the_whole_reload(
    config_path, guarded, start_daemon
):
    async with start_daemon(config_path, ("guarded", guarded)) as daemon:
        runtime = daemon.runtime
        running = runtime.config
        edit(config_path, 'address = "inside"', 'address = "outside"')
        edit(config_path, "level = 1.0", "level = 2.0")  # fine alone, refused with it

        outcome = await runtime.reload()

        assert isinstance(outcome.error, ReloadRefused)
        assert problems(outcome) == {"guarded.address": (
            '"inside" -> "outside" is refused on reload (it changes only at a restart): '
            "the daemon keeps its running configuration; restart it to apply the file")}
        assert runtime.config is running
        assert runtime.last_config_error is outcome.error
        line = daemon.status_line()
        assert "reload failed, previous configuration kept" in line
        assert "guarded.address" in line and "restart" in line

        # Put back, the rest of the file applies, and the refusal is over.
        edit(config_path, 'address = "outside"', 'address = "inside"')
        outcome = await runtime.reload()
        assert outcome.ok and runtime.config["guarded"].level == 2.0
        assert runtime.last_config_error is None


async def test_a_restart_only_setting_in_a_nested_table(config_path, guarded, start_daemon):
    async with start_daemon(config_path, ("guarded", guarded)) as daemon:
        edit(config_path, 'endpoint = "wss://example.invalid"', 'endpoint = "ws://127.0.0.1:9"')

        outcome = await daemon.runtime.reload()

        assert set(problems(outcome)) == {"guarded.inner.endpoint"}
        assert daemon.runtime.config["guarded"].inner.endpoint == "wss://example.invalid"


async def test_a_one_way_setting_applies_one_way_only(write_config, guarded, start_daemon):
    path = write_config(CONFIG.replace("locked = true", "locked = false"))
    async with start_daemon(path, ("guarded", guarded)) as daemon:
        runtime = daemon.runtime
        # Towards protection: applies on reload.
        edit(path, "locked = false", "locked = true")
        assert (await runtime.reload()).ok
        assert runtime.config["guarded"].locked is True

        # Away from it: refused, also when the key is simply gone (its default is false).
        for change in ("locked = false", "# locked was here"):
            edit(path, "locked = true", change)
            outcome = await runtime.reload()
            assert problems(outcome)["guarded.locked"].startswith(
                "true -> false is refused on reload (a reload may only change it to true)")
            assert runtime.config["guarded"].locked is True
            edit(path, change, "locked = true")


@pytest.mark.parametrize("table", ["other", "guarded.inner", "daemon"])
async def test_a_file_that_lost_a_table_is_refused(config_path, guarded, start_daemon, table):
    async with start_daemon(config_path, ("guarded", guarded)) as daemon:
        runtime = daemon.runtime
        running = runtime.config
        lines = config_path.read_text().splitlines(keepends=True)
        start = lines.index(f"[{table}]\n")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")),
                   len(lines))
        config_path.write_text("".join(lines[:start] + lines[end:]))

        outcome = await runtime.reload()

        found = problems(outcome)
        assert table in found
        # What the lost table held may be named as well, and nothing else.
        assert all(key == table or key.startswith(table + ".") for key in found)
        assert "missing from the file but the running configuration has it" in found[table]
        assert runtime.config is running


async def test_an_empty_file_is_refused(config_path, guarded, start_daemon):
    async with start_daemon(config_path, ("guarded", guarded)) as daemon:
        runtime = daemon.runtime
        running = runtime.config
        for text, what in (("", "is empty"), ("# nothing else\n\n", "has only comments")):
            config_path.write_text(text)
            outcome = await runtime.reload()
            assert str(outcome.error) == (
                f"{config_path}: the file {what}: not a single setting (was it cut short?)")
            assert runtime.config is running


async def test_a_new_table_is_no_reason_to_refuse(config_path, guarded, start_daemon):
    async with start_daemon(config_path, ("guarded", guarded)) as daemon:
        config_path.write_text(config_path.read_text() + "\n[plugins]\ndisable = []\n")
        assert (await daemon.runtime.reload()).ok


async def test_an_edit_is_not_written_when_the_file_would_be_refused(
    config_path, guarded, start_daemon
):
    async with start_daemon(config_path, ("guarded", guarded)) as daemon:
        runtime = daemon.runtime
        running = runtime.config
        # The operator's pending edit, meant for the next start.
        edit(config_path, 'address = "inside"', 'address = "outside"')
        before = config_path.read_text()

        changed, outcome = await runtime.update_config({"guarded.level": 3.0})

        assert changed == [] and set(problems(outcome)) == {"guarded.address"}
        assert config_path.read_text() == before
        assert runtime.config is running
        assert runtime.last_config_error is outcome.error

        # Without it, the edit is written (comments kept) and applied.
        edit(config_path, 'address = "outside"', 'address = "inside"')
        changed, outcome = await runtime.update_config({"guarded.level": 3.0})
        assert changed == ["guarded.level"] and outcome.ok
        assert "# Comments stay.\n" in config_path.read_text()
        assert runtime.config["guarded"].level == 3.0
        assert runtime.last_config_error is None


def test_api_editable_settings_and_finding_a_key():
    schema = {"guarded": GuardedConfig, "other": OtherConfig}

    assert list(arbotd.api_editable_settings(schema)) == ["guarded.level"]
    assert arbotd.find_setting("guarded.level", schema)[0] == "guarded.level"
    assert arbotd.find_setting("guarded.inner.endpoint", schema)[0] == "guarded.inner.endpoint"
    assert arbotd.find_setting("guarded.nope.deeper", schema) == ("guarded.nope", None)
    assert arbotd.find_setting("elsewhere.key", schema) == ("elsewhere", None)
    assert arbotd.find_setting("guarded", schema) == ("guarded", None)


def test_a_setting_the_api_may_change_needs_both_bounds_and_applies_on_reload():
    with pytest.raises(ValueError, match="lower and an upper bound"):
        setting(1.0, gt=0, api=True)
    with pytest.raises(ValueError, match="lower and an upper bound"):
        setting(1, le=5, api=True)
    with pytest.raises(ValueError, match="must apply on reload"):
        setting(True, api=True, reload="restart")
    with pytest.raises(ValueError, match="reload must be"):
        setting("", reload="later")
