"""API keys and the JWT secret rotate by reload, through ``[daemon] secrets_file``: new
ones work and old ones stop at once; a secrets file that cannot be used keeps the old
ones and says why, never showing a value."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from apitools import API_KEY, server_factory

from arbotd import hash_password

AUTH = "auth_required = true\n"
PASSWORD = "correct horse battery"
OLD_KEY, NEW_KEY = "old-key-0123456789", "new-key-0123456789"
OLD_SECRET, NEW_SECRET = "o" * 40, "n" * 40


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    path = tmp_path / "arbotd.env"
    path.write_text(f"ARBOT_API_KEY={OLD_KEY}\nARBOT_JWT_SECRET={OLD_SECRET}\n")
    path.chmod(0o600)
    return path


async def status_code(client: httpx.AsyncClient, **headers: str) -> int:
    return (await client.get("/api/v1/status", headers=headers)).status_code


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


async def log_in(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login",
                                 json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_a_reload_brings_new_api_keys_and_jwt_secret(serve_api, secrets, caplog):
    caplog.set_level(logging.INFO)
    async with serve_api(AUTH, daemon=f'secrets_file = "{secrets}"') as api, \
            api.client() as client:
        storage: Any = api.runtime.storage
        await storage.add_user("alice", hash_password(PASSWORD), "trading")
        # The file wins over the environment the daemon started with.
        assert await status_code(client, **key(OLD_KEY)) == 200
        assert await status_code(client, **key(API_KEY)) == 401
        old_token = await log_in(client)
        assert await status_code(client, **old_token) == 200

        secrets.write_text(f"ARBOT_API_KEY={NEW_KEY}\nARBOT_JWT_SECRET={NEW_SECRET}\n")
        assert (await api.runtime.reload()).ok

        assert await status_code(client, **key(NEW_KEY)) == 200
        assert await status_code(client, **key(OLD_KEY)) == 401
        assert await status_code(client, **old_token) == 401
        assert await status_code(client, **await log_in(client)) == 200

        # A name deleted from the file is unset, not the environment's value again.
        secrets.write_text(f"ARBOT_JWT_SECRET={NEW_SECRET}\n")
        assert (await api.runtime.reload()).ok
        assert await status_code(client, **key(NEW_KEY)) == 401
        assert await status_code(client, **key(API_KEY)) == 401

    assert "new secrets in force" in caplog.text
    for value in (OLD_KEY, NEW_KEY, OLD_SECRET, NEW_SECRET):
        assert value not in caplog.text


@pytest.mark.parametrize("breakage", ["malformed", "missing", "short secret"])
async def test_an_unusable_secrets_file_keeps_the_old_secrets(serve_api, secrets, caplog,
                                                              breakage):
    async with serve_api(AUTH, daemon=f'secrets_file = "{secrets}"') as api, \
            api.client() as client:
        if breakage == "malformed":
            secrets.write_text(f"ARBOT_API_KEY={NEW_KEY}\nARBOT_JWT_SECRET {NEW_SECRET}\n")
        elif breakage == "missing":
            secrets.unlink()
        else:
            secrets.write_text(f"ARBOT_API_KEY={NEW_KEY}\nARBOT_JWT_SECRET=short\n")
        outcome = await api.runtime.reload()

        assert await status_code(client, **key(OLD_KEY)) == 200
        assert await status_code(client, **key(NEW_KEY)) == 401
        health = await client.get("/api/v1/health")
        if breakage == "short secret":
            # The file is well formed: the reload stands, the API keeps its old secrets.
            assert outcome.ok
            assert "ARBOT_JWT_SECRET must be at least 32 characters" in caplog.text
        else:
            assert not outcome.ok
            config = health.json()["checks"]["config"]
            assert config["status"] == "fail"
            reason = ("line 2: expected NAME=value" if breakage == "malformed"
                      else "secrets file not found")
            assert any(reason in problem["message"] for problem in config["problems"])
            assert str(secrets) in caplog.text
        for value in (OLD_KEY, NEW_KEY, OLD_SECRET, NEW_SECRET, "short"):
            assert value not in health.text
            if value != "short":
                assert value not in caplog.text
