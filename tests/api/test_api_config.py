"""``[api]`` validation, the refusal to serve the network without auth, and reloads that
would lower the API's protection."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from apitools import API_KEY, Running, server_factory
from support import RecordingNotifier

from arbotd import ConfigError, update_config_file
from arbotd._daemon import Daemon
from arbotd_api.auth import parse_api_keys
from arbotd_api.config import ApiConfig
from arbotd_api.plugin import service_for
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


# --- a reload never weakens protection -------------------------------------------------------

SHIPPED = Path(__file__).parents[2] / "etc" / "arbot.toml"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[Running]:
    """The daemon, every installed plugin, on the file at ``path``."""
    notifier = RecordingNotifier()
    daemon = Daemon(path, notifier=notifier)
    runtime = daemon.prepare()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        with trio.fail_after(30):
            await notifier.wait_for("READY=1")
        service = service_for(runtime)
        assert service is not None
        yield Running(daemon, service.urls[0], path)
        runtime.shutdown_requested.set()


async def refused_in_health(client) -> list[dict]:
    response = await client.get("/api/v1/health")
    assert response.status_code == 503, response.text
    check = response.json()["checks"]["config"]
    assert check["status"] == "fail"
    return check["problems"]


@pytest.mark.slow
async def test_the_shipped_file_cut_at_any_line_never_lowers_protection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An editor or a disk that fails mid-write leaves the first lines of the file: at
    every line boundary (the empty file included; those after comments read as the line
    before), a reload is refused or harmless, and the API still wants credentials where
    it listened."""
    monkeypatch.setenv("ARBOT_API_KEY", API_KEY)
    shipped = SHIPPED.read_text()
    # Auth on, any free port, and rate limits out of the way of so many requests.
    for old, new in (("port = 8080", "port = 0"), ("auth_required = false", "auth_required = true"),
                     ("read_per_minute = 0", "read_per_minute = 1000000"),
                     ("read_burst = 50", "read_burst = 100000"),
                     ("write_per_minute = 0", "write_per_minute = 1000000"),
                     ("write_burst = 10", "write_burst = 100000")):
        assert shipped.count(old) == 1, old
        shipped = shipped.replace(old, new)
    path = tmp_path / "arbot.toml"
    path.write_text(shipped)
    lines = shipped.splitlines(keepends=True)
    # A cut after a comment or blank line reads as the cut before it: only the cuts
    # after a line with a value, a table header or part of either are distinct files.
    assert '"""' not in shipped and "'''" not in shipped  # no line is inside a string
    cuts = [0, *(cut for cut in range(1, len(lines) + 1)
                 if lines[cut - 1].strip() and not lines[cut - 1].lstrip().startswith("#"))]

    async with running(path) as api, api.client() as client:
        runtime = api.runtime
        service = service_for(runtime)
        urls, settings = list(service.urls), runtime.config["api"]
        refused = 0
        for cut in cuts:
            path.write_text("".join(lines[:cut]))

            outcome = await runtime.reload()

            where = f"file cut after line {cut}"
            if outcome.ok:  # harmless: the API's settings are what they were
                assert runtime.config["api"] == settings, where
            else:
                refused += 1
                assert await refused_in_health(client), where
            assert service.urls == urls and service.settings.auth_required, where
            response = await client.post("/api/v1/trading/stop")
            assert response.status_code == 401, where
        assert refused > len(cuts) // 2

        path.write_text(shipped)
        assert (await runtime.reload()).ok
        health = (await client.get("/api/v1/health")).json()
        assert health["checks"]["config"] == {"status": "pass"}
        status = await client.get("/api/v1/status", headers={"X-API-Key": API_KEY})
        assert status.status_code == 200


