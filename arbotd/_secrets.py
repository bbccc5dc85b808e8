"""Secrets: the process environment, and a secrets file the daemon reads again at every
reload.

Configuration sections name the environment variable that holds each secret
(``api_keys_env = "ARBOT_API_KEY"``); :func:`secret_from_env` answers its value. Under
systemd the environment of a running process cannot change, so an API key or a JWT secret
read from it could only be replaced by a restart. ``[daemon] secrets_file`` names a file
of ``NAME=value`` lines (systemd's ``EnvironmentFile`` format, ``contrib/arbotd.env.example``)
that the daemon reads at start and at every reload:

- a name in the file wins over the same name in the environment (the file is often the
  service's ``EnvironmentFile`` as well, whose values the environment keeps from the start);
- a name that was in the file and is gone from it counts as unset until the next restart,
  not as the value the process started with: deleting a leaked key's line revokes it;
- a file that cannot be read or has a malformed line is a :class:`arbotd.ConfigError`
  naming the file and the line number, never a value: at start the daemon does not start,
  on reload the old secrets (and the old configuration) stay in force.

The file's values are process-wide, like the environment they stand in for.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from arbotd._errors import ConfigError, ConfigProblem

__all__ = [
    "check_secrets_path",
    "clear_secrets",
    "install_secrets",
    "parse_secrets",
    "read_secrets",
    "secret_from_env",
]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# The values of the secrets file in force; "" for names the file held once and no longer
# does (they count as unset).
_from_file: dict[str, str] = {}


def secret_from_env(variable: str | None) -> str | None:
    """The secret a config key names (``api_key_env = "BINANCE_API_KEY"``): from the
    secrets file when it holds the name, else from the environment; ``None`` when unset or
    empty. Secrets are never stored in the TOML file and never logged."""
    if not variable:
        return None
    value = _from_file.get(variable)
    if value is None:
        value = os.environ.get(variable, "")
    return value or None


def check_secrets_path(path: str) -> str | None:
    """For ``[daemon] secrets_file``: ``""`` or an absolute path (the daemon's working
    directory under systemd is ``/``, so a relative one would name another file than the
    one ``arbotd check`` read from a shell)."""
    if path and not os.path.isabs(os.path.expanduser(path)):
        return f"expected an absolute path, got {path!r}"
    return None


def _unquote(value: str, number: int, file: str) -> str:
    """``value`` without the quotes around it; in double quotes a backslash keeps the
    character after it (``\\"``, ``\\\\``), as systemd reads them."""
    if not value or value[0] not in "\"'":
        return value
    quote = value[0]
    if len(value) < 2 or value[-1] != quote:
        raise ConfigError([ConfigProblem(file, "", f"line {number}: a quote is not closed")])
    inner = value[1:-1]
    if quote == "'":
        return inner
    out: list[str] = []
    escaped = False
    for char in inner:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


def parse_secrets(text: str, file: str) -> dict[str, str]:
    """``NAME=value`` lines to a dict. Blank lines and lines starting with ``#`` or ``;``
    are skipped; spaces around the name and the value are not part of them. Raises
    :class:`ConfigError` listing each malformed line by its number (the line itself may
    hold a secret, so it is never shown)."""
    values: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, separator, value = line.partition("=")
        name = name.strip()
        if not separator or not _NAME.fullmatch(name):
            problems.append(ConfigProblem(
                file, "", f"line {number}: expected NAME=value, NAME being letters, digits "
                "and _ (not starting with a digit)"))
            continue
        try:
            values[name] = _unquote(value.strip(), number, file)
        except ConfigError as err:
            problems.extend(err.problems)
    if problems:
        raise ConfigError(problems)
    return values


def read_secrets(path: str) -> dict[str, str]:
    """The secrets of the file ``[daemon] secrets_file`` names, ``{}`` when it names none.
    Raises :class:`ConfigError` naming the file when it cannot be read or is malformed."""
    if not path:
        return {}
    file = Path(path).expanduser()
    name = str(file)
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, "", "secrets file not found")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(name, "", "cannot read the secrets file: it is "
                                         "not UTF-8 text")]) from None
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError([ConfigProblem(name, "", f"cannot read the secrets file: {reason}")]
                          ) from None
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        log.warning("the secrets file %s is open to every user of this machine: "
                    "chmod o-rwx %s", name, name)
    return parse_secrets(text, name)


def install_secrets(values: Mapping[str, str]) -> None:
    """Make ``values`` (from :func:`read_secrets`) the secrets file's values in force;
    names the previous values held and these lack count as unset from now on."""
    global _from_file
    _from_file = dict.fromkeys(_from_file, "") | dict(values)


def clear_secrets() -> None:
    """Forget every value of a secrets file: the environment alone counts again (a new
    daemon in the same process starts from here)."""
    global _from_file
    _from_file = {}
