"""``POST /api/v1/auth/login`` on a running daemon: the per-account back-off, whatever
address the guesses come from (clients bound to 127.0.0.2, 127.0.0.3 ...), form-encoded
bodies, and the log of logins."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from apitools import assert_error, server_factory

from arbotd import hash_password

PASSWORD = "correct horse battery"
# Three free failures, then a lock far longer than any test takes.
BACKOFF = """
login_failures_allowed = 3
login_backoff_seconds = 120.0
"""


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


async def add_user(api: Any, name: str, scope: str = "trading") -> None:
    await api.runtime.storage.add_user(name, hash_password(PASSWORD), scope)


@asynccontextmanager
async def from_address(api: Any, address: str):
    """A client whose connections come from ``address`` (any of 127.0.0.0/8)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with api.client(transport=transport) as client:
        yield client


async def login(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login",
                              json={"username": name, "password": password})


async def test_failures_lock_the_name_whatever_address_they_come_from(serve_api):
    async with serve_api(BACKOFF) as api:
        await add_user(api, "alice")
        await add_user(api, "bob")
        for n in range(3):
            async with from_address(api, f"127.0.0.{2 + n}") as client:
                assert_error(await login(client, "alice", f"guess-{n}"), 401, "UNAUTHORIZED")

        async with from_address(api, "127.0.0.9") as client:
            # Refused before the password is looked at: even the right one.
            response = await login(client, "alice", PASSWORD)
            error = assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
            retry_after = int(response.headers["Retry-After"])
            assert 1 <= retry_after <= 120
            assert error["details"] == {"retry_after": retry_after, "type": "login"}
            assert response.headers["X-RateLimit-Remaining"] == "0"
            assert int(response.headers["X-RateLimit-Reset"]) >= time.time()
            assert response.headers["X-RateLimit-Type"] == "requests"

            # Another name from the same address is not held back.
            assert (await login(client, "bob", PASSWORD)).status_code == 200


async def test_a_success_forgets_the_failures(serve_api):
    async with serve_api(BACKOFF) as api, api.client() as client:
        await add_user(api, "alice")
        for _ in range(2):
            assert_error(await login(client, "alice", "wrong"), 401, "UNAUTHORIZED")
        assert (await login(client, "alice", PASSWORD)).status_code == 200
        # Counting starts again: three more failures before the lock.
        for _ in range(3):
            assert_error(await login(client, "alice", "wrong"), 401, "UNAUTHORIZED")
        assert_error(await login(client, "alice", PASSWORD), 429, "RATE_LIMIT_EXCEEDED")


async def test_unknown_names_get_the_same_answers(serve_api):
    async with serve_api(BACKOFF) as api:
        await add_user(api, "alice")
        answers: dict[str, list[tuple[int, str, dict]]] = {}
        for name in ("alice", "ghost"):
            answers[name] = []
            for n in range(4):
                async with from_address(api, f"127.0.0.{10 + n}") as client:
                    response = await login(client, name, "wrong")
                error = response.json()["error"]
                details = {k: v for k, v in error["details"].items() if k != "retry_after"}
                answers[name].append((response.status_code, error["message"], details))
        assert answers["alice"] == answers["ghost"]
        assert [status for status, _, _ in answers["ghost"]] == [401, 401, 401, 429]


async def test_a_form_encoded_login(serve_api):
    # The API reference's example: requests.post(url, {'username': ..., 'password': ...})
    async with serve_api("auth_required = true\n") as api, api.client() as client:
        await add_user(api, "admin", "read")
        response = await client.post("/api/v1/auth/login",
                                     data={"username": "admin", "password": PASSWORD})
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        status = await client.get("/api/v1/status",
                                  headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200

        wrong = await client.post("/api/v1/auth/login",
                                  data={"username": "admin", "password": "nope"})
        assert_error(wrong, 401, "UNAUTHORIZED")
        twice = await client.post(
            "/api/v1/auth/login", content=b"username=admin&username=x&password=y",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert assert_error(twice, 400, "VALIDATION_ERROR")["details"] == {"field": "username"}
        missing = await client.post("/api/v1/auth/login", data={"username": "admin"})
        assert_error(missing, 400, "VALIDATION_ERROR")


async def test_logins_are_logged_without_the_password(serve_api, caplog):
    caplog.set_level(logging.INFO)
    async with serve_api(BACKOFF) as api:
        await add_user(api, "alice")
        async with from_address(api, "127.0.0.3") as client:
            assert (await login(client, "alice", PASSWORD)).status_code == 200
            for n in range(3):
                await login(client, "alice", f"hunter{n}-guess")
            for _ in range(5):  # refused while locked
                assert (await login(client, "alice", "hunter9-guess")).status_code == 429
            await login(client, "nobody", "hunter7-guess")

    records = [r for r in caplog.records if r.name == "arbotd_api.logins"]
    lines = [(r.levelno, r.getMessage()) for r in records]
    assert lines[0][0] == logging.INFO
    assert "'alice'" in lines[0][1] and "127.0.0.3" in lines[0][1]
    failures = [message for level, message in lines if level == logging.WARNING]
    assert len(failures) == 4  # three for alice, one for nobody: none per refused attempt
    assert all("127.0.0.3" in message for message in failures)
    assert "'alice'" in failures[0] and "wrong password" in failures[0]
    assert "locked" in failures[2] and "120 s" in failures[2]
    assert sum("locked" in message for message in failures) == 1
    assert "'nobody'" in failures[3] and "no such user" in failures[3]
    assert "hunter" not in caplog.text
    assert PASSWORD not in caplog.text
