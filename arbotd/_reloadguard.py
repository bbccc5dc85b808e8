"""What a reload may change: a reload never weakens protection.

A reload (SIGHUP, ``systemctl reload``, or an edit through the API, which applies like
one) installs a new file while the daemon runs. A file cut short by an editor or a disk
that failed mid-write, or an edit meant for the next start, must not quietly lower the
running daemon's guard. So a reload is refused as a whole, and the running configuration
stays in force, when the new file:

- changes a setting declared ``setting(reload="restart")`` (endpoints, the names of the
  variables holding secrets, where data lives, which plugins load), or one whose own rule
  refuses the direction of the change (``reload=one_way(True)`` for authentication, a
  bind address that would widen);
- lacks a table the running configuration's file has: a missing table falls back to its
  defaults, and the defaults are not what the operator wrote (authentication off, the API
  on its default address).

Each plugin declares how its own fields may change; this module names none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
from tomlkit.container import Container, OutOfOrderTableProxy
from tomlkit.items import InlineTable, Table

from arbotd._config import Config, setting_rule, toml_repr
from arbotd._errors import ConfigProblem, ReloadRefused

__all__ = ["file_tables", "one_way", "reload_refusal"]

_MISSING_TABLE = (
    "the table is missing from the file but the running configuration has it: a reload "
    "does not fall back to its defaults (was the file cut short?). Restore the table, or "
    "restart the daemon to run without it"
)


def one_way(safe: Any) -> Callable[[Any, Any], str | None]:
    """For ``setting(reload=...)``: a reload may change the value to ``safe``, the
    protective side (``auth_required`` to true), but not away from it."""

    def rule(old: Any, new: Any) -> str | None:
        if new == safe:
            return None
        return f"a reload may only change it to {toml_repr(safe)}"

    return rule


def reload_refusal(old: Config, new: Config) -> ReloadRefused | None:
    """Why ``new`` may not replace the running configuration ``old`` on reload, or
    ``None`` when it may. Every reason is listed, each naming its key or table."""
    file = str(new.path)
    kept = set(file_tables(new.document))
    problems = [ConfigProblem(file, table, _MISSING_TABLE)
                for table in file_tables(old.document) if table not in kept]
    for name, section in old.sections.items():
        if name in new.sections:
            problems.extend(
                ConfigProblem(file, key, message)
                for key, message in _refused_changes(section, new.sections[name], name)
            )
    return ReloadRefused(problems) if problems else None


def _refused_changes(old: Any, new: Any, path: str) -> Iterator[tuple[str, str]]:
    for field in attrs.fields(type(old)):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if before == after:
            continue
        key = f"{path}.{field.name}"
        if attrs.has(type(before)) and type(after) is type(before):
            yield from _refused_changes(before, after, key)
            continue
        rule = setting_rule(field).reload
        if rule == "restart":
            reason: str | None = "it changes only at a restart"
        elif callable(rule):
            reason = rule(before, after)
        else:
            reason = None
        if reason:
            yield key, (
                f"{toml_repr(before)} -> {toml_repr(after)} is refused on reload ({reason}): "
                "the daemon keeps its running configuration; restart it to apply the file"
            )


def file_tables(document: Container) -> list[str]:
    """The dotted paths of the tables written in a parsed file, in file order: headers
    such as ``[api]`` and ``[exchanges.binance]``, not inline tables (values) nor the
    implicit parents of nested headers (``exchanges``)."""
    found: list[str] = []

    def walk(container: Any, prefix: str) -> None:
        for key, item in container.items():
            if isinstance(item, InlineTable):
                continue
            if isinstance(item, OutOfOrderTableProxy):  # a table split across the file
                found.append(prefix + key)
            elif isinstance(item, Table):
                if not item.is_super_table():
                    found.append(prefix + key)
            else:
                continue
            walk(item, f"{prefix}{key}.")

    walk(document, "")
    return found
