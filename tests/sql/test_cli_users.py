"""``arbotd user`` commands against the real storage, as a subprocess (what they do to a
running daemon's tokens: ``tests/api/test_api_revocation.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from arbotd import make_plugin_manager, verify_password
from arbotd._runtime import Runtime, load_with_plugins

CONFIG = """
[daemon]
state_dir = "{state}"

[plugins]
disable = {disable}
"""


def arbotd(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arbotd", *args, "-c", str(config)],
        input=stdin, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "arbot.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state", disable="[]"))
    return path


def test_users_are_added_with_their_scope_and_listed(config: Path) -> None:
    added = arbotd(config, "user", "add", "alice", "--scope", "trading",
                   stdin="correct horse battery\n")
    assert added.returncode == 0, added.stderr
    assert "user 'alice' added with trading scope" in added.stdout
    assert arbotd(config, "user", "add", "bob", stdin="another-pass\n").returncode == 0

    listed = arbotd(config, "user", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t")[:2] for line in listed.stdout.splitlines()]
    assert rows == [["alice", "trading"], ["bob", "read"]]


def test_the_password_is_stored_as_a_hash(config: Path) -> None:
    assert arbotd(config, "user", "add", "alice", stdin="correct horse battery\n").returncode == 0

    async def stored() -> dict:
        pm = make_plugin_manager()
        cfg = load_with_plugins(config, pm)
        storage = pm.hook.provide_storage(config=cfg, runtime=Runtime(cfg, pm))
        await storage.open()
        try:
            return await storage.get_user("alice")
        finally:
            await storage.close()

    user = trio.run(stored)
    assert "correct horse" not in user["password_hash"]
    assert verify_password("correct horse battery", user["password_hash"])


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("user", "add", "carol"), "short\n", "at least 8 characters"),
        (("user", "add", "carol", "--scope", "admin"), "long-enough\n", "invalid choice"),
    ],
)
def test_bad_input_is_refused(config: Path, args: tuple, stdin: str, message: str) -> None:
    result = arbotd(config, *args, stdin=stdin)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_name_taken_is_refused(config: Path) -> None:
    assert arbotd(config, "user", "add", "alice", stdin="first-pass\n").returncode == 0
    again = arbotd(config, "user", "add", "alice", stdin="second-pass\n")
    assert again.returncode == 1
    assert "alice" in again.stderr


def test_without_a_storage_plugin_it_says_so(tmp_path: Path) -> None:
    path = tmp_path / "arbot.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state", disable='["sql"]'))
    result = arbotd(path, "user", "list")
    assert result.returncode == 1
    assert "no enabled storage plugin keeps API users" in result.stderr


def test_a_change_to_an_unknown_user_is_refused(config: Path) -> None:
    result = arbotd(config, "user", "remove", "nobody")
    assert result.returncode == 1
    assert "arbotd user remove: no user 'nobody'" in result.stderr
