"""The exchange kit as a new venue adopts it: a tiny venue made of the kit's bases alone
(its table, its account, its private stream, its hookimpls' helpers), so that what the
kit promises a venue holds without any of the builtin venues' code."""

from __future__ import annotations

import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
import trio

from arbotd import Order, OrderStatus, Side, setting
from arbotd.exchange import (
    Endpoints,
    OrderStream,
    OrderTracker,
    RecentIds,
    SignedOrderStream,
    StreamRefused,
    SymbolRules,
    VenueAccount,
    VenueConfig,
    enabled_settings,
    kept_account,
    runtime_clock,
)

KEY_ENV, SECRET_ENV = "TINY_TEST_KEY", "TINY_TEST_SECRET"


@attrs.frozen
class TinyConfig(VenueConfig):
    endpoints = Endpoints(
        ws="wss://ws.tiny.example", rest="https://api.tiny.example",
        order_stream="wss://ws.tiny.example/private", testnet_ws="wss://ws.test.tiny.example",
        testnet_rest="https://api.test.tiny.example",
        testnet_order_stream="wss://ws.test.tiny.example/private",
    )

    api_key_env: str = setting(KEY_ENV, reload="restart")
    api_secret_env: str = setting(SECRET_ENV, reload="restart")

    def credential_variables(self) -> tuple[str, ...]:
        return (self.api_key_env, self.api_secret_env)


class TinyStream(SignedOrderStream):
    name = "tiny"
    refused_advice = "check {0} and {1}"


class TinyAccount(VenueAccount[TinyConfig, Any]):
    name = "tiny"

    def make_order_stream(self, url: str, **options: Any) -> OrderStream:
        return TinyStream(self.orders, url, credentials=self.credentials,
                          timestamp_ms=lambda: 0, key_names=self.settings.credential_variables(),
                          **options)


def order(quantity: str, price: str) -> Order:
    return Order("arb1a", 1, "tiny", "BTCUSDT", Side.BUY, Decimal(price), Decimal(quantity))


def test_a_venue_table_says_where_it_connects() -> None:
    default = TinyConfig()
    assert (default.resolved_ws_url(), default.resolved_rest_url(),
            default.resolved_order_stream_url()) == (
        "wss://ws.tiny.example", "https://api.tiny.example", "wss://ws.tiny.example/private")
    testnet = TinyConfig(testnet=True)
    assert testnet.resolved_rest_url() == "https://api.test.tiny.example"
    assert testnet.resolved_order_stream_url() == "wss://ws.test.tiny.example/private"
    # A REST server of one's own (a proxy, a fake) has no known stream unless named.
    proxied = TinyConfig(rest_url="http://127.0.0.1:8080/", order_stream=True)
    assert proxied.resolved_rest_url() == "http://127.0.0.1:8080"
    assert proxied.resolved_order_stream_url() is None
    assert TinyConfig(order_stream=False).resolved_order_stream_url() is None


def test_an_account_names_its_missing_secrets_and_never_shows_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(SECRET_ENV, "s3cret-value")
    account = TinyAccount(TinyConfig())
    assert account.missing_credentials() == [KEY_ENV]
    assert "s3cret" not in repr(account)
    assert repr(account) == "TinyAccount('https://api.tiny.example')"


def test_a_reload_with_the_same_table_keeps_the_account() -> None:
    runtime = SimpleNamespace(plugin_state={})
    first = kept_account(runtime, "tiny.account", TinyAccount(TinyConfig()))
    assert kept_account(runtime, "tiny.account", TinyAccount(TinyConfig())) is first
    changed = TinyAccount(TinyConfig(testnet=True))
    assert kept_account(runtime, "tiny.account", changed) is changed
    assert runtime.plugin_state["tiny.account"] is changed


def test_the_hook_helpers_read_the_table_and_the_clock() -> None:
    assert enabled_settings({"exchanges.tiny": TinyConfig()}, "exchanges.tiny") is None
    on = TinyConfig(enabled=True)
    assert enabled_settings({"exchanges.tiny": on}, "exchanges.tiny") is on
    virtual = SimpleNamespace(clock=lambda: 42.0)
    assert runtime_clock(virtual)() == 42.0
    assert runtime_clock(SimpleNamespace()) is time.time


def test_the_loaded_rules_refuse_an_order_the_venue_would() -> None:
    account = TinyAccount(TinyConfig(order_stream=False))
    assert account.order_stream is None
    assert account.refused_by_rules(order("0.0001", "100")) is None  # no rules loaded
    account._rules = {"BTCUSDT": SymbolRules("BTCUSDT", min_qty=Decimal("0.001"))}
    refused = account.refused_by_rules(order("0.0001", "100"))
    assert refused is not None and refused[1] == []
    assert refused[0].status is OrderStatus.REJECTED and refused[0].reason
    assert account.refused_by_rules(order("0.01", "100")) is None


async def test_a_silent_stream_leaves_the_order_to_rest() -> None:
    account = TinyAccount(TinyConfig(), stream_wait=0.05)
    assert account.order_stream is not None and account.order_stream.url.endswith("/private")
    assert await account.heard(order("1", "100"), None) is None  # the stream is down
    account.orders.stream_up()
    session = account.orders.session_if_up()
    with trio.fail_after(5):
        assert await account.heard(order("1", "100"), session) is None


def test_a_signed_stream_says_which_secret_is_missing() -> None:
    secrets: list[str | None] = ["key", None]
    stream = TinyStream(OrderTracker(), "ws://x", credentials=lambda: tuple(secrets),
                        timestamp_ms=lambda: 0, key_names=(KEY_ENV, SECRET_ENV))
    assert stream.refused_hint == f"check {KEY_ENV} and {SECRET_ENV}"
    with pytest.raises(StreamRefused, match="the API key or secret is not set"):
        stream.secrets()
    secrets[1] = "secret"
    assert stream.secrets() == ("key", "secret")


def test_recent_ids_forget_the_oldest_first() -> None:
    sent: RecentIds[float] = RecentIds(capacity=2)
    sent.remember("a", 1.0)
    sent.remember("b", 2.0)
    sent.remember("a", 3.0)  # sent again: now the latest
    sent.remember("c", 4.0)
    assert "b" not in sent and sent.get("a") == 3.0 and len(sent) == 2
    sent.forget("a")
    assert sent.get("a") is None
