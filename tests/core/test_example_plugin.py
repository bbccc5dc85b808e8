"""``contrib/example-plugin``: a third-party plugin, installed as a real distribution, is
found through its entry point, validates its own section, can be disabled, and its risk
check works and follows reloads."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from support import simulate

import arbotd
from arbotd._model import Signal
from arbotd._plugins import make_plugin_manager
from arbotd._runtime import load_with_plugins, peek_disabled

pytestmark = pytest.mark.usefixtures("isolated_logging")

SOURCE = Path(__file__).resolve().parents[2] / "contrib" / "example-plugin"
METADATA = tomllib.loads((SOURCE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = METADATA["version"]
MODULE = "arbotd_symbol_blocklist"


def why_wheels_cannot_be_built() -> str | None:
    """pip builds the plugin's wheel with the setuptools of this environment (no build
    isolation: the tests never reach the internet). Before 70.1, setuptools needs the
    ``wheel`` package for that."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return "setuptools is not installed: add 'setuptools>=70.1' to the test extras"
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return (
            f"setuptools {version} cannot build wheels without the 'wheel' package: "
            "add 'setuptools>=70.1' to the test extras"
        )
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin installed by pip, as a user would (a wheel is built and
    installed), into its own directory: put it on ``PYTHONPATH`` or ``sys.path`` and the
    distribution, its metadata and its entry point are found. Installed once per module."""
    reason = why_wheels_cannot_be_built()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("example-plugin")
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
    source = root / "src"
    shutil.copytree(
        SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    target = root / "site"
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "install",
            "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
            "--disable-pip-version-check", "--quiet",
            "--target", str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    return target


def arbotd_cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m arbotd ARGS`` with the installed plugin on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "arbotd", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def plugin_listing(output: str) -> dict[str, list[str]]:
    """``arbotd plugins`` output as {first line of a plugin: its indented lines}."""
    plugins: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith(" "):
            current.append(line.strip())
        elif line:
            current = plugins.setdefault(line, [])
    return plugins


# setuptools may write the distribution's name normalised (arbotd_symbol_blocklist).
SOURCE_LINE = re.compile(
    rf"from:  {MODULE} \(entry point of arbotd[-_]symbol[-_]blocklist {re.escape(VERSION)}\)"
)


# --- the command line, as a real subprocess ---------------------------------------------


def test_plugins_lists_it_with_version_hooks_and_distribution(site, write_config):
    path = write_config('[symbol_blocklist]\nsymbols = ["LUNAUSDT"]\n')

    result = arbotd_cli(site, "plugins", "-c", str(path))

    assert result.returncode == 0, result.stderr
    source, hooks = plugin_listing(result.stdout)[f"symbol_blocklist {VERSION} (enabled)"]
    assert SOURCE_LINE.fullmatch(source), source
    assert hooks == "hooks: on_reload, register_config_sections, register_risk_checks"


def test_check_accepts_its_section(site, write_config):
    path = write_config('[symbol_blocklist]\nsymbols = ["LUNAUSDT", "FTTUSDT"]\n')

    result = arbotd_cli(site, "check", "-c", str(path))

    assert (result.returncode, result.stdout) == (0, f"{path}: configuration OK\n")


def test_check_reports_a_wrong_value_in_its_section(site, write_config):
    path = write_config("[symbol_blocklist]\nsymbols = 5\n")

    result = arbotd_cli(site, "check", "-c", str(path))

    assert result.returncode == 1
    assert f"{path}: symbol_blocklist.symbols: expected a list of strings, got 5" in (
        result.stderr.splitlines()
    )


DISABLED = """
[plugins]
disable = ["symbol_blocklist"]

[symbol_blocklist]
symbols = ["LUNAUSDT"]
"""


def test_disabled_it_is_listed_as_such_and_its_section_is_no_error(site, write_config):
    path = write_config(DISABLED)

    listed = arbotd_cli(site, "plugins", "-c", str(path))
    checked = arbotd_cli(site, "check", "-c", str(path))

    assert listed.returncode == 0, listed.stderr
    listing = plugin_listing(listed.stdout)
    assert f"symbol_blocklist {VERSION} (enabled)" not in listing
    [source] = listing[f"symbol_blocklist {VERSION} (disabled)"]
    assert SOURCE_LINE.fullmatch(source), source
    assert (checked.returncode, checked.stdout) == (0, f"{path}: configuration OK\n")


# --- in this process ----------------------------------------------------------------------


@pytest.fixture
def plugin_on_path(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed plugin importable in this process, and found by entry-point lookup."""
    monkeypatch.syspath_prepend(str(site))
    sys.modules.pop(MODULE, None)
    yield site
    sys.modules.pop(MODULE, None)


def signal_for(symbol: str) -> Signal:
    return Signal(
        id=1,
        symbol=symbol,
        buy_exchange="binance",
        sell_exchange="bybit",
        buy_price=100.0,
        sell_price=101.0,
        buy_size=1.0,
        sell_size=1.0,
        quantity=1.0,
        profit=0.8,
        profit_percent=0.8,
        spread_percent=1.0,
        fees=0.2,
        confidence=1.0,
        timestamp=0.0,
    )


