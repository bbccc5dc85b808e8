"""``PUT /api/v1/trading/config`` changes trading parameters only: the allow-list the
sections declare (``setting(api=True)``), with sane bounds.

One real daemon (``python -m arbotd run``, every installed plugin, authentication on)
serves the whole module, so that every key of the schema can be tried on it in turn: the
parametrized cases are derived from the installed plugins' sections, and a key added
later is covered without touching this file. The exchanges' endpoints point at a closed
loopback port: enabling an exchange never reaches the internet.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from apitools import API_KEY, JWT_SECRET, assert_error

from arbotd import api_editable_settings, collect_config_schema, make_plugin_manager

CONFIG = """
[daemon]
autostart = false
state_dir = "{state_dir}"
shutdown_timeout_seconds = 5.0

[simulation]
updates_per_second = 10.0

[api]
port = {port}
auth_required = true
write_per_minute = 1000000
write_burst = 1000000

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

SCHEMA = collect_config_schema(make_plugin_manager())
EDITABLE = api_editable_settings(SCHEMA)


def every_setting(schema: dict[str, type]) -> dict[str, attrs.Attribute]:
    """Every key of every section, nested tables included, by dotted path."""
    found: dict[str, attrs.Attribute] = {}

    def collect(cls: type, path: str) -> None:
        for field in attrs.fields(attrs.resolve_types(cls)):
            key = f"{path}.{field.name}"
            if isinstance(field.type, type) and attrs.has(field.type):
                collect(field.type, key)
            else:
                found[key] = field

    for name, cls in schema.items():
        collect(cls, name)
    return found


SETTINGS = every_setting(SCHEMA)
NOT_EDITABLE = sorted(key for key in SETTINGS if key not in EDITABLE)


def some_value(field: attrs.Attribute) -> Any:
    """A value of the field's type, unlike its default."""
    tp = field.type
    origin = typing.get_origin(tp)
    default = field.default.factory() if isinstance(field.default, attrs.Factory) \
        else field.default
    if tp is bool:
        return not default
    if tp in (int, float):
        return tp(default) + 1
    if origin is typing.Literal:
        return next(v for v in typing.get_args(tp) if v != default)
    if origin in (list, tuple):
        return ["ws://127.0.0.1:9"]
    if origin is dict:
        return {"USDT": 1.0}
    return "http://127.0.0.1:9/changed"


def nested(key: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for ``"a.b"``: the body's shape."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@attrs.frozen
class Served:
    url: str
    config_path: Path

    def put(self, body: Any) -> httpx.Response:
        return httpx.put(f"{self.url}/api/v1/trading/config", json=body,
                         headers={"X-API-Key": API_KEY}, timeout=30)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("allow-list")
    port = _free_port()
    config = directory / "arbot.toml"
    config.write_text(textwrap.dedent(CONFIG).format(state_dir=directory / "state", port=port),
                      encoding="utf-8")
    env = {**os.environ, "ARBOT_API_KEY": API_KEY, "ARBOT_JWT_SECRET": JWT_SECRET}
    log_path = directory / "daemon.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "arbotd", "-c", str(config), "run"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the daemon did not come up:\n{log_path.read_text()}")
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            yield Served(url, config)
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_every_section_declares_some_keys_and_the_api_may_change_few_of_them():
    assert {"arbitrage.trade_amount_usd", "risk_management.max_drawdown_percent",
            "exchanges.binance.enabled"} <= set(EDITABLE)
    for table in ("api", "daemon", "plugins", "storage", "live", "simulation", "backtest"):
        assert not [key for key in EDITABLE if key.startswith(table + ".")], table