async def test_a_reload_may_turn_auth_on_but_not_off(serve_api):
    async with serve_api() as api, api.client() as client:
        assert (await client.get("/api/v1/status")).status_code == 200
        # Towards protection: applies at once.
        edit(api.config_path, "[api]\n", "[api]\nauth_required = true\n")
        assert (await api.runtime.reload()).ok
        assert (await client.get("/api/v1/status")).status_code == 401
        with_key = await client.get("/api/v1/status", headers={"X-API-Key": API_KEY})
        assert with_key.status_code == 200

        # Away from it: refused, the daemon keeps its running configuration.
        running_config = api.runtime.config
        edit(api.config_path, "auth_required = true", "auth_required = false")

        outcome = await api.runtime.reload()

        assert not outcome.ok and api.runtime.config is running_config
        assert (await client.post("/api/v1/trading/stop")).status_code == 401
        [problem] = await refused_in_health(client)
        assert problem["field"] == "api.auth_required"
        assert "true -> false is refused on reload" in problem["message"]
        assert "restart" in problem["message"]
        assert "api.auth_required" in api.daemon.status_line()

        # So is a public address without auth, and a file that simply lost the key.
        edit(api.config_path, "auth_required = false",
             "auth_required = true\nallow_public_without_auth = true")
        assert {p.path for p in (await api.runtime.reload()).error.problems} == {
            "api.allow_public_without_auth"}
        edit(api.config_path, "auth_required = true\nallow_public_without_auth = true", "")
        assert {p.path for p in (await api.runtime.reload()).error.problems} == {
            "api.auth_required"}
        assert (await client.post("/api/v1/trading/stop")).status_code == 401


async def test_a_reload_that_widens_the_address_is_refused(serve_api):
    async with serve_api("auth_required = true\n") as api, api.client() as client:
        url = api.url
        edit(api.config_path, "[api]\n", '[api]\nhost = "0.0.0.0"\n')

        outcome = await api.runtime.reload()

        [problem] = outcome.error.problems
        assert problem.path == "api.host"
        assert "a reload may move the API only to a loopback address" in problem.message
        assert service_for(api.runtime).urls[0] == url
        assert (await client.post("/api/v1/trading/stop")).status_code == 401


@pytest.mark.parametrize(("key", "value"), [
    ("api.api_keys_env", "ARBOT_JWT_SECRET"),
    ("api.jwt_secret_env", "ARBOT_API_KEY"),
    ("exchanges.binance.api_key_env", "ARBOT_JWT_SECRET"),
    ("exchanges.binance.rest_url", "http://127.0.0.1:9"),
    ("exchanges.okx.testnet", True),
    ("storage.url", "sqlite:///elsewhere.db"),
    ("plugins.disable", ["sim"]),
    ("daemon.state_dir", "/tmp/elsewhere"),
])
async def test_a_reload_that_moves_a_secret_an_endpoint_or_the_plugins_is_refused(
    serve_api, key, value
):
    async with serve_api() as api, api.client() as client:
        running_config = api.runtime.config
        update_config_file(api.config_path, {key: value})

        outcome = await api.runtime.reload()

        assert [p.path for p in outcome.error.problems] == [key]
        assert "restart" in outcome.error.problems[0].message
        assert api.runtime.config is running_config
        [problem] = await refused_in_health(client)
        assert problem["field"] == key


async def test_a_trade_size_beyond_every_balance_is_warned_about(serve_api, caplog):
    async with serve_api() as api, api.client(headers={"X-API-Key": API_KEY}) as client:
        assert (await client.post("/api/v1/trading/start")).status_code == 200
        with trio.fail_after(10):
            while not api.runtime.ledger.exchanges():  # the paper accounts are funded
                await trio.sleep(0.02)

        response = await client.put("/api/v1/trading/config",
                                    json={"arbitrage": {"trade_amount_usd": 50_000.0}})

        assert response.status_code == 200, response.text
        assert ("arbitrage.trade_amount_usd = 50000 is more than any exchange holds in "
                "dollars (at most 10000)") in caplog.text
