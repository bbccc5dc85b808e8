"""Every route of the served OpenAPI document, and the WebSocket, against a couple of
dozen kinds of bad credentials, on a daemon that requires auth.

The routes come from ``GET /api/v1/openapi.json`` (whose completeness
``test_openapi.py`` checks against the app's url map), so a route added later is swept
without touching this file. Every bad credential must be refused with 401
``UNAUTHORIZED`` (never a 2xx, never a 5xx); the public routes (health, login, the
document) need no credentials, and must only never fail with a 5xx. Valid credentials of
the read scope must get 403 ``FORBIDDEN`` on every route that needs the trading scope
(those documenting 403: every write route, and the audit trail).

A trailing space is not among the header values: HTTP takes the spaces around a header
value as no part of it (RFC 9110, section 5.5), so the server sees the key itself. It is
swept where it survives, in the WebSocket's JSON ``auth`` message; over HTTP a key
followed by a non-breaking space stands in for it.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import jwt
import orjson
import pytest
import trio
from apitools import API_KEY, JWT_SECRET, READ_KEY, server_factory
from trio_websocket import ConnectionClosed, open_websocket_url

from arbotd import hash_password

# An HS512 token signed with the server's (HS256-sized) secret is one of the bad tokens.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

AUTH = """
auth_required = true
read_per_minute = 1000000
read_burst = 1000000
write_per_minute = 1000000
write_burst = 1000000
ws_per_minute = 1000000
ws_burst = 1000000
"""
PUBLIC = {("GET", "/api/v1/health"), ("GET", "/api/v1/openapi.json"),
          ("POST", "/api/v1/auth/login")}
READS_BY_POST = {("POST", "/api/v1/analytics/query")}
"""Operations that do not change state although their method is not GET."""
READER, TRADER, PASSWORD = "sweep-reader", "sweep-trader", "sweep password 1"


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(claims: dict[str, Any], *, secret: str = JWT_SECRET, algorithm: str = "HS256"
            ) -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


BAD_KEYS = {
    "wrong key": "wrong-key-0123456789",
    "prefix of a valid key": API_KEY[:-1],
    "valid key and one more character": API_KEY + "x",
    "valid key in upper case": API_KEY.upper(),
}


def bad_jwts(reader_token: str) -> dict[str, str]:
    """Tokens that must not authenticate, by what is wrong with them."""
    now = int(time.time())
    claims = {"sub": TRADER, "scope": "trading", "iat": now, "exp": now + 600}
    header, _, signature = reader_token.split(".")
    payload = jwt.decode(reader_token, options={"verify_signature": False})
    raised = _b64(orjson.dumps({**payload, "scope": "trading"}))
    return {
        "garbage token": "not-a-token",
        "garbage with two dots": "a.b.c",
        "expired JWT": _signed({**claims, "iat": now - 7200, "exp": now - 60}),
        "alg none": ".".join([_b64(orjson.dumps({"alg": "none", "typ": "JWT"})),
                              _b64(orjson.dumps(claims)), ""]),
        "wrong signature": _signed(claims, secret="w" * 40),
        "HS512 with the right secret": _signed(claims, algorithm="HS512"),
        "no exp": _signed({"sub": TRADER, "scope": "trading", "iat": now}),
        "no sub": _signed({"scope": "trading", "iat": now, "exp": now + 600}),
        "tampered payload (scope raised)": f"{header}.{raised}.{signature}",
        "future nbf": _signed({**claims, "nbf": now + 3600}),
        "unknown scope": _signed({**claims, "scope": "admin"}),
        "sub not a string": _signed({**claims, "sub": 42}),
    }


def bad_headers(reader_token: str, trader_token: str
                ) -> dict[str, list[tuple[str, str | bytes]]]:
    """Request headers that must not authenticate, by what is wrong with them."""
    basic = base64.b64encode(f"{TRADER}:{PASSWORD}".encode()).decode()
    cases: dict[str, list[tuple[str, str | bytes]]] = {"no credentials": []}
    cases |= {what: [("X-API-Key", key)] for what, key in BAD_KEYS.items()}
    cases |= {what: [("Authorization", f"Bearer {token}")]
              for what, token in bad_jwts(reader_token).items()}
    cases |= {
        "empty X-API-Key": [("X-API-Key", "")],
        "key and a non-breaking space": [("X-API-Key", API_KEY.encode() + b"\xa0")],
        "two X-API-Key headers, the valid one first": [("X-API-Key", API_KEY),
                                                       ("X-API-Key", "wrong")],
        "two Authorization headers, the valid one first": [
            ("Authorization", f"Bearer {trader_token}"), ("Authorization", "Bearer x.y.z")],
        "Basic auth": [("Authorization", f"Basic {basic}")],
        "empty Bearer": [("Authorization", "Bearer")],
        "Bearer with two tokens": [("Authorization", f"Bearer {trader_token} x")],
        "another scheme": [("Authorization", f"Token {trader_token}")],
        "API key as a Bearer token": [("Authorization", f"Bearer {API_KEY}")],
        "JWT as an API key": [("X-API-Key", trader_token)],
    }
    return cases


async def _document(client: httpx.AsyncClient) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, path, operation)`` of every operation served, path parameters as 1."""
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    operations = []
    for path, item in response.json()["paths"].items():
        for method, operation in item.items():
            concrete = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    concrete = concrete.replace("{" + parameter["name"] + "}", "1")
            operations.append((method.upper(), concrete, operation))
    return operations


def _body(method: str) -> bytes | None:
    # An empty object: a login refuses it at once (no password hashing per request).
    return None if method == "GET" else b"{}"