def test_its_risk_check_rejects_blocked_symbols_only(plugin_on_path, write_config):
    path = write_config('[symbol_blocklist]\nsymbols = ["LUNAUSDT", "fttusdt"]\n')
    pm = make_plugin_manager()  # every installed plugin, through the entry points
    plugin = pm.get_plugin("symbol_blocklist")
    assert Path(plugin.__file__).is_relative_to(plugin_on_path)
    config = load_with_plugins(path, pm)

    [check] = [
        check
        for impl in pm.hook.register_risk_checks.get_hookimpls()
        if impl.plugin_name == "symbol_blocklist"
        for check in impl.function(config=config, runtime=None)
    ]

    assert isinstance(check, arbotd.RiskCheck)
    assert check.name == "symbol_blocklist"
    assert check.check(signal_for("LUNAUSDT")) == "symbol_blocked"
    assert check.check(signal_for("FTTUSDT")) == "symbol_blocked"  # case does not matter
    assert check.check(signal_for("BTCUSDT")) is None
    assert check.limits() == []


def test_disabled_it_contributes_no_risk_check(plugin_on_path, write_config):
    path = write_config(DISABLED)

    # As the daemon builds its plugin manager.
    pm = make_plugin_manager(disabled=peek_disabled(path))
    config = load_with_plugins(path, pm)

    assert pm.get_plugin("symbol_blocklist") is None
    assert "symbol_blocklist" in pm.disabled
    owners = {impl.plugin_name for impl in pm.hook.register_risk_checks.get_hookimpls()}
    assert "symbol_blocklist" not in owners
    assert "symbol_blocklist" not in config.sections


def blocklist_of(daemon: arbotd.Runtime) -> arbotd.RiskCheck:
    assert daemon.control is not None
    [check] = [c for c in daemon.control.risk_checks if c.name == "symbol_blocklist"]
    return check


def load_plugin() -> ModuleType:
    [entry_point] = importlib.metadata.entry_points(group="arbotd", name="symbol_blocklist")
    return entry_point.load()


async def test_an_edited_blocklist_applies_on_reload(plugin_on_path, write_config, start_daemon):
    path = write_config(
        """
        [daemon]
        autostart = false

        [symbol_blocklist]
        symbols = ["LUNAUSDT"]
        """
    )

    async with start_daemon(path, ("symbol_blocklist", load_plugin())) as daemon:
        runtime = daemon.runtime
        check = blocklist_of(runtime)
        assert check.check(signal_for("LUNAUSDT")) == "symbol_blocked"

        path.write_text(path.read_text().replace('"LUNAUSDT"', '"ETHUSDT"'))
        outcome = await runtime.reload()

        assert outcome.changed == {"symbol_blocklist"}
        assert blocklist_of(runtime) is check  # the same check, updated in place
        assert check.check(signal_for("LUNAUSDT")) is None
        assert check.check(signal_for("ETHUSDT")) == "symbol_blocked"


async def test_a_blocklist_changed_through_the_api_applies_at_once(
    plugin_on_path, write_config, start_daemon
):
    path = write_config("[daemon]\nautostart = false\n")

    async with start_daemon(path, ("symbol_blocklist", load_plugin())) as daemon:
        runtime = daemon.runtime
        check = blocklist_of(runtime)
        assert check.check(signal_for("ETHUSDT")) is None

        # What PUT /api/v1/trading/config does.
        changed, outcome = await runtime.update_config({"symbol_blocklist.symbols": ["ETHUSDT"]})

        assert (changed, outcome.changed) == (["symbol_blocklist.symbols"], {"symbol_blocklist"})
        assert check.check(signal_for("ETHUSDT")) == "symbol_blocked"
        assert 'symbols = ["ETHUSDT"]' in path.read_text()


# --- a trading daemon uses it ------------------------------------------------------------

TRADING = """
[arbitrage]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
cooldown_seconds = 5.0

[symbol_blocklist]
symbols = ["BTCUSDT", "BNBUSDT"]

[api]
port = 0

[plugins]
disable = {disable}
"""


async def test_a_trading_daemon_never_trades_a_blocked_symbol(
    plugin_on_path, tmp_path, autojump_clock
):
    path = tmp_path / "arbot.toml"
    path.write_text(TRADING.format(disable="[]"))
    runtime, _ = await simulate(path, 240.0)
    traded = {t.symbol for t in runtime.control.recent_trades.values()}
    blocked = [s for s in runtime.engine.last_signals if s.symbol in {"BTCUSDT", "BNBUSDT"}]
    assert traded and not traded & {"BTCUSDT", "BNBUSDT"}
    assert blocked and {s.reject_reason for s in blocked} == {"symbol_blocked"}
    assert runtime.engine.rejection_counts()["symbol_blocked"] == len(blocked)

    # Disabled, the same run trades the symbols it would have blocked.
    path.write_text(TRADING.format(disable='["symbol_blocklist"]'))
    runtime, _ = await simulate(path, 240.0)
    traded = {t.symbol for t in runtime.control.recent_trades.values()}
    assert traded & {"BTCUSDT", "BNBUSDT"}
    assert "symbol_blocked" not in runtime.engine.rejection_counts()
