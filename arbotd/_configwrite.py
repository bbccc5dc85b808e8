"""Writing changes back into the operator's TOML file without disturbing it.

Only the values named are replaced; comments, key order, blank lines and the formatting of
everything else are kept byte for byte (tomlkit edits the parsed document in place). The
file is replaced atomically: a reader, or a crash, sees either the old file or the new
one, never half of each.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import Table

from arbotd._config import read_document, structure_document
from arbotd._errors import ConfigError, ConfigProblem

__all__ = ["atomic_write_text", "edit_document", "set_document_values", "update_config_file"]

_MISSING = object()


def update_config_file(
    path: Path,
    updates: Mapping[str, Any],
    *,
    schema: Mapping[str, type] | None = None,
    ignored: Iterable[str] = (),
) -> list[str]:
    """Set the values of ``updates`` (dotted key paths, e.g.
    ``{"arbitrage.min_profit_threshold": 0.004}``) in the file at ``path``.

    Tables that do not exist yet are created. When ``schema`` is given, the edited
    document is validated first and nothing is written if it is invalid
    (:class:`ConfigError`). Returns the key paths whose value actually changed; when none
    did, the file is not touched.
    """
    document, changed = edit_document(path, updates)
    if not changed:
        return []
    if schema is not None:
        structure_document(document, schema, file=str(path), ignored=ignored)
    atomic_write_text(path, tomlkit.dumps(document))
    return changed


def edit_document(
    path: Path, updates: Mapping[str, Any]
) -> tuple[tomlkit.TOMLDocument, list[str]]:
    """The file at ``path`` with ``updates`` set in it, in memory (nothing is written),
    and the key paths whose value actually changed."""
    document = read_document(path)
    return document, set_document_values(document, updates, file=str(path))


def set_document_values(
    document: tomlkit.TOMLDocument, updates: Mapping[str, Any], *, file: str
) -> list[str]:
    """Set ``updates`` (dotted key paths to values) in ``document`` in place, creating
    tables as needed; return the key paths whose value actually changed. ``file`` names
    the document in errors."""
    changed: list[str] = []
    for dotted, value in updates.items():
        keys = dotted.split(".")
        table: Any = document
        for depth, key in enumerate(keys[:-1]):
            if key not in table:
                table[key] = tomlkit.table(is_super_table=depth < len(keys) - 2)
            table = table[key]
            # Tables split across the file come back as a proxy, not a Table.
            if not isinstance(table, MutableMapping):
                where = ".".join(keys[: depth + 1])
                raise ConfigError([ConfigProblem(file, where, "is a value, not a table")])
        current = table.get(keys[-1], _MISSING)
        try:
            if current is _MISSING:
                _add_key(table, keys[-1], value)
            else:
                current = current.unwrap() if hasattr(current, "unwrap") else current
                if type(current) is type(value) and current == value:
                    continue
                table[keys[-1]] = value
        except tomlkit.exceptions.ConvertError:
            # null, anywhere in the value: TOML has no such thing, and no setting takes it.
            raise ConfigError([ConfigProblem(
                file, dotted, f"{value!r} cannot be written to a TOML file (null is not "
                "a TOML value)")]) from None
        changed.append(dotted)
    return changed


def _add_key(table: Any, key: str, value: Any) -> None:
    """Add a key after the last key of ``table``.

    tomlkit keeps the blank lines and comments that come before the next table's header
    at the end of this table's body; appending after them would move the new key under a
    comment like ``# arbitrage settings`` meant for the ``[arbitrage]`` below it.
    """
    if not isinstance(table, Table):
        table[key] = value
        return
    body = table.value.body
    trailing = []
    while body and body[-1][0] is None:
        trailing.append(body.pop())
    table[key] = value
    for _, item in reversed(trailing):
        table.value.append(None, item)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: write a temporary file beside it, fsync it, rename
    it over the original (keeping its permissions and, where allowed, its owner), then
    fsync the directory so the rename itself survives a power cut."""
    path = Path(path)
    directory = path.parent
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if st is not None:
            os.chmod(tmp_name, st.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):
                os.chown(tmp_name, st.st_uid, st.st_gid)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