async def _login(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post("/api/v1/auth/login",
                                 json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def _sweep(client: httpx.AsyncClient, requests: list[tuple[str, str, str, Any]]
                 ) -> dict[tuple[str, str, str], httpx.Response]:
    """``(what, method, path, headers)`` requests, a few at a time, answered by key."""
    answers: dict[tuple[str, str, str], httpx.Response] = {}
    limiter = trio.CapacityLimiter(8)

    async def one(what: str, method: str, path: str, headers: Any) -> None:
        async with limiter:
            answers[what, method, path] = await client.request(
                method, path, headers=headers, content=_body(method))

    async with trio.open_nursery() as nursery:
        for request in requests:
            nursery.start_soon(one, *request)
    return answers


async def test_every_route_and_the_websocket_refuse_every_bad_credential(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        for name, scope in ((READER, "read"), (TRADER, "trading")):
            await api.runtime.storage.add_user(name, hash_password(PASSWORD), scope)
        reader_token, trader_token = await _login(client, READER), await _login(client, TRADER)
        operations = await _document(client)
        assert len(operations) >= 20
        cases = bad_headers(reader_token, trader_token)
        assert len(cases) >= 20
        with trio.fail_after(120):
            answers = await _sweep(client, [(what, method, path, headers)
                                            for what, headers in cases.items()
                                            for method, path, _ in operations])
        wrong = []
        for (what, method, path), response in answers.items():
            status = response.status_code
            if (method, path) in PUBLIC:
                if status >= 500:
                    wrong.append(f"{method} {path} with {what}: {status}")
            elif status != 401 or response.json()["error"]["code"] != "UNAUTHORIZED":
                wrong.append(f"{method} {path} with {what}: {status} {response.text[:120]}")
        assert not wrong, "\n".join(wrong)
        await _sweep_websocket(api, reader_token)


async def test_read_scope_is_refused_where_the_trading_scope_is_needed(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        await api.runtime.storage.add_user(READER, hash_password(PASSWORD), "read")
        reader_token = await _login(client, READER)
        operations = await _document(client)
        trading = {(method, path) for method, path, op in operations
                   if "403" in op["responses"] and (method, path) not in PUBLIC}
        writes = {(method, path) for method, path, _ in operations
                  if method != "GET" and (method, path) not in PUBLIC | READS_BY_POST}
        # A route that changes state and does not say it needs the trading scope is a
        # mistake in the route or in its document.
        assert writes <= trading, writes - trading
        assert ("GET", "/api/v1/audit") in trading
        readers = {"read-scope API key": [("X-API-Key", READ_KEY)],
                   "read-scope JWT": [("Authorization", f"Bearer {reader_token}")]}
        with trio.fail_after(60):
            answers = await _sweep(client, [(what, method, path, headers)
                                            for what, headers in readers.items()
                                            for method, path, _ in operations
                                            if (method, path) not in PUBLIC])
        wrong = []
        for (what, method, path), response in answers.items():
            status = response.status_code
            if (method, path) in trading:
                if status != 403 or response.json()["error"]["code"] != "FORBIDDEN":
                    wrong.append(f"{method} {path} with {what}: {status}, not 403")
            elif status in (401, 403) or (status >= 500 and status != 503):
                wrong.append(f"{method} {path} with {what}: {status} {response.text[:120]}")
        assert not wrong, "\n".join(wrong)


def _ws_url(api) -> str:
    return api.url.replace("http", "ws", 1) + "/api/v1/ws"


async def _ws_refusal(api, first_message: str) -> tuple[dict[str, Any], int]:
    """The error message and close code the WebSocket answers ``first_message`` with."""
    async with open_websocket_url(_ws_url(api)) as ws:
        await ws.send_message(first_message)
        error = orjson.loads(await ws.get_message())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        return error, closed.value.reason.code


async def _sweep_websocket(api, reader_token: str) -> None:
    """First messages with bad credentials: each is answered with an error and the socket
    closed with 1008 (policy violation)."""
    tokens: dict[str, Any] = {
        **BAD_KEYS,
        **bad_jwts(reader_token),
        "empty token": "",
        "key with a trailing space": API_KEY + " ",
        "key with a leading space": " " + API_KEY,
        "key with a trailing newline": API_KEY + "\n",
        "JWT with a trailing space": reader_token + " ",
        "Bearer and a token": f"Bearer {reader_token}",
        "token not a string": 12345,
        "token as a list": [API_KEY],
    }
    messages = {what: orjson.dumps({"type": "auth", "token": token}).decode()
                for what, token in tokens.items()}
    messages |= {
        "no token": '{"type": "auth"}',
        "no auth message, a subscription": '{"type": "subscribe", "channel": "prices"}',
        "key outside the auth message": orjson.dumps(
            {"type": "subscribe", "channel": "prices", "token": API_KEY}).decode(),
        "not JSON": API_KEY,
    }
    assert len(messages) >= 20
    wrong = []
    with trio.fail_after(60):
        for what, message in messages.items():
            error, code = await _ws_refusal(api, message)
            if error.get("type") != "error" or code != 1008 \
                    or error["error"]["code"] not in ("UNAUTHORIZED", "VALIDATION_ERROR"):
                wrong.append(f"{what}: {error} (close {code})")
    assert not wrong, "\n".join(wrong)
    # The endpoint lets the valid key in: the refusals above are the credentials'.
    async with open_websocket_url(_ws_url(api)) as ws:
        await ws.send_message(orjson.dumps({"type": "auth", "token": API_KEY}).decode())
        assert orjson.loads(await ws.get_message())["type"] == "authenticated"
