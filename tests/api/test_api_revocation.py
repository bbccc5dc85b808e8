"""Tokens end with their user: ``arbotd user remove``, ``passwd``, ``revoke`` and
``scope``, run as other processes, stop a running daemon from honouring tokens issued
before, on the next request."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from apitools import assert_error, server_factory

from arbotd import hash_password
from arbotd_api.auth import USER_CHECK_SECONDS

AUTH = "auth_required = true\n"
PASSWORD = "correct horse battery"


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


async def log_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD
                 ) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login",
                                 json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def status_with(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/status", headers=headers)


async def arbotd_user(config: Path, *args: str, stdin: str = "") -> str:
    """``arbotd user ARGS -c CONFIG`` as its own process, while the daemon serves."""
    done = await trio.run_process(
        [sys.executable, "-m", "arbotd", "user", *args, "-c", str(config)],
        stdin=stdin.encode(), capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.mark.slow
async def test_user_commands_end_the_tokens_issued_before(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        storage: Any = api.runtime.storage
        for name in ("alice", "bob", "carol", "dave"):
            await storage.add_user(name, hash_password(PASSWORD), "trading")
        tokens = {name: await log_in(client, name) for name in ("alice", "bob", "carol",
                                                                  "dave")}
        for headers in tokens.values():
            assert (await status_with(client, headers)).status_code == 200

        await arbotd_user(api.config_path, "remove", "alice")
        await trio.sleep(USER_CHECK_SECONDS)  # what the daemon read before is stale now
        error = assert_error(await status_with(client, tokens["alice"]), 401, "UNAUTHORIZED")
        assert "revoked" in error["message"]
        assert_error(await client.post("/api/v1/auth/login", json={
            "username": "alice", "password": PASSWORD}), 401, "UNAUTHORIZED")

        out = await arbotd_user(api.config_path, "passwd", "bob",
                                stdin="a brand new password\n")
        assert "token generation 1" in out
        await trio.sleep(USER_CHECK_SECONDS)
        assert_error(await status_with(client, tokens["bob"]), 401, "UNAUTHORIZED")
        assert_error(await client.post("/api/v1/auth/login", json={
            "username": "bob", "password": PASSWORD}), 401, "UNAUTHORIZED")
        bob = await log_in(client, "bob", "a brand new password")
        assert (await status_with(client, bob)).status_code == 200

        await arbotd_user(api.config_path, "revoke", "carol")
        await trio.sleep(USER_CHECK_SECONDS)
        assert_error(await status_with(client, tokens["carol"]), 401, "UNAUTHORIZED")
        carol = await log_in(client, "carol")  # the user stays: a new login works
        assert (await status_with(client, carol)).status_code == 200

        await arbotd_user(api.config_path, "scope", "dave", "read")
        await trio.sleep(USER_CHECK_SECONDS)
        assert_error(await status_with(client, tokens["dave"]), 401, "UNAUTHORIZED")
        dave = await log_in(client, "dave")
        assert (await status_with(client, dave)).status_code == 200
        assert_error(await client.post("/api/v1/trading/stop", headers=dave),
                     403, "FORBIDDEN")

        listed = await arbotd_user(api.config_path, "list")
        rows = [line.split("\t") for line in listed.splitlines()]
        assert [(row[0], row[1], row[3]) for row in rows] == [
            ("bob", "trading", "token generation 1"),
            ("carol", "trading", "token generation 1"),
            ("dave", "read", "token generation 0"),
        ]


async def test_a_token_scope_never_exceeds_the_user_current_scope(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        storage: Any = api.runtime.storage
        await storage.add_user("alice", hash_password(PASSWORD), "trading")
        trading = await log_in(client, "alice")
        assert (await client.post("/api/v1/trading/stop", headers=trading)).status_code == 200

        await storage.set_scope("alice", "read")
        await trio.sleep(USER_CHECK_SECONDS)
        error = assert_error(await status_with(client, trading), 401, "UNAUTHORIZED")
        assert error["details"] == {"scope": "read"}

        read = await log_in(client, "alice")
        assert (await status_with(client, read)).status_code == 200
        await storage.set_scope("alice", "trading")
        await trio.sleep(USER_CHECK_SECONDS)
        # A read token stays a read token when the user's scope goes up.
        assert (await status_with(client, read)).status_code == 200
        assert_error(await client.post("/api/v1/trading/stop", headers=read),
                     403, "FORBIDDEN")


async def test_a_user_added_again_does_not_inherit_the_old_tokens(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        storage: Any = api.runtime.storage
        await storage.add_user("alice", hash_password(PASSWORD), "trading")
        old = await log_in(client, "alice")
        issued = int(time.time())
        await storage.remove_user("alice")
        while int(time.time()) <= issued:  # tokens carry whole seconds
            await trio.sleep(0.05)
        await storage.add_user("alice", hash_password(PASSWORD), "trading")
        await trio.sleep(USER_CHECK_SECONDS)
        assert_error(await status_with(client, old), 401, "UNAUTHORIZED")
        assert (await status_with(client, await log_in(client, "alice"))).status_code == 200


async def test_a_revoked_token_cannot_open_a_websocket(serve_api):
    from arbotd.client import Unauthorized, open_subscription

    async with serve_api(AUTH) as api, api.client() as client:
        storage: Any = api.runtime.storage
        await storage.add_user("alice", hash_password(PASSWORD), "read")
        token = (await log_in(client, "alice"))["Authorization"].removeprefix("Bearer ")
        await storage.revoke_tokens("alice")
        await trio.sleep(USER_CHECK_SECONDS)
        with pytest.raises(Unauthorized) as refused:
            async with open_subscription(api.url, channels=["prices"], token=token):
                pass
        assert "revoked" in str(refused.value)
