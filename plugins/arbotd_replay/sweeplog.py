"""A sweep's results file, ``results.jsonl``: one JSON line per finished run, appended
and fsynced as each run ends, so an interrupted sweep (Ctrl-C, a power cut) loses no
finished run and ``--resume`` runs only the rest.

A run is known by its *key*, a digest of what decides its result: its parameters, its
period, the data files (path, size, modification time) and the base configuration's
settings. A line cut short by a crash is skipped on reading (its run is done again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ResultsLog", "data_fingerprint", "run_key"]

log = logging.getLogger("arbotd_replay")


def data_fingerprint(paths: Sequence[Path]) -> list[list[Any]]:
    """What identifies the data: each file's absolute path, size and modification time."""
    found = []
    for path in paths:
        stat = path.stat()
        found.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return found


def run_key(*, params: Mapping[str, Any], start: float | None, end: float | None,
            data: Sequence[Sequence[Any]], config: Mapping[str, Any], strict: bool) -> str:
    """The run's key (16 hex digits): equal for runs that must give equal results."""
    text = json.dumps({"params": dict(sorted(params.items())), "start": start, "end": end,
                       "data": list(data), "config": config, "strict": strict},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResultsLog:
    """``results.jsonl`` in a sweep's output directory."""

    NAME = "results.jsonl"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.NAME

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def read(self) -> dict[str, dict[str, Any]]:
        """The finished runs by key (the last line of a key wins)."""
        done: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return done
        with self.path.open(encoding="utf-8") as stream:
            for number, line in enumerate(stream, 1):
                try:
                    entry = json.loads(line)
                    done[entry["key"]] = entry
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: not a whole result (cut short?): that run is done "
                                "again", self.path, number)
        return done

    def append(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Append ``entries``, each a line, and make them durable before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as stream:
            if stream.tell() > 0 and not self._ends_with_newline():
                stream.write(b"\n")  # after a line cut short: start a whole new one
            for entry in entries:
                stream.write(json.dumps(entry).encode() + b"\n")
            stream.flush()
            os.fsync(stream.fileno())

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as stream:
            stream.seek(-1, os.SEEK_END)
            return stream.read(1) == b"\n"
