"""Authentication, scopes and rate limits on a running daemon."""

from __future__ import annotations

import time

import jwt
import pytest
from apitools import API_KEY, JWT_SECRET, READ_KEY, assert_error, server_factory

from arbotd import hash_password

AUTH = """
auth_required = true
"""

READ_ROUTES = [
    ("GET", "/api/v1/status"), ("GET", "/api/v1/trading/config"),
    ("GET", "/api/v1/prices/current"), ("GET", "/api/v1/spreads/current"),
    ("GET", "/api/v1/balances"), ("GET", "/api/v1/risk/limits"),
]
WRITE_ROUTES = [
    ("POST", "/api/v1/trading/start"), ("POST", "/api/v1/trading/stop"),
    ("PUT", "/api/v1/trading/config"), ("POST", "/api/v1/risk/emergency-stop"),
]


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


class Users:
    """A storage backend's user table, as :class:`arbotd.UserStore` describes it."""

    def __init__(self) -> None:
        self.users = {"admin": {"username": "admin", "password_hash": hash_password("pw"),
                                "scope": "trading", "created_at": 0.0,
                                "token_generation": 0},
                      "viewer": {"username": "viewer", "password_hash": hash_password("v"),
                                 "scope": "read", "created_at": 0.0,
                                 "token_generation": 0}}

    async def add_user(self, username, password_hash, scope):
        raise NotImplementedError

    async def list_users(self):
        return list(self.users.values())

    async def get_user(self, username):
        return self.users.get(username)

    async def remove_user(self, username):
        del self.users[username]

    async def set_password(self, username, password_hash):
        raise NotImplementedError

    async def revoke_tokens(self, username):
        self.users[username]["token_generation"] += 1
        return self.users[username]["token_generation"]

    async def set_scope(self, username, scope):
        self.users[username]["scope"] = scope

    # Installed in place of the (absent) storage backend, so the daemon closes it.
    async def close(self):
        pass

    def backlog(self):
        return 0


async def test_nothing_but_health_and_login_without_credentials(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        for method, path in READ_ROUTES + WRITE_ROUTES:
            response = await client.request(method, path, json={})
            assert_error(response, 401, "UNAUTHORIZED")
            assert response.headers["X-RateLimit-Type"] == "requests"
        assert (await client.get("/api/v1/health")).status_code == 200
        assert_error(await client.post("/api/v1/auth/login", json={"username": "a",
                                                                  "password": "b"}),
                     401, "UNAUTHORIZED")  # no user store: but it answers


async def test_api_keys_and_scopes(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        trading = {"X-API-Key": API_KEY}
        read = {"X-API-Key": READ_KEY}
        for method, path in READ_ROUTES:
            assert (await client.request(method, path, headers=read)).status_code == 200
        for method, path in WRITE_ROUTES:
            assert_error(await client.request(method, path, headers=read, json={}),
                         403, "FORBIDDEN")
        assert (await client.post("/api/v1/trading/stop", headers=trading)).status_code == 200
        assert_error(await client.get("/api/v1/status", headers={"X-API-Key": "wrong"}),
                     401, "UNAUTHORIZED")
        assert_error(await client.get("/api/v1/status", headers={"Authorization": "Basic x"}),
                     401, "UNAUTHORIZED")


async def test_jwt_login_expiry_and_tampering(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        api.runtime.storage = Users()
        response = await client.post("/api/v1/auth/login",
                                     json={"username": "admin", "password": "pw"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        assert body["scope"] == "trading"
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        assert (await client.get("/api/v1/status", headers=bearer)).status_code == 200
        assert (await client.post("/api/v1/trading/stop", headers=bearer)).status_code == 200

        viewer = (await client.post("/api/v1/auth/login",
                                    json={"username": "viewer", "password": "v"})).json()
        headers = {"Authorization": f"Bearer {viewer['access_token']}"}
        assert_error(await client.post("/api/v1/trading/stop", headers=headers),
                     403, "FORBIDDEN")

        for credentials in ({"username": "admin", "password": "bad"},
                            {"username": "ghost", "password": "pw"}):
            assert_error(await client.post("/api/v1/auth/login", json=credentials),
                         401, "UNAUTHORIZED")
        assert_error(await client.post("/api/v1/auth/login", json={"username": 1}),
                     400, "VALIDATION_ERROR")

        expired = jwt.encode({"sub": "admin", "scope": "trading", "gen": 0,
                              "iat": int(time.time()) - 3600, "exp": time.time() - 5},
                             JWT_SECRET, algorithm="HS256")
        error = assert_error(await client.get(
            "/api/v1/status", headers={"Authorization": f"Bearer {expired}"}),
            401, "UNAUTHORIZED")
        assert error["message"] == "Token expired"
        forged = jwt.encode({"sub": "admin", "scope": "trading", "gen": 0,
                             "iat": int(time.time()), "exp": time.time() + 60},
                            "x" * 40, algorithm="HS256")
        assert_error(await client.get("/api/v1/status",
                                      headers={"Authorization": f"Bearer {forged}"}),
                     401, "UNAUTHORIZED")


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/nope"])
async def test_rate_limit_headers_and_429(serve_api, path):
    async with serve_api("read_per_minute = 60\nread_burst = 3\n") as api, \
            api.client() as client:
        remaining = []
        for _ in range(3):
            response = await client.get(path)
            assert response.headers["X-RateLimit-Limit"] == "60"
            assert response.headers["X-RateLimit-Type"] == "requests"
            assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == [2, 1, 0]
        response = await client.get(path)
        error = assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert error["details"]["type"] == "read"
        # Writes have their own bucket.
        assert (await client.post("/api/v1/trading/stop")).status_code == 200


async def test_rate_limit_per_client(serve_api):
    async with serve_api("auth_required = true\nread_per_minute = 60\nread_burst = 1\n"
                         ) as api, api.client() as client:
        assert (await client.get("/api/v1/status", headers={"X-API-Key": API_KEY})
                ).status_code == 200
        assert (await client.get("/api/v1/status", headers={"X-API-Key": READ_KEY})
                ).status_code == 200
        assert_error(await client.get("/api/v1/status", headers={"X-API-Key": API_KEY}),
                     429, "RATE_LIMIT_EXCEEDED")
