"""Loading and validating the TOML configuration: every problem names the file, the key
path, what was expected and what was found, and all problems are reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import pytest

import arbotd
from arbotd import ConfigError, DaemonConfig, PluginsConfig, secret_from_env, setting
from arbotd._config import (
    changed_sections,
    load_config,
    read_document,
    resolve_config_path,
    structure_document,
)

# --- a small plugin-style schema ---------------------------------------------------------


@attrs.frozen
class ArbitrageConfig:
    min_profit_threshold: float = setting(0.002, ge=0, le=1)
    max_open_trades: int = setting(3, ge=1)
    enabled: bool = setting(True)
    symbols: list[str] = setting(factory=lambda: ["BTCUSDT"])
    order_type: Literal["market", "limit"] = setting("limit")
    fees: dict[str, float] = setting(factory=dict)


@attrs.frozen
class VenueConfig:
    enabled: bool = setting(False)
    api_key_env: str = setting("")


SCHEMA = {
    "daemon": DaemonConfig,
    "plugins": PluginsConfig,
    "arbitrage": ArbitrageConfig,
    "exchanges.binance": VenueConfig,
    "exchanges.okx": VenueConfig,
}


def load(path: Path, schema: dict[str, type] = SCHEMA) -> arbotd.Config:
    return load_config(path, schema)


def problems_of(path: Path, schema: dict[str, type] = SCHEMA) -> list[str]:
    """Every problem ``load_config`` reports for the file, as the operator reads it."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, schema)
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    return [str(problem) for problem in caught.value.problems]


# --- a valid file ------------------------------------------------------------------------


def test_valid_file_is_structured_into_the_section_classes(write_config):
    path = write_config(
        """
        # comments are fine
        [daemon]
        mode = "live"
        shutdown_timeout_seconds = 30

        [arbitrage]
        min_profit_threshold = 0.004
        symbols = ["BTCUSDT", "ETHUSDT"]
        order_type = "market"
        fees = { binance = 0.001, okx = 0.0008 }

        [exchanges.binance]
        enabled = true
        api_key_env = "BINANCE_API_KEY"
        """
    )
    config = load(path)

    assert config.path == path
    assert config.daemon == DaemonConfig(mode="live", shutdown_timeout_seconds=30.0)
    assert config["arbitrage"] == ArbitrageConfig(
        min_profit_threshold=0.004,
        symbols=["BTCUSDT", "ETHUSDT"],
        order_type="market",
        fees={"binance": 0.001, "okx": 0.0008},
    )
    assert config.under("exchanges") == {
        "binance": VenueConfig(enabled=True, api_key_env="BINANCE_API_KEY"),
        "okx": VenueConfig(),
    }


def test_a_missing_table_gets_its_defaults(write_config):
    config = load(write_config("[daemon]\n"))

    assert config["arbitrage"] == ArbitrageConfig()
    assert config["plugins"] == PluginsConfig(disable=[])
    assert config.daemon.mode == "simulation"
    assert config.daemon.shutdown_timeout_seconds == 10.0
    assert config.get("storage") is None


def test_an_integer_is_accepted_for_a_number(write_config):
    config = load(write_config("[arbitrage]\nmin_profit_threshold = 1\n"))

    assert config["arbitrage"].min_profit_threshold == 1.0
    assert isinstance(config["arbitrage"].min_profit_threshold, float)


