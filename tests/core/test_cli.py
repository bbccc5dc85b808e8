"""The ``arbotd`` command line, in this process and as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import arbotd
from arbotd._cli import main

pytestmark = pytest.mark.usefixtures("isolated_logging")

VALID = """
[daemon]
shutdown_timeout_seconds = 5

[plugins]
"""

BROKEN = """
[daemon]
mode = "paper"
shutdown_timeout_seconds = "soon"

[deamon]
"""


def broken_problems(path: Path) -> list[str]:
    return [
        f"{path}: deamon: unknown section (did you mean 'daemon'?)",
        f'{path}: daemon.mode: expected one of "simulation", "live", "backtest", got "paper"',
        f'{path}: daemon.shutdown_timeout_seconds: expected a number in (0, 600], got "soon"',
    ]


# --- in this process -------------------------------------------------------------------------


def test_check_a_valid_file(write_config, capsys):
    path = write_config(VALID)

    assert main(["check", "-c", str(path)]) == 0

    assert capsys.readouterr().out == f"{path}: configuration OK\n"


def test_check_lists_every_problem(write_config, capsys):
    path = write_config(BROKEN)

    assert main(["check", "--config", str(path)]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        *broken_problems(path),
        f"{path}: configuration invalid (3 problems)",
    ]


def test_check_a_missing_file(tmp_path, capsys):
    path = tmp_path / "missing.toml"

    assert main(["check", "-c", str(path)]) == 1

    assert capsys.readouterr().err.splitlines() == [
        f"{path}: file not found",
        f"{path}: configuration invalid (1 problem)",
    ]


def test_check_finds_the_file_through_the_environment(write_config, monkeypatch, capsys):
    path = write_config(VALID)
    monkeypatch.setenv("ARBOTD_CONFIG", str(path))

    assert main(["check"]) == 0

    assert capsys.readouterr().out == f"{path}: configuration OK\n"


def test_check_finds_etc_arbot_toml_in_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        "arbotd._config.DEFAULT_CONFIG_PATHS",
        (tmp_path / "no-system-file.toml", Path("etc/arbot.toml")),
    )
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "arbot.toml").write_text(VALID)
    monkeypatch.chdir(tmp_path)

    assert main(["check"]) == 0

    assert capsys.readouterr().out == "etc/arbot.toml: configuration OK\n"


def test_options_may_come_before_the_command(write_config, capsys):
    path = write_config(VALID)

    assert main(["-c", str(path), "--log-level", "debug", "check"]) == 0

    assert capsys.readouterr().out == f"{path}: configuration OK\n"


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == f"arbotd {arbotd.__version__}\n"


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])

    assert exited.value.code == 2
    assert "usage: arbotd" in capsys.readouterr().err


def test_plugins_lists_an_installed_plugin(installed_everything, write_config, capsys):
    path = write_config(VALID)

    assert main(["plugins", "-c", str(path)]) == 0

    out = capsys.readouterr().out
    assert (
        "everything 1.2.3 (enabled)\n"
        "    from:  arbotd_test_everything (entry point of arbotd-test-everything 1.2.3)\n"
        "    hooks: configure, on_reload, provide_storage, register_accounts, "
        "register_config_sections, register_exchanges, register_executors, "
        "register_risk_checks, register_services, register_strategies, shutdown\n"
    ) in out


def test_plugins_shows_a_disabled_plugin(installed_everything, write_config, capsys):
    path = write_config('[plugins]\ndisable = ["everything"]\n')

    assert main(["plugins", "-c", str(path)]) == 0

    out = capsys.readouterr().out
    assert (
        "everything 1.2.3 (disabled)\n"
        "    from:  arbotd_test_everything (entry point of arbotd-test-everything 1.2.3)\n"
    ) in out
    assert "everything 1.2.3 (enabled)" not in out


def test_check_validates_installed_plugin_sections(installed_everything, write_config, capsys):
    path = write_config("[everything]\nlevel = 11\n")

    assert main(["check", "-c", str(path)]) == 1

    assert capsys.readouterr().err.splitlines() == [
        f"{path}: everything.level: expected a number in [0, 10], got 11",
        f"{path}: configuration invalid (1 problem)",
    ]


def test_check_accepts_the_section_of_a_disabled_plugin(
    installed_everything, write_config, capsys
):
    path = write_config('[plugins]\ndisable = ["everything"]\n\n[everything]\nlevel = 11\n')

    assert main(["check", "-c", str(path)]) == 0

    assert capsys.readouterr().out == f"{path}: configuration OK\n"


def test_check_an_empty_file(write_config, capsys):
    for text, what in (("", "is empty"), ("# all comments\n\n# and blanks\n", "has only comments")):
        path = write_config(text)

        assert main(["check", "-c", str(path)]) == 1

        assert capsys.readouterr().err.splitlines() == [
            f"{path}: the file {what}: not a single setting (was it cut short?)",
            f"{path}: configuration invalid (1 problem)",
        ]


def test_check_notes_the_tables_left_to_their_defaults(write_config, capsys):
    path = write_config(VALID)

    assert main(["check", "-c", str(path)]) == 0

    out, err = capsys.readouterr()
    assert out == f"{path}: configuration OK\n"
    assert err.startswith(f"{path}: note: not in the file, so their defaults apply: ")
    assert "[api]" in err and "[daemon]" not in err and "[plugins]" not in err


def test_check_names_the_missing_keys_of_enabled_exchanges(write_config, tmp_path, monkeypatch,
                                                          capsys):
    for name in ("OKX_API_KEY", "OKX_API_SECRET", "OKX_API_PASSPHRASE", "BYBIT_API_KEY",
                 "BYBIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OKX_API_KEY", "key")
    path = write_config(VALID.replace("[plugins]", "[exchanges.okx]\nenabled = true\n\n"
                                      "[exchanges.bybit]\nenabled = true\n\n[plugins]"))

    assert main(["check", "-c", str(path)]) == 0

    notes = [line for line in capsys.readouterr().err.splitlines() if ": exchanges." in line]
    assert notes == [
        f"{path}: note: exchanges.bybit: BYBIT_API_KEY, BYBIT_API_SECRET not set in this "
        "environment: live trading on bybit is refused until they are set",
        f"{path}: note: exchanges.okx: OKX_API_SECRET, OKX_API_PASSPHRASE not set in this "
        "environment: live trading on okx is refused until they are set",
    ]

    # The daemon's secrets file counts as the environment does.
    secrets = tmp_path / "arbotd.env"
    secrets.write_text("OKX_API_SECRET=s\nOKX_API_PASSPHRASE=p\n")
    secrets.chmod(0o600)
    path.write_text(path.read_text().replace(
        "[daemon]\n", f'[daemon]\nsecrets_file = "{secrets}"\n'))

    assert main(["check", "-c", str(path)]) == 0

    notes = [line for line in capsys.readouterr().err.splitlines() if ": exchanges." in line]
    assert notes == [
        f"{path}: note: exchanges.bybit: BYBIT_API_KEY, BYBIT_API_SECRET not set in this "
        f"environment or {secrets}: live trading on bybit is refused until they are set"]
def test_check_names_the_keys_live_mode_lacks(write_config, capsys, monkeypatch):
    for name in ("UPBIT_ACCESS_KEY", "UPBIT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UPBIT_ACCESS_KEY", "an-access-key-set")
    path = write_config(VALID.replace("shutdown_timeout_seconds = 5",
                                      'shutdown_timeout_seconds = 5\nmode = "live"')
                        + "\n[exchanges.upbit]\nenabled = true\n")

    assert main(["check", "-c", str(path)]) == 0

    out, err = capsys.readouterr()
    assert out == f"{path}: configuration OK\n"
    assert (f"{path}: note: exchanges.upbit: UPBIT_SECRET_KEY not set in this environment: "
            "live trading on upbit is refused until it is set") in err
    assert "an-access-key-set" not in err and "UPBIT_ACCESS_KEY" not in err
    assert "exchanges.binance:" not in err  # not enabled: not asked


# --- as a real subprocess --------------------------------------------------------------------

CONSOLE_SCRIPT = Path(sys.executable).with_name("arbotd")


def _commands() -> list[pytest.param]:
    return [
        pytest.param([sys.executable, "-m", "arbotd"], id="python-m-arbotd"),
        pytest.param(
            [str(CONSOLE_SCRIPT)],
            id="console-script",
            marks=pytest.mark.skipif(
                not CONSOLE_SCRIPT.exists(), reason=f"no console script at {CONSOLE_SCRIPT}"
            ),
        ),
    ]


def run(command: list[str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("command", _commands())
def test_subprocess_check_a_valid_file(command, write_config):
    path = write_config(VALID)

    result = run(command, "check", "-c", str(path))

    assert (result.returncode, result.stdout) == (0, f"{path}: configuration OK\n"), result.stderr


@pytest.mark.parametrize("command", _commands())
def test_subprocess_check_a_broken_file(command, write_config):
    path = write_config(BROKEN)

    result = run(command, "check", "-c", str(path))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        *broken_problems(path),
        f"{path}: configuration invalid (3 problems)",
    ]


@pytest.mark.parametrize("command", _commands())
def test_subprocess_check_an_empty_file(command, write_config):
    path = write_config("")

    result = run(command, "check", "-c", str(path))

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"{path}: the file is empty: not a single setting (was it cut short?)",
        f"{path}: configuration invalid (1 problem)",
    ]


@pytest.mark.parametrize("command", _commands())
def test_subprocess_version(command):
    result = run(command, "--version")

    assert (result.returncode, result.stdout) == (0, f"arbotd {arbotd.__version__}\n")


def test_subprocess_plugins_lists_installed_plugins(installed_everything, write_config):
    path = write_config(VALID)

    result = run(
        [sys.executable, "-m", "arbotd"],
        "plugins",
        "-c",
        str(path),
        PYTHONPATH=str(installed_everything),
    )

    assert result.returncode == 0, result.stderr
    assert "everything 1.2.3 (enabled)\n" in result.stdout


def test_a_reader_that_goes_away_ends_the_command_quietly(write_config):
    import subprocess
    import sys

    path = write_config("")
    process = subprocess.Popen([sys.executable, "-m", "arbotd", "plugins", "-c", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # like `arbotd plugins | head -0`
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141
    assert b"Traceback" not in err and b"BrokenPipeError" not in err
