"""Writing values into the operator's TOML file: only the values named change; comments,
blank lines, key order and every other byte stay as they were, and the file is replaced
atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import attrs
import pytest
import tomlkit

from arbotd import ConfigError, DaemonConfig, PluginsConfig, setting, update_config_file


@attrs.frozen
class ArbitrageConfig:
    min_profit_threshold: float = setting(0.002, ge=0, le=1)
    symbols: list[str] = setting(factory=list)


@attrs.frozen
class VenueConfig:
    enabled: bool = setting(False)
    taker_fee: float = setting(0.001, ge=0, le=0.1)


SCHEMA = {
    "daemon": DaemonConfig,
    "plugins": PluginsConfig,
    "arbitrage": ArbitrageConfig,
    "exchanges.binance": VenueConfig,
    "exchanges.okx": VenueConfig,
}

ORIGINAL = """\
# arbotd configuration, edited by hand.
#   Indented comment, odd   spacing.

[daemon]
# Stop within this many seconds.
shutdown_timeout_seconds   =   10   # generous
mode = 'simulation'


# The strategy.
[arbitrage]
symbols = [
    "BTCUSDT",  # the big one
    "ETHUSDT",
]
min_profit_threshold = 0.002 # fraction, not percent

[exchanges.binance]
enabled = true
taker_fee = 1e-3
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "arbot.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    return path


def replaced(*pairs: tuple[str, str]) -> str:
    """ORIGINAL with each ``old`` line replaced by ``new``."""
    text = ORIGINAL
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def assert_edited(text: str, *pairs: tuple[str, str]) -> None:
    """``text`` is ORIGINAL with each ``old`` replaced by ``new``, byte for byte, except
    for the quotes of a replaced string: which quote character a new string gets is
    tomlkit's business (0.15 keeps the replaced string's, older versions write double
    quotes). Every other line, comments included, must be exactly as it was, and the
    file must mean the new values."""
    expected = replaced(*pairs)
    assert tomlkit.parse(text).unwrap() == tomlkit.parse(expected).unwrap()
    got_lines, want_lines = text.splitlines(keepends=True), expected.splitlines(keepends=True)
    assert len(got_lines) == len(want_lines), text
    for got, want in zip(got_lines, want_lines, strict=True):
        if got == want:
            continue
        assert any(new in want for _, new in pairs), f"a line not edited changed: {got!r}"
        assert _unquoted(got) == _unquoted(want), (got, want)


def _unquoted(line: str) -> str:
    return line.replace("'", '"')


def test_a_changed_value_keeps_everything_else_byte_for_byte(config_file):
    changed = update_config_file(config_file, {"daemon.shutdown_timeout_seconds": 5})

    assert changed == ["daemon.shutdown_timeout_seconds"]
    assert config_file.read_text() == replaced(
        ("shutdown_timeout_seconds   =   10   # generous",
         "shutdown_timeout_seconds   =   5   # generous"),
    )


def test_several_values_at_once(config_file):
    changed = update_config_file(
        config_file,
        {
            "arbitrage.min_profit_threshold": 0.004,
            "daemon.mode": "live",
            "exchanges.binance.enabled": False,
        },
        schema=SCHEMA,
    )

    assert changed == ["arbitrage.min_profit_threshold", "daemon.mode", "exchanges.binance.enabled"]
    assert_edited(
        config_file.read_text(),
        ("min_profit_threshold = 0.002 #", "min_profit_threshold = 0.004 #"),
        ("mode = 'simulation'", 'mode = "live"'),
        ("enabled = true", "enabled = false"),
    )


def test_a_list_is_replaced_as_a_whole(config_file):
    update_config_file(config_file, {"arbitrage.symbols": ["SOLUSDT"]})

    assert config_file.read_text() == replaced(
        ('symbols = [\n    "BTCUSDT",  # the big one\n    "ETHUSDT",\n]', 'symbols = ["SOLUSDT"]'),
    )


def test_a_new_key_goes_after_the_last_key_of_its_table(config_file):
    # Not after the blank lines and the comment that introduce the next table.
    update_config_file(config_file, {"daemon.autostart": False})

    assert config_file.read_text() == replaced(
        ("mode = 'simulation'\n", "mode = 'simulation'\nautostart = false\n"),
    )


def test_a_new_key_in_a_nested_table(config_file):
    update_config_file(config_file, {"exchanges.binance.maker_fee": 0.0009})

    assert config_file.read_text() == ORIGINAL + "maker_fee = 0.0009\n"


def test_a_new_nested_table_is_created(config_file):
    update_config_file(config_file, {"exchanges.okx.enabled": True}, schema=SCHEMA)

    assert config_file.read_text() == ORIGINAL + "\n[exchanges.okx]\nenabled = true\n"


