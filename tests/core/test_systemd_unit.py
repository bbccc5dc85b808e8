"""``contrib/arbotd.service``: the directives the daemon relies on, and
``systemd-analyze verify`` when the tool is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "arbotd.service"

# What `systemd-analyze verify` may print without it being a problem of the unit. Each
# entry says why.
TOLERATED = (
    # Without --recursive-errors=no (systemd < 250) verify also loads the host's
    # sysinit.target, basic.target ...; a container may not ship them. That is the
    # machine's unit set, not ours.
    re.compile(r"Failed to create arbotd\.service/start: Unit \S+ not found\."),
)


def service_section() -> dict[str, list[str]]:
    """Every ``[Service]`` directive of the unit, with all its values in order."""
    directives: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def test_the_unit_has_what_the_daemon_relies_on():
    service = service_section()

    expected = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "Restart": ["on-failure"],
        "EnvironmentFile": ["-/etc/arbotd/arbotd.env"],
        "StateDirectory": ["arbotd"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        # The API saves config changes by a rename inside /etc/arbotd.
        "ReadWritePaths": ["/etc/arbotd"],
    }
    assert {key: service.get(key) for key in expected} == expected
    assert service["ExecStart"] == [
        "/opt/arbotd/venv/bin/arbotd run --config /etc/arbotd/arbot.toml"
    ]
    assert int(service["WatchdogSec"][0]) > 0


def test_systemd_waits_longer_than_the_daemon_shutdown_timeout():
    from arbotd import DaemonConfig

    stop_timeout = int(service_section()["TimeoutStopSec"][0])

    assert stop_timeout > DaemonConfig().shutdown_timeout_seconds


def test_memory_deny_write_execute_stays_off():
    # ctypes and cffi callbacks need writable+executable memory from libffi; the unit
    # explains why it leaves this out.
    assert "MemoryDenyWriteExecute" not in service_section()


# --- systemd-analyze verify ---------------------------------------------------------------

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)",
)


def verify(unit: Path) -> list[str]:
    """Run ``systemd-analyze verify`` on ``unit`` and return its complaints, one a line.

    It needs no running systemd. ``--man=no`` skips looking up man pages named in
    ``Documentation=``; ``--recursive-errors=no`` (systemd 250+) judges this unit only, not
    the units it is ordered after.
    """
    help_text = subprocess.run(
        ["systemd-analyze", "--help"], capture_output=True, text=True, check=False
    ).stdout
    command = ["systemd-analyze", "verify", "--man=no"]
    if "--recursive-errors" in help_text:
        command.append("--recursive-errors=no")
    result = subprocess.run(
        [*command, str(unit)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_LOG_COLOR": "0"},
        timeout=60,
    )
    lines = (result.stdout + result.stderr).splitlines()
    complaints = [
        line for line in lines if line.strip() and not any(p.search(line) for p in TOLERATED)
    ]
    if result.returncode != 0 and not complaints:
        complaints.append(f"exit status {result.returncode} without a message")
    return complaints


def runnable_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ``ExecStart=`` pointing at this interpreter, the only thing verify
    checks that cannot exist on a test machine (/opt/arbotd/venv). The user, the config
    file and /etc/arbotd are only needed at run time, and verify does not look for them."""
    text = UNIT.read_text(encoding="utf-8") if text is None else text
    exec_start = f"ExecStart={sys.executable} -m arbotd run --config /etc/arbotd/arbot.toml"
    text, count = re.subn(r"(?m)^ExecStart=.*$", lambda _: exec_start, text)
    assert count == 1
    copy = tmp_path / "arbotd.service"
    copy.write_text(text, encoding="utf-8")
    return copy


@needs_systemd_analyze
def test_systemd_analyze_verify_finds_nothing_to_complain_about(tmp_path):
    assert verify(runnable_copy(tmp_path)) == []


@needs_systemd_analyze
def test_systemd_analyze_verify_does_report_problems_here(tmp_path):
    # So that an empty answer above means "nothing wrong", not "verify cannot work here".
    text = UNIT.read_text(encoding="utf-8").replace(
        "ProtectSystem=strict", "ProtectSystem=strictly"
    )

    complaints = verify(runnable_copy(tmp_path, text))

    assert any("strictly" in line for line in complaints), complaints
