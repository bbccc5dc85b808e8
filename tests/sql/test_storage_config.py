"""The ``[storage]`` table and the plugin's hooks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from arbotd import ConfigError, DaemonConfig
from arbotd._config import load_config
from arbotd_sql import SqlStorage, StorageConfig, StorageError, plugin
from arbotd_sql.config import parse_database_url


def test_the_default_is_a_sqlite_file_in_the_state_directory() -> None:
    target = parse_database_url("", Path("/var/lib/arbotd"))
    assert target.kind == "sqlite"
    assert target.path == Path("/var/lib/arbotd/arbot.db")
    assert target.display == "sqlite:////var/lib/arbotd/arbot.db"
    assert parse_database_url("", Path("var")).display == "sqlite:///var/arbot.db"


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///data/arbot.db", Path("data/arbot.db")),
     ("sqlite:////srv/arbot/arbot.db", Path("/srv/arbot/arbot.db"))],
)
def test_sqlite_urls_name_relative_or_absolute_files(url: str, path: Path) -> None:
    target = parse_database_url(url, Path("ignored"))
    assert (target.kind, target.path, target.display) == ("sqlite", path, url)


def test_a_postgresql_url_gives_the_connection_parameters() -> None:
    url = "postgresql://arbot@db.example:5433/arbot?sslmode=require&application_name=arbotd"
    target = parse_database_url(url, Path("."))
    assert (target.kind, target.database, target.display) == ("postgresql", "arbot", url)
    assert target.params == {"host": "db.example", "port": 5433, "user": "arbot",
                             "sslmode": "require", "application_name": "arbotd",
                             "connect_timeout": 5}
    assert parse_database_url("postgres:///arbot", Path(".")).params == {"connect_timeout": 5}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://arbot@localhost/arbot", 'unknown scheme "mysql"'),
        ("arbot.db", 'expected "sqlite:///path/to/arbot.db" or "postgresql://'),
        ("sqlite://host/arbot.db", "a SQLite url has no host"),
        ("sqlite:///", "expected a file name"),
        ("sqlite:///:memory:", "in-memory"),
        ("postgresql://arbot:hunter2@localhost/arbot", "must not contain a password"),
        ("postgresql://arbot@localhost/arbot?password=hunter2", "must not contain a password"),
        ("postgresql://arbot@localhost", "expected the database name"),
        ("postgresql://arbot@localhost:99999/arbot", "invalid port"),
    ],
)
def test_a_bad_url_says_what_is_expected(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_database_url(url, Path("."))
    assert "hunter2" not in str(caught.value)


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "arbot.toml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, {"daemon": DaemonConfig, "storage": StorageConfig})


def test_the_table_is_validated_with_every_problem_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, """
            [storage]
            url = "mysql://localhost/arbot"
            password_env = "not a name"
            flush_interval_seconds = 0
            max_history_days = -1
        """)
    problems = {p.path: p.message for p in caught.value.problems}
    assert 'unknown scheme "mysql"' in problems["storage.url"]
    assert "environment variable" in problems["storage.password_env"]
    assert set(problems) == {"storage.url", "storage.password_env",
                             "storage.flush_interval_seconds", "storage.max_history_days"}


def test_defaults_and_a_valid_table(tmp_path: Path) -> None:
    assert StorageConfig() == StorageConfig(
        url="", password_env="", flush_interval_seconds=0.25, flush_max_rows=500,
        max_backlog=100_000, record_quotes=False, max_history_days=90,
    )
    config = _load(tmp_path, """
        [storage]
        url = "postgresql://arbot@127.0.0.1:5432/arbot"
        password_env = "ARBOTD_DB_PASSWORD"
        record_quotes = true
    """)
    assert config["storage"].record_quotes is True  # type: ignore[index]


def test_the_plugin_provides_the_table_and_an_unopened_storage(tmp_path: Path) -> None:
    assert plugin.register_config_sections() == {"storage": StorageConfig}
    config = _load(tmp_path, f"""
        [daemon]
        state_dir = "{tmp_path / 'state'}"
    """)
    storage = plugin.provide_storage(config=config, runtime=None)  # type: ignore[arg-type]
    assert isinstance(storage, SqlStorage)
    assert storage.display == f"sqlite:///{tmp_path / 'state' / 'arbot.db'}"
    assert not (tmp_path / "state").exists()  # opened by the core, not by the hook


def test_an_invalid_url_given_directly_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"\[storage\] url"):
        SqlStorage(StorageConfig(url="ftp://x/y"), state_dir=tmp_path)
