"""``[api]`` validation and the refusal to serve the network without auth."""

from pathlib import Path

import pytest

from arbotd import ConfigError
from arbotd_api.auth import parse_api_keys
from arbotd_api.config import ApiConfig
from arbotd_api.routes.trading import current_key


def test_rate_limit_maps_to_write_and_ten_times_read():
    assert (ApiConfig().read_limit, ApiConfig().write_limit) == (1000, 100)
    settings = ApiConfig(rate_limit=1000, write_per_minute=50)
    assert (settings.read_limit, settings.write_limit) == (10000, 50)


def test_public_host_without_auth_is_a_problem():
    assert ApiConfig(host="0.0.0.0").startup_problem()
    assert ApiConfig(host="::1").startup_problem() is None
    assert ApiConfig(host="0.0.0.0", auth_required=True).startup_problem() is None
    assert ApiConfig(host="0.0.0.0", allow_public_without_auth=True).startup_problem() is None
    assert ApiConfig(host="0.0.0.0", enabled=False).startup_problem() is None


def test_check_reports_it(tmp_path: Path):
    from arbotd._plugins import make_plugin_manager
    from arbotd._runtime import load_with_plugins

    path = tmp_path / "arbot.toml"
    path.write_text('[api]\nhost = "0.0.0.0"\nssl_cert = "/nonexistent.pem"\n'
                    'cors_enabled = true\n')
    with pytest.raises(ConfigError) as caught:
        load_with_plugins(path, make_plugin_manager())
    paths = {p.path for p in caught.value.problems}
    assert {"api.host", "api.ssl_cert", "api.cors_origins"} <= paths
    assert "auth_required" in str(caught.value)


def test_api_keys_with_scopes():
    assert parse_api_keys(" k1 , k2:read,k3:trading,a:b:read,") == [
        ("k1", "trading"), ("k2", "read"), ("k3", "trading"), ("a:b", "read")]
    assert parse_api_keys(None) == []
    with pytest.raises(ValueError, match="API key 1"):
        parse_api_keys(":read")


def test_current_key_names_of_the_reference():
    assert current_key("max_drawdown_percent") == "current_drawdown_percent"
    assert current_key("max_concurrent_trades") == "current_active_trades"
    assert current_key("daily_loss_limit") == "current_daily_loss"
