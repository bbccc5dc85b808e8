"""The OpenAPI document: valid, complete, and true of the running server.

The schemathesis run starts a real daemon in a subprocess (``python -m arbotd run``) on a
free port: simulation mode, the sql plugin on a SQLite file in a temporary directory,
``auth_required = true`` with the trading-scope test key sent by every call, and rate
limits raised out of the way. The tests are sync: hypothesis drives blocking calls, and
the daemon's trio loop runs in its own process.

Every operation is exercised, trading start/stop, emergency stop and config updates
included: they change the daemon's state, and whatever the state, each answer must still
match the document. Each operation gets :data:`EXAMPLES` valid and :data:`EXAMPLES`
invalid requests, derandomized so that a run is repeatable.
"""

from __future__ import annotations

import copy
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from apitools import API_KEY, JWT_SECRET, READ_KEY
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

from arbotd_api.app import create_app
from arbotd_api.openapi import openapi_document

EXAMPLES = 20
USER, PASSWORD = "openapi-tester", "correct horse battery staple"
_IGNORED_METHODS = {"HEAD", "OPTIONS"}

CONFIG = """
[daemon]
mode = "simulation"
autostart = false
state_dir = "{state_dir}"
shutdown_timeout_seconds = 5.0

[simulation]
updates_per_second = 10.0

[api]
port = {port}
auth_required = true
read_per_minute = 1000000
read_burst = 1000000
write_per_minute = 1000000
write_burst = 1000000

# PUT /trading/config may enable the real exchanges: they would connect to a port nothing
# listens on, never to the internet.
[exchanges.binance]
ws_url = "ws://127.0.0.1:9"
rest_url = "http://127.0.0.1:9"

[exchanges.bybit]
ws_url = "ws://127.0.0.1:9"
rest_url = "http://127.0.0.1:9"

[exchanges.okx]
ws_url = "ws://127.0.0.1:9"
rest_url = "http://127.0.0.1:9"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def daemon_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("openapi")
    port = _free_port()
    config = directory / "arbot.toml"
    config.write_text(textwrap.dedent(CONFIG).format(state_dir=directory / "state", port=port),
                      encoding="utf-8")
    env = {**os.environ, "ARBOT_API_KEY": f"{API_KEY},{READ_KEY}:read",
           "ARBOT_JWT_SECRET": JWT_SECRET}
    subprocess.run([sys.executable, "-m", "arbotd", "-c", str(config), "user", "add",
                    "--scope", "read", USER], input=f"{PASSWORD}\n", text=True, env=env,
                   check=True, capture_output=True)
    log = (directory / "daemon.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "arbotd", "-c", str(config), "run"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, directory / "daemon.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the daemon exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the daemon did not become healthy:\n{log.read_text(errors='replace')}")


def test_document_is_valid_openapi() -> None:
    # A copy: schemathesis writes inferred links into the dict it is given.
    schema = schemathesis.openapi.from_dict(copy.deepcopy(openapi_document()))
    schema.validate()
    assert openapi_document()["openapi"] == "3.0.3"


def _routes() -> set[tuple[str, str]]:
    app = create_app(None)  # type: ignore[arg-type]  # only the url map is read
    routes = set()
    for rule in app.url_map.iter_rules():
        # The dashboard's page and files are served beside the API, not part of it;
        # /metrics (for Prometheus) is documented with it.
        if rule.endpoint == "static" or rule.websocket or not rule.rule.startswith(
                ("/api/", "/metrics")):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes |= {(path, method) for method in rule.methods - _IGNORED_METHODS}
    return routes


def test_every_route_is_documented_and_nothing_else() -> None:
    documented = {
        (path, method.upper())
        for path, item in openapi_document()["paths"].items()
        for method in item
    }
    assert _routes() == documented


def test_public_routes_are_marked_public() -> None:
    public = {
        (path, method)
        for path, item in openapi_document()["paths"].items()
        for method, op in item.items()
        if op.get("security") == []
    }
    assert public == {("/api/v1/health", "get"), ("/api/v1/auth/login", "post"),
                      ("/api/v1/openapi.json", "get")}


def test_served_document(daemon_url: str) -> None:
    response = httpx.get(f"{daemon_url}/api/v1/openapi.json")  # no credentials needed
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()
    assert "X-RateLimit-Limit" in response.headers


def only_documented_server_errors(ctx: Any, response: schemathesis.Response,
                                  case: schemathesis.Case) -> None:
    """Instead of schemathesis's ``not_a_server_error``: the API reference answers 503 for
    an exchange that is not available, and the history endpoints 503 without a storage
    that keeps history; /health 503 when a check fails. Any other 5xx is a bug."""
    if response.status_code < 500:
        return
    if response.status_code == 503:
        if case.operation.path == "/api/v1/health":
            return
        code = response.json().get("error", {}).get("code")
        if code in ("EXCHANGE_NOT_AVAILABLE", "STORAGE_NOT_AVAILABLE"):
            return
    raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


def _validate(case: schemathesis.Case, url: str) -> schemathesis.Response:
    return case.call_and_validate(base_url=url, headers={"X-API-Key": API_KEY},
                                  excluded_checks=[positive_data_acceptance, not_a_server_error],
                                  additional_checks=[only_documented_server_errors])


def _failures(operation: schemathesis.APIOperation, url: str,
              mode: schemathesis.GenerationMode) -> list[str]:
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode))
    def run(case: schemathesis.Case) -> None:
        _validate(case, url)

    try:
        run()
    except Unsatisfiable:
        assert mode is schemathesis.GenerationMode.NEGATIVE  # nothing to get wrong
    except (Exception, FailureGroup) as err:  # collected, to report every operation at once
        return [f"{operation.label} [{mode.value}]: {err}"]
    return []


def test_server_matches_the_document(daemon_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{daemon_url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the endpoint it loaded the document from: that one is
    # checked by test_served_document.
    expected = {f"{method} {path}" for path, method in _routes()}
    assert {op.label for op in operations} == expected - {"GET /api/v1/openapi.json"}
    failures: list[str] = []
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE,
                     schemathesis.GenerationMode.NEGATIVE):
            failures += _failures(operation, daemon_url, mode)
    assert not failures, "\n\n".join(failures)


def test_successful_answers_match_the_document(daemon_url: str) -> None:
    """Random symbols are almost never configured ones: these requests name real ones, so
    the success shapes of the history and market endpoints are checked too."""
    schema = schemathesis.openapi.from_url(f"{daemon_url}/api/v1/openapi.json")
    now = time.time()

    def ok(path: str, method: str = "GET", **parts: Any) -> dict[str, Any]:
        response = _validate(schema[path][method].Case(**parts), daemon_url)
        assert response.status_code == 200, response.text
        return response.json()

    for media_type in ("application/json", "application/x-www-form-urlencoded"):
        token = ok("/api/v1/auth/login", "POST",
                   body={"username": USER, "password": PASSWORD}, media_type=media_type)
        assert token["scope"] == "read"
    ok("/api/v1/trading/start", "POST", body={"mode": "simulation"})
    ok("/api/v1/prices/current", query={"symbol": "BTCUSDT", "exchange": "sim_alpha"})
    ok("/api/v1/orderbook", query={"symbol": "BTCUSDT", "exchange": "sim_alpha", "depth": 5})
    ok("/api/v1/spreads/current", query={"symbol": "BTCUSDT", "min_profit": -1})
    ok("/api/v1/prices/history", query={"symbol": "BTCUSDT", "start_time": now - 600,
                                        "end_time": now + 60})
    ok("/api/v1/analytics/query", "POST", body={
        "query_type": "symbol_performance",
        "parameters": {"symbols": ["BTCUSDT"], "metrics": ["profit", "volume"]}})
    ok("/api/v1/performance", query={"period": "day"})
    ok("/api/v1/signals", query={"symbol": "BTCUSDT", "limit": 5})
    trades = ok("/api/v1/trades", query={"limit": 5})["trades"]
    for trade in trades[:2]:
        ok("/api/v1/trades/{trade_id}", path_parameters={"trade_id": trade["id"]})
    ok("/api/v1/trading/config", "PUT", body={"arbitrage": {"min_profit_threshold": 0.003}})
    ok("/api/v1/trading/stop", "POST")