def test_a_new_section_is_added_at_the_end(config_file):
    update_config_file(config_file, {"plugins.disable": ["arbot_sql"]})

    assert config_file.read_text() == ORIGINAL + '\n[plugins]\ndisable = ["arbot_sql"]\n'


def test_tables_split_across_the_file_can_be_edited(tmp_path):
    path = tmp_path / "arbot.toml"
    text = "[exchanges.binance]\nenabled = true\n\n[daemon]\nmode = 'live'\n\n[exchanges.okx]\n"
    path.write_text(text)

    update_config_file(path, {"exchanges.binance.taker_fee": 0.002})

    assert path.read_text() == text.replace(
        "enabled = true\n", "enabled = true\ntaker_fee = 0.002\n"
    )


def test_the_updated_file_validates(config_file):
    from arbotd._config import load_config

    update_config_file(config_file, {"exchanges.okx.taker_fee": 0.0008}, schema=SCHEMA)

    assert load_config(config_file, SCHEMA)["exchanges.okx"] == VenueConfig(taker_fee=0.0008)


# --- refusing bad values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("updates", "problem"),
    [
        (
            {"arbitrage.min_profit_threshold": "high"},
            'arbitrage.min_profit_threshold: expected a number in [0, 1], got "high"',
        ),
        (
            {"daemon.shutdown_timeout_seconds": 601},
            "daemon.shutdown_timeout_seconds: expected a number in (0, 600], got 601",
        ),
        (
            {"arbitrage.min_profit_treshold": 0.1},
            "arbitrage.min_profit_treshold: unknown key (did you mean 'min_profit_threshold'?)",
        ),
        ({"exchanges.kraken.enabled": True}, "exchanges.kraken: unknown section"),
    ],
)
def test_an_invalid_update_changes_nothing(config_file, updates, problem):
    before = config_file.read_bytes()

    with pytest.raises(ConfigError) as caught:
        update_config_file(config_file, updates, schema=SCHEMA)

    assert [str(p) for p in caught.value.problems] == [f"{config_file}: {problem}"]
    assert config_file.read_bytes() == before
    assert os.listdir(config_file.parent) == [config_file.name]


def test_a_key_path_through_a_value_is_refused(config_file):
    with pytest.raises(ConfigError) as caught:
        update_config_file(config_file, {"arbitrage.symbols.first": "BTCUSDT"})

    assert str(caught.value) == f"{config_file}: arbitrage.symbols: is a value, not a table"
    assert config_file.read_text() == ORIGINAL


def test_an_unreadable_file_is_reported(tmp_path):
    path = tmp_path / "arbot.toml"
    path.write_text("[daemon\n")

    with pytest.raises(ConfigError, match=r"line 1 column 8: invalid TOML"):
        update_config_file(path, {"daemon.mode": "live"})


# --- how the file is replaced ---------------------------------------------------------------


def test_an_update_that_changes_nothing_does_not_touch_the_file(config_file):
    os.utime(config_file, ns=(1_000_000_000, 1_000_000_000))
    before = config_file.stat()

    changed = update_config_file(
        config_file,
        {"daemon.shutdown_timeout_seconds": 10, "arbitrage.symbols": ["BTCUSDT", "ETHUSDT"]},
        schema=SCHEMA,
    )

    after = config_file.stat()
    assert changed == []
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_true_is_not_taken_for_one(tmp_path):
    path = tmp_path / "arbot.toml"
    path.write_text("[x]\nflag = 1\n")

    assert update_config_file(path, {"x.flag": True}) == ["x.flag"]
    assert path.read_text() == "[x]\nflag = true\n"


def test_permissions_are_kept(config_file):
    config_file.chmod(0o640)

    update_config_file(config_file, {"daemon.mode": "live"})

    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640


def test_the_file_is_replaced_not_rewritten_in_place(config_file):
    # A reader that opened the file before the update reads the whole old file.
    with config_file.open() as reader:
        update_config_file(config_file, {"daemon.mode": "live"})
        assert reader.read() == ORIGINAL
    assert tomlkit.parse(config_file.read_text())["daemon"]["mode"] == "live"


def test_no_temporary_file_is_left_behind(config_file):
    update_config_file(config_file, {"daemon.mode": "live"})
    update_config_file(config_file, {"exchanges.okx.enabled": True})

    assert os.listdir(config_file.parent) == [config_file.name]


def test_a_null_value_is_a_named_config_error(tmp_path) -> None:
    from arbotd import ConfigError
    from arbotd._configwrite import edit_document

    path = tmp_path / "arbot.toml"
    path.write_text("[arbitrage]\nsymbols = [\"BTCUSDT\"]\n")
    for value in (None, ["BTCUSDT", None], {"a": None}):
        with pytest.raises(ConfigError) as caught:
            edit_document(path, {"arbitrage.symbols": value})
        assert caught.value.problems[0].path == "arbitrage.symbols"
        assert "null is not a TOML value" in caught.value.problems[0].message