def test_secrets_and_endpoints_to_anywhere_are_refused(daemon: Served):
    """A trading-scope key once could point Binance at its own server and name the JWT
    secret's variable as the API key: the daemon then sent the secret there."""
    before = daemon.config_path.read_bytes()

    response = daemon.put({"exchanges": {"binance": {
        "enabled": True, "rest_url": "http://127.0.0.1:9", "ws_url": "ws://127.0.0.1:9",
        "api_key_env": "ARBOT_JWT_SECRET", "api_secret_env": "ARBOT_API_KEY"}}})

    error = assert_error(response, 403, "FORBIDDEN")
    assert error["details"]["field"] == "exchanges.binance.rest_url"
    assert "exchanges.binance.rest_url" in error["message"]
    assert error["details"]["forbidden"] == [
        "exchanges.binance.rest_url", "exchanges.binance.ws_url",
        "exchanges.binance.api_key_env", "exchanges.binance.api_secret_env"]
    assert error["details"]["editable"] == list(EDITABLE)
    assert daemon.config_path.read_bytes() == before
    # Not even the allowed part of the request was applied.
    shown = httpx.get(f"{daemon.url}/api/v1/trading/config", headers={"X-API-Key": API_KEY})
    assert shown.json()["exchanges"]["binance"] == {"enabled": False}


@pytest.mark.parametrize("key", NOT_EDITABLE)
def test_no_key_outside_the_allow_list_can_be_changed(daemon: Served, key: str):
    before = daemon.config_path.read_bytes()

    response = daemon.put(nested(key, some_value(SETTINGS[key])))

    error = assert_error(response, 403, "FORBIDDEN")
    assert error["details"]["field"] == key
    assert daemon.config_path.read_bytes() == before


def test_an_unknown_key_is_a_validation_error_naming_it(daemon: Served):
    before = daemon.config_path.read_bytes()
    for body, field in (({"arbitrage": {"trade_amount": 5.0}}, "arbitrage.trade_amount"),
                        ({"exchanges": {"kraken": {"enabled": True}}}, "exchanges.kraken"),
                        ({"exchanges": {"binance": True}}, "exchanges.binance")):
        error = assert_error(daemon.put(body), 400, "VALIDATION_ERROR")
        assert error["details"]["field"] == field
    assert "did you mean 'arbitrage.trade_amount_usd'" in error_message(
        daemon.put({"arbitrage": {"trade_amount": 5.0}}))
    assert daemon.config_path.read_bytes() == before


def error_message(response: httpx.Response) -> str:
    return response.json()["error"]["message"]


def changed_value(field: attrs.Attribute) -> Any:
    """A valid value of an editable setting, unlike its default."""
    tp = field.type
    rule = field.metadata["arbotd"]
    default = field.default.factory() if isinstance(field.default, attrs.Factory) \
        else field.default
    if tp is bool:
        return not default
    if tp in (int, float):
        high = rule.le if rule.le is not None else rule.lt
        value = default + (high - default) / 2
        return round(value) if tp is int else value
    if typing.get_origin(tp) is typing.Literal:
        return next(v for v in typing.get_args(tp) if v != default)
    if typing.get_origin(tp) is list:
        return default[:1]
    raise AssertionError(f"no changed value for {field.name} ({tp})")


@pytest.mark.parametrize("key", list(EDITABLE))
def test_every_key_on_the_allow_list_can_be_changed(daemon: Served, key: str):
    field = EDITABLE[key]
    default = field.default.factory() if isinstance(field.default, attrs.Factory) \
        else field.default
    value = changed_value(field)

    response = daemon.put(nested(key, value))

    assert response.status_code == 200, response.text
    assert response.json()["updated_fields"] == [key.rsplit(".", 1)[-1]]
    back = daemon.put(nested(key, default))
    assert back.status_code == 200, back.text


@pytest.mark.parametrize(("key", "value"), [
    ("arbitrage.trade_amount_usd", 1e308),
    ("arbitrage.trade_amount_usd", 2e9),
    ("arbitrage.max_position_size", -5.0),
    ("arbitrage.min_profit_threshold", "NaN"),
    ("arbitrage.min_profit_threshold", 1.5),
    ("arbitrage.max_spread_threshold", 2.0),
    ("arbitrage.max_trades_per_hour", 10**12),
    ("arbitrage.symbols", [f"S{i}USDT" for i in range(1001)]),
    ("risk_management.max_drawdown_percent", 150.0),
    ("risk_management.max_position_size", 1e308),
    ("risk_management.daily_loss_limit", 0),
])
def test_absurd_values_are_validation_errors_naming_the_field(daemon: Served, key: str,
                                                             value: Any):
    before = daemon.config_path.read_bytes()

    error = assert_error(daemon.put(nested(key, value)), 400, "VALIDATION_ERROR")

    assert error["details"]["field"] == key
    assert daemon.config_path.read_bytes() == before
