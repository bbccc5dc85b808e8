"""``[daemon] secrets_file``: its format, its precedence over the environment, and what
happens when it cannot be read, at start and in ``arbotd check``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from arbotd import ConfigError, secret_from_env
from arbotd._cli import main
from arbotd._daemon import Daemon
from arbotd._secrets import clear_secrets, install_secrets, parse_secrets, read_secrets


@pytest.fixture(autouse=True)
def _no_file_secrets() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


def test_the_systemd_environment_file_format():
    text = (
        "# a comment\n"
        "; another\n"
        "\n"
        "ARBOT_API_KEY=k1,k2:read\n"
        "  SPACED = padded value  \n"
        "DOUBLE=\"a \\\"quoted\\\" # value\"\n"
        "SINGLE='single \\ $quoted'\n"
        "EMPTY=\n"
        "WITH_EQUALS=a=b=c\n"
    )
    assert parse_secrets(text, "f") == {
        "ARBOT_API_KEY": "k1,k2:read",
        "SPACED": "padded value",
        "DOUBLE": 'a "quoted" # value',
        "SINGLE": "single \\ $quoted",
        "EMPTY": "",
        "WITH_EQUALS": "a=b=c",
    }


def test_malformed_lines_are_named_by_number_never_shown():
    text = "GOOD=1\nno-equals-sign s3cr3t\n1BAD=s3cr3t\nOPEN=\"s3cr3t\n"
    with pytest.raises(ConfigError) as error:
        parse_secrets(text, "/etc/arbotd/arbotd.env")
    messages = [str(problem) for problem in error.value.problems]
    assert [m.split(": ")[1] for m in messages] == ["line 2", "line 3", "line 4"]
    assert all(m.startswith("/etc/arbotd/arbotd.env: ") for m in messages)
    assert "s3cr3t" not in str(error.value)


def test_the_file_wins_over_the_environment_and_a_removed_name_is_unset(monkeypatch):
    monkeypatch.setenv("ARBOTD_TEST_KEY", "from-the-environment")
    monkeypatch.setenv("ARBOTD_TEST_OTHER", "other-from-the-environment")
    assert secret_from_env("ARBOTD_TEST_KEY") == "from-the-environment"

    install_secrets({"ARBOTD_TEST_KEY": "from-the-file"})
    assert secret_from_env("ARBOTD_TEST_KEY") == "from-the-file"
    assert secret_from_env("ARBOTD_TEST_OTHER") == "other-from-the-environment"

    # A reload whose file lacks the name: deleting a leaked key's line revokes it, the
    # value the process started with does not come back.
    install_secrets({})
    assert secret_from_env("ARBOTD_TEST_KEY") is None

    clear_secrets()  # a new daemon
    assert secret_from_env("ARBOTD_TEST_KEY") == "from-the-environment"


def test_a_file_that_cannot_be_read(tmp_path):
    with pytest.raises(ConfigError, match="secrets file not found"):
        read_secrets(str(tmp_path / "missing.env"))
    with pytest.raises(ConfigError, match="cannot read the secrets file: Is a directory"):
        read_secrets(str(tmp_path))
    binary = tmp_path / "binary.env"
    binary.write_bytes(b"KEY=\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_secrets(str(binary))
    assert read_secrets("") == {}


def test_a_relative_path_is_refused(write_config):
    path = write_config('[daemon]\nsecrets_file = "arbotd.env"\n')
    with pytest.raises(ConfigError, match=r"daemon\.secrets_file: expected an absolute path"):
        Daemon(path, entry_points=False).prepare()


def test_the_daemon_does_not_start_on_a_malformed_file(write_config, tmp_path):
    secrets = tmp_path / "arbotd.env"
    secrets.write_text("ARBOT_API_KEY=k\nnot an assignment\n")
    path = write_config(f'[daemon]\nsecrets_file = "{secrets}"\n')
    with pytest.raises(ConfigError, match="line 2: expected NAME=value"):
        Daemon(path, entry_points=False).prepare()


def test_the_daemon_reads_the_file_at_start(write_config, tmp_path, monkeypatch):
    monkeypatch.delenv("ARBOTD_TEST_KEY", raising=False)
    secrets = tmp_path / "arbotd.env"
    secrets.write_text("ARBOTD_TEST_KEY=from-the-file\n")
    path = write_config(f'[daemon]\nsecrets_file = "{secrets}"\n')
    Daemon(path, entry_points=False).prepare()
    assert secret_from_env("ARBOTD_TEST_KEY") == "from-the-file"


@pytest.mark.usefixtures("isolated_logging")
def test_check_reports_a_malformed_secrets_file(write_config, tmp_path, capsys):
    secrets = tmp_path / "arbotd.env"
    secrets.write_text("ARBOT_JWT_SECRET s3cr3t\n")
    path = write_config(f'[daemon]\nsecrets_file = "{secrets}"\n')

    assert main(["check", "-c", str(path)]) == 1

    err = capsys.readouterr().err
    assert f"{secrets}: line 1: expected NAME=value" in err
    assert "s3cr3t" not in err


def test_world_readable_files_are_warned_about(tmp_path, caplog):
    secrets = tmp_path / "arbotd.env"
    secrets.write_text("KEY=value\n")
    secrets.chmod(0o644)
    read_secrets(str(secrets))
    assert "open to every user of this machine" in caplog.text
    caplog.clear()
    secrets.chmod(0o640)
    read_secrets(str(secrets))
    assert caplog.text == ""


def test_paths_are_absolute(tmp_path: Path):
    from arbotd._secrets import check_secrets_path

    assert check_secrets_path("") is None
    assert check_secrets_path(str(tmp_path / "x.env")) is None
    assert check_secrets_path("~/x.env") is None
    assert check_secrets_path("x.env") is not None