# --- one problem, exactly as reported -------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        pytest.param(
            '[daemon]\nshutdown_timeout_seconds = "x"',
            'daemon.shutdown_timeout_seconds: expected a number in (0, 600], got "x"',
            id="string-for-number",
        ),
        pytest.param(
            '[arbitrage]\nmin_profit_threshold = "high"',
            'arbitrage.min_profit_threshold: expected a number in [0, 1], got "high"',
            id="string-for-bounded-number",
        ),
        pytest.param(
            "[arbitrage]\nenabled = 1",
            "arbitrage.enabled: expected true or false, got 1",
            id="int-for-bool",
        ),
        pytest.param(
            '[arbitrage]\nenabled = "yes"',
            'arbitrage.enabled: expected true or false, got "yes"',
            id="string-for-bool",
        ),
        pytest.param(
            "[arbitrage]\nmin_profit_threshold = true",
            "arbitrage.min_profit_threshold: expected a number in [0, 1], got true",
            id="bool-for-number",
        ),
        pytest.param(
            "[arbitrage]\nmax_open_trades = 2.5",
            "arbitrage.max_open_trades: expected an integer >= 1, got 2.5",
            id="float-for-integer",
        ),
        pytest.param(
            "[arbitrage]\nmin_profit_threshold = 2",
            "arbitrage.min_profit_threshold: expected a number in [0, 1], got 2",
            id="above-range",
        ),
        pytest.param(
            "[arbitrage]\nmin_profit_threshold = -0.5",
            "arbitrage.min_profit_threshold: expected a number in [0, 1], got -0.5",
            id="below-range",
        ),
        pytest.param(
            "[arbitrage]\nmin_profit_threshold = nan",
            "arbitrage.min_profit_threshold: expected a number in [0, 1], got nan",
            id="nan",
        ),
        pytest.param(
            "[arbitrage]\nmax_open_trades = 0",
            "arbitrage.max_open_trades: expected an integer >= 1, got 0",
            id="integer-below-minimum",
        ),
        pytest.param(
            "[daemon]\nshutdown_timeout_seconds = 0",
            "daemon.shutdown_timeout_seconds: expected a number in (0, 600], got 0",
            id="exclusive-bound",
        ),
        pytest.param(
            '[daemon]\nmode = "paper"',
            'daemon.mode: expected one of "simulation", "live", "backtest", got "paper"',
            id="literal-core",
        ),
        pytest.param(
            '[arbitrage]\norder_type = "stop"',
            'arbitrage.order_type: expected one of "market", "limit", got "stop"',
            id="literal",
        ),
        pytest.param(
            "[arbitrage]\norder_type = true",
            'arbitrage.order_type: expected one of "market", "limit", got true',
            id="literal-bool",
        ),
        pytest.param(
            '[arbitrage]\nsymbols = ["BTCUSDT", 42]',
            "arbitrage.symbols[1]: expected a string, got 42",
            id="list-element",
        ),
        pytest.param(
            '[arbitrage]\nsymbols = "BTCUSDT"',
            'arbitrage.symbols: expected a list of strings, got "BTCUSDT"',
            id="string-for-list",
        ),
        pytest.param(
            '[plugins]\ndisable = "arbot_sim"',
            'plugins.disable: expected a list of strings, got "arbot_sim"',
            id="string-for-core-list",
        ),
        pytest.param(
            '[arbitrage]\nfees = { binance = "0.1%" }',
            'arbitrage.fees.binance: expected a number, got "0.1%"',
            id="table-value",
        ),
        pytest.param(
            "[arbitrage]\nfees = 0.1",
            "arbitrage.fees: expected a table of numbers, got 0.1",
            id="number-for-table",
        ),
        pytest.param(
            "arbitrage = 5",
            "arbitrage: expected a table, got 5",
            id="value-for-section",
        ),
        pytest.param(
            "[arbitrage]\nmin_profit_treshold = 0.01",
            "arbitrage.min_profit_treshold: unknown key (did you mean 'min_profit_threshold'?)",
            id="unknown-key-suggestion",
        ),
        pytest.param(
            '[arbitrage]\ncolour = "red"',
            "arbitrage.colour: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            "[arbitrag]\nenabled = true",
            "arbitrag: unknown section (did you mean 'arbitrage'?)",
            id="unknown-section-suggestion",
        ),
        pytest.param(
            "[exchanges.binanse]\nenabled = true",
            "exchanges.binanse: unknown section (did you mean 'binance'?)",
            id="unknown-nested-section-suggestion",
        ),
        pytest.param(
            "[weather]\nsunny = true",
            "weather: unknown section",
            id="unknown-section",
        ),
        pytest.param(
            "verbose = true",
            "verbose: unknown key",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "[arbitrage]\nmin_profit_threshold = nan",
            "arbitrage.min_profit_threshold: expected a number in [0, 1], got nan",
            id="nan",
        ),
        pytest.param(
            "[arbitrage]\nfees = { binance = inf }",
            "arbitrage.fees.binance: expected a number, got inf",
            id="inf-without-bounds",
        ),
        pytest.param(
            "[daemon]\nshutdown_timeout_seconds = -inf",
            "daemon.shutdown_timeout_seconds: expected a number in (0, 600], got -inf",
            id="minus-inf",
        ),
    ],
)
def test_problem_names_file_key_expected_and_found(write_config, toml, problem):
    path = write_config(toml)

    assert problems_of(path) == [f"{path}: {problem}"]


