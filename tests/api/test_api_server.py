"""The server itself: TLS, CORS, refusing to start, and the WebSocket."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

import httpx
import orjson
import pytest
import trio
from apitools import API_KEY, server_factory
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support import free_port
from trio_websocket import ConnectionClosed, open_websocket_url

from arbotd import ConfigError
from arbotd_api.plugin import service_for


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls(serve_api, tmp_path):
    cert, key = self_signed(tmp_path)
    async with serve_api(f'ssl_cert = "{cert}"\nssl_key = "{key}"\n') as api:
        assert api.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        async with api.client(verify=context) as client:
            response = await client.get("/api/v1/status")
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Type"] == "requests"


async def test_cors_preflight_and_headers(serve_api):
    extra = 'cors_enabled = true\ncors_origins = ["https://dash.example"]\n'
    async with serve_api(extra) as api, api.client() as client:
        response = await client.options("/api/v1/trading/start", headers={
            "Origin": "https://dash.example", "Access-Control-Request-Method": "POST"})
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == "https://dash.example"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "X-API-Key" in response.headers["Access-Control-Allow-Headers"]
        assert "X-RateLimit-Limit" in response.headers
        response = await client.get("/api/v1/status",
                                    headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_refuses_public_host_without_auth(serve_api):
    with pytest.raises(ConfigError, match="auth_required"):
        async with serve_api('host = "0.0.0.0"\n'):
            pass


async def test_port_in_use_names_the_address(serve_api):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port}.*already in use"):
            async with serve_api(port=port, wait_feeds=False):
                pass


def ws_url(api) -> str:
    return api.url.replace("http", "ws", 1) + "/api/v1/ws"


async def receive(ws, type_: str) -> dict:
    with trio.fail_after(10):
        while True:
            message = orjson.loads(await ws.get_message())
            if message["type"] == type_:
                return message


async def test_websocket_subscribe_filter_unsubscribe(serve_api):
    async with serve_api() as api, open_websocket_url(ws_url(api)) as ws:
        await ws.send_message(orjson.dumps({"type": "subscribe", "channel": "prices",
                                            "symbols": ["ETHUSDT"]}).decode())
        assert (await receive(ws, "subscribed"))["channel"] == "prices"
        for _ in range(5):
            update = await receive(ws, "price_update")
            assert update["data"]["symbol"] == "ETHUSDT"
            assert set(update["data"]) == {"symbol", "exchange", "bid", "ask", "bid_size",
                                           "ask_size", "timestamp"}
        await ws.send_message(orjson.dumps({"type": "subscribe", "channel": "signals"}
                                           ).decode())
        await receive(ws, "subscribed")
        await ws.send_message('{"type": "subscribe", "channel": "weather"}')
        error = await receive(ws, "error")
        assert error["error"]["code"] == "VALIDATION_ERROR"
        await ws.send_message('{"type": "unsubscribe", "channel": "prices"}')
        await receive(ws, "unsubscribed")
        await trio.sleep(0.2)
        # Nothing but signals may follow (none are forced here): prices stopped.
        with trio.move_on_after(0.5):
            while True:
                message = orjson.loads(await ws.get_message())
                assert message["type"] != "price_update"


async def test_websocket_auth(serve_api):
    async with serve_api("auth_required = true\n") as api:
        async with open_websocket_url(ws_url(api)) as ws:
            await ws.send_message('{"type": "subscribe", "channel": "prices"}')
            error = await receive(ws, "error")
            assert error["error"]["code"] == "UNAUTHORIZED"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1008
        async with open_websocket_url(ws_url(api)) as ws:
            await ws.send_message(orjson.dumps({"type": "auth", "token": API_KEY}).decode())
            assert (await receive(ws, "authenticated"))["scope"] == "trading"
            await ws.send_message('{"type": "subscribe", "channel": "prices"}')
            await receive(ws, "price_update")


async def test_websocket_slow_client_is_closed_with_reason(serve_api):
    async with serve_api("ws_max_pending = 10\n") as api, \
            open_websocket_url(ws_url(api)) as ws:
        await ws.send_message('{"type": "subscribe", "channel": "trades"}')
        await receive(ws, "subscribed")
        # More trades than the client may lag behind, published without yielding to it.
        for _ in range(11):
            api.runtime.bus.publish("trade", None)
        with pytest.raises(ConnectionClosed) as closed, trio.fail_after(5):
            while True:
                await ws.get_message()
        assert closed.value.reason.code == 1008
        assert "too slow" in closed.value.reason.reason


async def test_websocket_connection_rate_limit(serve_api):
    async with serve_api("ws_burst = 1\n") as api:
        async with open_websocket_url(ws_url(api)):
            pass
        from trio_websocket import HandshakeError
        with pytest.raises(HandshakeError):
            async with open_websocket_url(ws_url(api)):
                pass


async def test_a_new_port_on_reload_moves_the_api_without_a_restart(serve_api, caplog):
    async with serve_api() as api:
        old_url = api.url
        new_port = free_port()
        text = api.config_path.read_text().replace("port = 0", f"port = {new_port}")
        api.config_path.write_text(text)
        outcome = await api.runtime.reload()
        assert outcome.ok and "api" in outcome.changed
        service = service_for(api.runtime)
        with trio.fail_after(10):
            while not service.urls[0].endswith(f":{new_port}"):
                await trio.sleep(0.02)
        async with httpx_client(service.urls[0]) as client:
            assert (await client.get("/api/v1/health")).status_code == 200
        # The old listener is gone once its requests finished.
        with trio.fail_after(10):
            while True:
                try:
                    async with httpx_client(old_url) as client:
                        await client.get("/api/v1/health")
                except httpx.ConnectError:
                    break
                await trio.sleep(0.05)

        # A port that is taken leaves the API where it is, and says why.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = taken.getsockname()[1]
            api.config_path.write_text(text.replace(f"port = {new_port}", f"port = {busy}"))
            assert (await api.runtime.reload()).ok
            with trio.fail_after(10):
                while "still serving on" not in caplog.text:
                    await trio.sleep(0.02)
            assert "already in use" in caplog.text
            assert service.urls[0].endswith(f":{new_port}")
            async with httpx_client(service.urls[0]) as client:
                assert (await client.get("/api/v1/health")).status_code == 200


def httpx_client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=5)
