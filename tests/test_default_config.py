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


def _tables(table: str, cls: type) -> list[tuple[str, type]]:
    """A section and the sub-tables its attrs-class fields make (``[simulation.paper]``)."""
    found = [(table, cls)]
    for field in attrs.fields(attrs.resolve_types(cls)):
        if isinstance(field.type, type) and attrs.has(field.type):
            found += _tables(f"{table}.{field.name}", field.type)
    return found


@pytest.mark.parametrize(
    ("table", "cls"),
    [pair for name, cls in sorted(collect_config_schema(make_plugin_manager()).items())
     for pair in _tables(name, cls)],
)
def test_every_key_is_commented(table: str, cls: type) -> None:
    documented = _documented_keys(DEFAULT.read_text())
    missing = [
        f.name
        for f in attrs.fields(attrs.resolve_types(cls))
        if f.name not in documented.get(table, set())
        and not (isinstance(f.type, type) and attrs.has(f.type))
    ]
    assert not missing, f"[{table}] keys without a commented entry in etc/arbot.toml: {missing}"


def test_the_environment_template_names_every_secret_variable() -> None:
    """contrib/arbotd.env.example lists the variable of every *_env key the shipped
    configuration sets, so an operator filling it in misses none."""
    template = (DEFAULT.parent.parent / "contrib" / "arbotd.env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", template, re.MULTILINE))
    named = set(re.findall(r'^\w+_env\s*=\s*"([A-Z][A-Z0-9_]*)"', DEFAULT.read_text(),
                           re.MULTILINE))
    assert named, "the shipped configuration names no secret variable"
    assert named <= listed, f"missing from the template: {sorted(named - listed)}"