def test_every_problem_is_reported_at_once(write_config):
    path = write_config(
        """
        [daemon]
        mode = "paper"

        [arbitrage]
        min_profit_threshold = "high"
        max_open_trades = 0
        enabled = 1
        symbols = ["BTCUSDT", 42]
        bogus = 1

        [exchanges.binance]
        enabled = "yes"

        [exchanges.kraken]
        enabled = true
        """
    )

    assert problems_of(path) == [
        f'{path}: exchanges.kraken: unknown section',
        f'{path}: daemon.mode: expected one of "simulation", "live", "backtest", got "paper"',
        f'{path}: arbitrage.min_profit_threshold: expected a number in [0, 1], got "high"',
        f"{path}: arbitrage.enabled: expected true or false, got 1",
        f"{path}: arbitrage.symbols[1]: expected a string, got 42",
        f"{path}: arbitrage.bogus: unknown key",
        f"{path}: arbitrage.max_open_trades: expected an integer >= 1, got 0",
        f'{path}: exchanges.binance.enabled: expected true or false, got "yes"',
    ]


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.toml"

    assert problems_of(path) == [f"{path}: file not found"]


def test_toml_syntax_error_names_line_and_column(write_config):
    path = write_config(
        """
        [daemon]
        mode = "live"
        shutdown_timeout_seconds = = 3
        """
    )

    [problem] = problems_of(path)
    # Columns count from 1, as in editors: the second "=" is the 28th character.
    assert problem.startswith(f"{path}: line 3 column 28: invalid TOML: ")


def test_a_file_that_is_not_utf8_is_reported(tmp_path):
    path = tmp_path / "arbot.toml"
    path.write_bytes(b'[daemon]\nmode = "\xff"\n')

    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: cannot read file: ")


# --- sections inside sections ---------------------------------------------------------------


@attrs.frozen
class LimitConfig:
    max_position: float = setting(1.0, gt=0)


@attrs.frozen
class RiskConfig:
    default: LimitConfig = setting(factory=LimitConfig)
    per_exchange: dict[str, LimitConfig] = setting(factory=dict)


def test_tables_of_tables_are_checked_with_their_full_key_path(write_config):
    path = write_config(
        """
        [risk.default]
        max_position = 0

        [risk.per_exchange.binance]
        max_position = -1

        [risk.per_exchange.okx]
        max_positon = 2
        """
    )

    assert problems_of(path, {"risk": RiskConfig}) == [
        f"{path}: risk.per_exchange.okx.max_positon: unknown key "
        "(did you mean 'max_position'?)",
    ]
    path.write_text(path.read_text().replace("max_positon", "max_position"))
    assert problems_of(path, {"risk": RiskConfig}) == [
        f"{path}: risk.default.max_position: expected a number > 0, got 0",
        f"{path}: risk.per_exchange.binance.max_position: expected a number > 0, got -1",
    ]


# --- checks beyond types and bounds ----------------------------------------------------------


def _no_spaces(value: str) -> str | None:
    return "must not contain spaces" if " " in value else None


@attrs.frozen
class ApiConfig:
    host: str = setting("127.0.0.1", check=_no_spaces)
    port: int = setting(8080, ge=1, le=65535, expected="a TCP port number")
    tls_cert: str = setting("")
    tls_key: str = setting("")

    def validate_config(self) -> list[tuple[str, str]]:
        if bool(self.tls_cert) != bool(self.tls_key):
            return [("tls_key", "tls_cert and tls_key must be set together")]
        return []


def test_check_functions_custom_expectations_and_cross_field_validation(write_config):
    path = write_config(
        """
        [api]
        host = "local host"
        port = 70000
        tls_cert = "/etc/ssl/arbotd.pem"
        """
    )

    assert problems_of(path, {"api": ApiConfig}) == [
        f"{path}: api.host: must not contain spaces",
        f"{path}: api.port: expected a TCP port number, got 70000",
        f"{path}: api.tls_key: tls_cert and tls_key must be set together",
    ]


def test_a_parsed_document_is_structured_without_a_file():
    document = {"arbitrage": {"symbols": ["ETHUSDT"]}, "exchanges": {"okx": {"enabled": 1}}}

    with pytest.raises(ConfigError) as caught:
        structure_document(document, SCHEMA, file="PUT /api/v1/trading/config")

    assert str(caught.value) == (
        "PUT /api/v1/trading/config: exchanges.okx.enabled: expected true or false, got 1"
    )
    document["exchanges"]["okx"]["enabled"] = True
    sections = structure_document(document, SCHEMA, file="PUT /api/v1/trading/config")
    assert sections["arbitrage"].symbols == ["ETHUSDT"]
    assert sections["exchanges.okx"] == VenueConfig(enabled=True)


def test_sections_of_disabled_plugins_are_not_read(write_config):
    path = write_config(
        """
        [daemon]
        mode = "live"

        [exchanges.kraken]
        anything = "goes"
        """
    )

    config = load_config(path, SCHEMA, ignored=["exchanges.kraken"])

    assert config.daemon.mode == "live"
    assert "exchanges.kraken" not in config.sections


