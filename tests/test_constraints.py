"""The lock (``.ci/constraints.txt``) pins every distribution the README's install
command brings in, and this venv runs the locked versions.

What the install brings in is worked out from ``pyproject.toml`` (arbotd's dependencies
and its ``test`` extra, as the README installs them) and, below that, from the metadata
of the distributions installed here, markers evaluated for this Python: so a dependency
added to ``pyproject.toml``, or a new dependency of a dependency, fails the test until
the lock is refreshed (``bash .ci/refresh-lock``).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / ".ci" / "constraints.txt"
EXTRAS = ("test",)  # as the README installs it: -e '.[test]'
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def locked() -> dict[str, str]:
    """Canonical name -> pinned version; every line is a comment or one exact pin."""
    pins: dict[str, str] = {}
    for number, line in enumerate(LOCK.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        assert match, f"{LOCK}:{number}: expected name==version, got {line!r}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"{LOCK}:{number}: {name} is pinned twice"
        pins[name] = match[2]
    return pins


def brought_in() -> dict[str, str]:
    """Canonical name -> installed version of every distribution arbotd with its test
    extra needs here, arbotd itself left out."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in EXTRAS:
        wanted += project["optional-dependencies"][extra]
    todo = [(Requirement(text), frozenset[str]()) for text in wanted]
    found: dict[str, str] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement, parent_extras = todo.pop()
        marker = requirement.marker
        if marker is not None and not any(
            marker.evaluate({"extra": extra}) for extra in parent_extras or {""}
        ):
            continue
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name} (needed by arbotd) is not installed: run the README's "
                        "install command")
        found[name] = distribution.version
        todo += [(Requirement(text), extras) for text in distribution.requires or []]
    return found


def test_the_lock_pins_every_distribution_the_install_brings_in() -> None:
    missing = sorted(set(brought_in()) - set(locked()))
    assert not missing, (
        f"{LOCK} has no pin for {', '.join(missing)}: refresh it (bash .ci/refresh-lock)"
    )


def test_this_venv_runs_the_locked_versions() -> None:
    """Fails only where the venv is meant to be installed from the lock (``.ci/run``
    sets ``ARBOTD_REQUIRE_LOCKED=1``); a venv installed otherwise is told, and skipped."""
    pins = locked()
    different = sorted(
        f"{name} {version} (locked: {pins[name]})"
        for name, version in brought_in().items()
        if name in pins and version != pins[name]
    )
    if different and not os.environ.get("ARBOTD_REQUIRE_LOCKED"):
        pytest.skip("this venv was not installed from .ci/constraints.txt: "
                    + ", ".join(different))
    assert not different, f"installed versions differ from {LOCK}: " + ", ".join(different)
