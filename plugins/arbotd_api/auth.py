"""Who is asking: API keys and JWTs, and the two scopes.

API keys come from the environment variable ``[api] api_keys_env`` names (default
``ARBOT_API_KEY``): one or more keys separated by commas, each optionally followed by
``:read`` or ``:trading`` (no suffix: ``trading``). Keys are compared in constant time.

JWTs are HS256, signed with the secret in ``[api] jwt_secret_env`` (default
``ARBOT_JWT_SECRET``), issued by ``POST /api/v1/auth/login`` to users of the storage
backend's user table; they carry ``sub`` (the user), ``scope`` and ``exp``. Without a
secret, login answers that JWT is not configured.

Scopes: ``read`` may use every read endpoint; ``trading`` may also use write endpoints.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any

import attrs
import jwt

from arbotd_api.errors import ApiError

__all__ = ["SCOPES", "Credentials", "Principal", "parse_api_keys"]

SCOPES = ("read", "trading")
_ALGORITHM = "HS256"
# HS256 keys shorter than this are refused: a short secret can be brute-forced offline
# from any token.
MIN_SECRET_LENGTH = 32


@attrs.frozen
class Principal:
    """An authenticated client. ``client_id`` keys its rate limits (never the secret)."""

    client_id: str
    scope: str
    method: str  # "api_key", "jwt" or "anonymous"

    @property
    def may_trade(self) -> bool:
        return self.scope == "trading"


def parse_api_keys(value: str | None) -> list[tuple[str, str]]:
    """``"k1,k2:read"`` → ``[("k1", "trading"), ("k2", "read")]``. Raises
    ``ValueError`` naming the position (never the key) of a malformed entry."""
    keys: list[tuple[str, str]] = []
    for index, item in enumerate((value or "").split(","), start=1):
        item = item.strip()
        if not item:
            continue
        key, sep, scope = item.rpartition(":")
        if not sep or scope not in SCOPES:
            key, scope = item, "trading"
        if not key:
            raise ValueError(f"API key {index} is empty")
        keys.append((key, scope))
    return keys


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Credentials:
    """The secrets read from the environment once, when the server starts."""

    def __init__(self, api_keys: list[tuple[str, str]], jwt_secret: str | None,
                 jwt_lifetime: int) -> None:
        self._keys = [(key.encode(), scope, _fingerprint(key)) for key, scope in api_keys]
        self.jwt_secret = jwt_secret
        self.jwt_lifetime = jwt_lifetime

    @classmethod
    def from_env(cls, api_keys_env: str, jwt_secret_env: str, jwt_lifetime: int
                 ) -> Credentials:
        try:
            keys = parse_api_keys(os.environ.get(api_keys_env))
        except ValueError as err:
            raise ValueError(f"${api_keys_env}: {err}") from None
        secret = os.environ.get(jwt_secret_env) or None
        if secret is not None and len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"${jwt_secret_env} must be at least {MIN_SECRET_LENGTH} characters long "
                "(make one with: openssl rand -hex 32)"
            )
        return cls(keys, secret, jwt_lifetime)

    @property
    def any_configured(self) -> bool:
        return bool(self._keys) or self.jwt_secret is not None

    def check_api_key(self, presented: str) -> Principal:
        given = presented.encode()
        found: Principal | None = None
        # Compare against every key, so the time taken does not tell which one matched.
        for key, scope, fingerprint in self._keys:
            if hmac.compare_digest(given, key) and found is None:
                found = Principal(f"key:{fingerprint}", scope, "api_key")
        if found is None:
            raise ApiError("UNAUTHORIZED", "Invalid API key")
        return found

    def issue_token(self, username: str, scope: str, now: float | None = None
                    ) -> dict[str, Any]:
        if self.jwt_secret is None:
            raise ApiError("UNAUTHORIZED", "JWT login is not configured on this server")
        issued = int(now if now is not None else time.time())
        claims = {"sub": username, "scope": scope, "iat": issued,
                  "exp": issued + self.jwt_lifetime}
        token = jwt.encode(claims, self.jwt_secret, algorithm=_ALGORITHM)
        return {"access_token": token, "token_type": "bearer",
                "expires_in": self.jwt_lifetime, "scope": scope}

    def check_token(self, token: str) -> Principal:
        if self.jwt_secret is None:
            raise ApiError("UNAUTHORIZED", "JWT authentication is not configured")
        try:
            claims = jwt.decode(token, self.jwt_secret, algorithms=[_ALGORITHM],
                                options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise ApiError("UNAUTHORIZED", "Token expired") from None
        except jwt.PyJWTError:
            raise ApiError("UNAUTHORIZED", "Invalid token") from None
        scope = claims.get("scope")
        if scope not in SCOPES or not isinstance(claims["sub"], str):
            raise ApiError("UNAUTHORIZED", "Invalid token")
        return Principal(f"user:{claims['sub']}", scope, "jwt")

    def check_token_or_key(self, token: str) -> Principal:
        """A WebSocket ``auth`` message carries either a JWT or an API key."""
        if token.count(".") == 2 and self.jwt_secret is not None:
            return self.check_token(token)
        return self.check_api_key(token)

    def authenticate(self, headers: Any) -> Principal | None:
        """The principal of a request's credentials, ``None`` without any; raises
        ``UNAUTHORIZED`` for wrong ones, and for a header given twice (which of the two
        counts is not for the client to leave open). With both headers, the key counts."""
        for name in ("X-API-Key", "Authorization"):
            if len(headers.getlist(name)) > 1:
                raise ApiError("UNAUTHORIZED", f"{name} is given more than once")
        key = headers.get("X-API-Key")
        if key:
            return self.check_api_key(key)
        authorization = headers.get("Authorization", "")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError("UNAUTHORIZED", "Authorization must be 'Bearer <token>'")
            return self.check_token(token.strip())
        return None