# --- where the file is found -----------------------------------------------------------------


@pytest.fixture
def default_paths(tmp_path, monkeypatch):
    """Point the system-wide default at a file in the test's directory, and run from a
    directory of its own, so ``./etc/arbot.toml`` is under the test's control."""
    system = tmp_path / "system" / "arbot.toml"
    monkeypatch.setattr(
        "arbotd._config.DEFAULT_CONFIG_PATHS", (system, Path("etc/arbot.toml"))
    )
    workdir = tmp_path / "work"
    (workdir / "etc").mkdir(parents=True)
    monkeypatch.chdir(workdir)
    return system, workdir / "etc" / "arbot.toml"


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def test_config_path_explicit_wins_even_if_missing(default_paths, monkeypatch, tmp_path):
    system, local = default_paths
    _touch(system), _touch(local)
    monkeypatch.setenv("ARBOTD_CONFIG", str(tmp_path / "from-env.toml"))

    assert resolve_config_path("given.toml") == Path("given.toml")


def test_config_path_environment_comes_next(default_paths, monkeypatch, tmp_path):
    system, local = default_paths
    _touch(system), _touch(local)
    monkeypatch.setenv("ARBOTD_CONFIG", str(tmp_path / "from-env.toml"))

    assert resolve_config_path(None) == tmp_path / "from-env.toml"


def test_config_path_system_file_before_local_file(default_paths):
    system, local = default_paths
    _touch(system), _touch(local)

    assert resolve_config_path(None) == system


def test_config_path_local_file_when_no_system_file(default_paths):
    _, local = default_paths
    _touch(local)

    assert resolve_config_path(None).resolve() == local


def test_config_path_falls_back_to_local_path_when_nothing_exists(default_paths):
    # So that the "file not found" error names the path an operator would create.
    assert resolve_config_path(None) == Path("etc/arbot.toml")


def test_empty_environment_variable_is_ignored(default_paths, monkeypatch):
    system, _ = default_paths
    _touch(system)
    monkeypatch.setenv("ARBOTD_CONFIG", "")

    assert resolve_config_path(None) == system


# --- secrets and state -------------------------------------------------------------------------


def test_secret_from_env(monkeypatch):
    monkeypatch.setenv("ARBOTD_TEST_KEY", "s3cret")
    monkeypatch.setenv("ARBOTD_TEST_EMPTY", "")
    monkeypatch.delenv("ARBOTD_TEST_UNSET", raising=False)

    assert secret_from_env("ARBOTD_TEST_KEY") == "s3cret"
    assert secret_from_env("ARBOTD_TEST_EMPTY") is None
    assert secret_from_env("ARBOTD_TEST_UNSET") is None
    assert secret_from_env("") is None
    assert secret_from_env(None) is None


def test_secrets_are_kept_out_of_repr():
    @attrs.frozen
    class Keys:
        api_key: str = setting("", repr=False)

    assert "hunter2" not in repr(Keys(api_key="hunter2"))


def test_state_dir_from_config_then_systemd_then_var(monkeypatch):
    assert DaemonConfig(state_dir="~/arbot").resolved_state_dir() == Path.home() / "arbot"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert DaemonConfig().resolved_state_dir() == Path("var")
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/arbotd:/var/lib/other")
    assert DaemonConfig().resolved_state_dir() == Path("/var/lib/arbotd")


# --- what a reload changed -----------------------------------------------------------------------


def test_changed_sections_lists_tables_whose_values_differ(write_config):
    old = load(
        write_config(
            """
            [daemon]
            shutdown_timeout_seconds = 10

            [arbitrage]
            symbols = ["BTCUSDT"]
            """,
            name="old.toml",
        )
    )
    new = load(
        write_config(
            """
            # only comments and layout differ in [daemon]
            [daemon]
            shutdown_timeout_seconds = 10.0

            [arbitrage]
            symbols = ["BTCUSDT", "ETHUSDT"]

            [exchanges.okx]
            enabled = true
            """,
            name="new.toml",
        )
    )

    assert changed_sections(old, new) == {"arbitrage", "exchanges.okx"}
    assert changed_sections(old, old) == frozenset()


def test_a_key_written_twice_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "arbot.toml"
    path.write_text('[daemon]\nmode = "live"\nmode = "simulation"\n')
    with pytest.raises(ConfigError) as caught:
        read_document(path)
    assert 'Key "mode" already exists' in str(caught.value)
