"""The shipped etc/arbot.toml is valid and documents every key of every builtin section."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from arbotd import make_plugin_manager
from arbotd._plugins import collect_config_schema
from arbotd._runtime import load_with_plugins

DEFAULT = Path(__file__).resolve().parent.parent / "etc" / "arbot.toml"


def test_default_config_is_valid() -> None:
    load_with_plugins(DEFAULT, make_plugin_manager())


def _documented_keys(text: str) -> dict[str, set[str]]:
    """Keys per table that have a comment line right above them (commented-out keys
    count: `# key = value`)."""
    keys: dict[str, set[str]] = {}
    table = ""
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        header = re.fullmatch(r"#?\s*\[([\w.]+)\]", stripped)
        if header:
            table = header.group(1)
            keys.setdefault(table, set())
        else:
            key = re.match(r"#?\s*([a-z_][a-z0-9_]*)\s*=", stripped)
            if key and previous.startswith("#"):
                keys.setdefault(table, set()).add(key.group(1))
        previous = stripped
    return keys


@pytest.mark.parametrize("table", sorted(collect_config_schema(make_plugin_manager())))
def test_every_key_is_commented(table: str) -> None:
    cls = collect_config_schema(make_plugin_manager())[table]
    documented = _documented_keys(DEFAULT.read_text())
    missing = [f.name for f in attrs.fields(cls) if f.name not in documented.get(table, set())]
    assert not missing, f"[{table}] keys without a commented entry in etc/arbot.toml: {missing}"
