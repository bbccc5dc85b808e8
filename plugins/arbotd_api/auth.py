"""Who is asking: API keys and JWTs, and the two scopes.

API keys come from the secret ``[api] api_keys_env`` names (default ``ARBOT_API_KEY``):
one or more keys separated by commas, each optionally followed by ``:read`` or
``:trading`` (no suffix: ``trading``). Keys are compared in constant time.

JWTs are HS256, signed with the secret in ``[api] jwt_secret_env`` (default
``ARBOT_JWT_SECRET``), issued by ``POST /api/v1/auth/login`` to users of the storage
backend's user table; they carry ``sub`` (the user), ``scope``, ``gen`` (the user's token
generation), ``iat`` and ``exp``. Without a secret, login answers that JWT is not
configured. Both secrets are read with :func:`arbotd.secret_from_env`, so a reload that
brings a new secrets file brings new keys (:meth:`Credentials.same_secrets` tells).

A valid signature is not enough: on every request (and WebSocket ``auth``) the token's
user must still exist, created no later than the token was issued (a user removed and
added again does not inherit the old one's tokens), with the token's generation (a new
password or ``arbotd user revoke`` raises it) and a scope at least the token's
(:class:`TokenUsers`). Users are looked up at most every :data:`USER_CHECK_SECONDS` per
user, so that ``arbotd user`` commands, run as other processes, take effect at once.

The scrape token, from the secret ``[api] metrics_token_env`` names (default
``ARBOT_METRICS_TOKEN``; unset: none), is sent as ``Authorization: Bearer <token>`` by
Prometheus and opens ``GET /metrics`` only, with the read scope; elsewhere it is a wrong
token like any other.

Scopes: ``read`` may use every read endpoint; ``trading`` may also use write endpoints.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import attrs
import jwt

from arbotd import ArbotError, UserStore, secret_from_env
from arbotd.exchange import ProblemLog
from arbotd_api.errors import ApiError

__all__ = [
    "SCOPES",
    "USER_CHECK_SECONDS",
    "Credentials",
    "Principal",
    "TokenClaims",
    "TokenUsers",
    "parse_api_keys",
]

log = logging.getLogger(__name__)

SCOPES = ("read", "trading")
_ALGORITHM = "HS256"
# HS256 keys shorter than this are refused: a short secret can be brute-forced offline
# from any token.
MIN_SECRET_LENGTH = 32
USER_CHECK_SECONDS = 0.25
"""How long a user looked up for a token's check is taken as current: a user removed,
or whose tokens were revoked, by another process is refused within this time. A lookup
is a read in a worker thread (a few hundred microseconds); one per user this often costs
nothing measurable, one per request would."""
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}


@attrs.frozen
class TokenClaims:
    """What a valid JWT says: its user, scope, the user's token generation when it was
    issued, and when it was issued (epoch seconds)."""

    user: str
    scope: str
    generation: int
    issued_at: int


@attrs.frozen
class Principal:
    """An authenticated client. ``client_id`` keys its rate limits (never the secret);
    ``token`` holds a JWT's claims."""

    client_id: str
    scope: str
    method: str  # "api_key", "jwt" or "anonymous"
    token: TokenClaims | None = None

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
    """The API keys and the JWT secret, read when the server starts and at every reload;
    and the check of tokens' users (:class:`TokenUsers`)."""

    def __init__(self, api_keys: list[tuple[str, str]], jwt_secret: str | None,
                 jwt_lifetime: int, users: TokenUsers | None = None,
                 scrape_token: str | None = None) -> None:
        self._keys = [(key.encode(), scope, _fingerprint(key)) for key, scope in api_keys]
        self.jwt_secret = jwt_secret
        self.jwt_lifetime = jwt_lifetime
        self.users = users if users is not None else TokenUsers()
        self._scrape_token = scrape_token.encode() if scrape_token else None

    @classmethod
    def from_env(cls, api_keys_env: str, jwt_secret_env: str, jwt_lifetime: int,
                 users: TokenUsers | None = None, metrics_token_env: str = "") -> Credentials:
        """The secrets as :func:`arbotd.secret_from_env` finds them now. Raises
        ``ValueError`` naming the variable (never its value) when a key is malformed or
        the JWT secret too short."""
        try:
            keys = parse_api_keys(secret_from_env(api_keys_env))
        except ValueError as err:
            raise ValueError(f"${api_keys_env}: {err}") from None
        secret = secret_from_env(jwt_secret_env)
        if secret is not None and len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"${jwt_secret_env} must be at least {MIN_SECRET_LENGTH} characters long "
                "(make one with: openssl rand -hex 32)"
            )
        return cls(keys, secret, jwt_lifetime, users, secret_from_env(metrics_token_env))

    @property
    def any_configured(self) -> bool:
        return bool(self._keys) or self.jwt_secret is not None

    def same_secrets(self, other: Credentials) -> bool:
        """Whether ``other`` holds the same API keys (and scopes), JWT secret and scrape
        token."""
        mine = sorted((fingerprint, scope) for _, scope, fingerprint in self._keys)
        theirs = sorted((fingerprint, scope) for _, scope, fingerprint in other._keys)
        return (mine == theirs and self.jwt_secret == other.jwt_secret
                and self._scrape_token == other._scrape_token)

    def describe(self) -> str:
        """What is configured, for the log: counts, never a secret."""
        keys = len(self._keys)
        return (f"{keys} API key{'s' * (keys != 1)}, JWT login "
                f"{'on' if self.jwt_secret is not None else 'off'}"
                + (", a scrape token for /metrics" if self._scrape_token else ""))

    def check_scrape_token(self, authorization: str) -> Principal | None:
        """The scrape principal when ``authorization`` is ``Bearer <the scrape token>``
        (compared in constant time), else ``None``."""
        scheme, _, token = authorization.partition(" ")
        if self._scrape_token is None or scheme.lower() != "bearer":
            return None
        if hmac.compare_digest(token.strip().encode(), self._scrape_token):
            return Principal("scrape", "read", "scrape_token")
        return None

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

    def issue_token(self, username: str, scope: str, generation: int,
                    now: float | None = None) -> dict[str, Any]:
        if self.jwt_secret is None:
            raise ApiError("UNAUTHORIZED", "JWT login is not configured on this server")
        issued = int(now if now is not None else time.time())
        claims = {"sub": username, "scope": scope, "gen": generation, "iat": issued,
                  "exp": issued + self.jwt_lifetime}
        token = jwt.encode(claims, self.jwt_secret, algorithm=_ALGORITHM)
        return {"access_token": token, "token_type": "bearer",
                "expires_in": self.jwt_lifetime, "scope": scope}

    def check_token(self, token: str) -> Principal:
        """The principal of a token signed with the secret and not expired (its user is
        checked by :meth:`authenticate`)."""
        if self.jwt_secret is None:
            raise ApiError("UNAUTHORIZED", "JWT authentication is not configured")
        try:
            claims = jwt.decode(token, self.jwt_secret, algorithms=[_ALGORITHM],
                                options={"require": ["exp", "iat", "sub", "gen"]})
        except jwt.ExpiredSignatureError:
            raise ApiError("UNAUTHORIZED", "Token expired") from None
        except jwt.PyJWTError:
            raise ApiError("UNAUTHORIZED", "Invalid token") from None
        scope, user = claims.get("scope"), claims["sub"]
        generation, issued = claims["gen"], claims["iat"]
        if (scope not in SCOPES or not isinstance(user, str)
                or not _is_count(generation) or not _is_count(issued)):
            raise ApiError("UNAUTHORIZED", "Invalid token")
        return Principal(f"user:{user}", scope, "jwt",
                         TokenClaims(user, scope, generation, issued))

    async def check_token_or_key(self, token: str, storage: Any) -> Principal:
        """A WebSocket ``auth`` message carries either a JWT or an API key."""
        if token.count(".") == 2 and self.jwt_secret is not None:
            principal = self.check_token(token)
            assert principal.token is not None
            await self.users.confirm(principal.token, storage)
            return principal
        return self.check_api_key(token)

    async def authenticate(self, headers: Any, storage: Any, *, scrape: bool = False
                           ) -> Principal | None:
        """The principal of a request's credentials, ``None`` without any; raises
        ``UNAUTHORIZED`` for wrong ones, a JWT's user included (``storage`` keeps the
        users), and for a header given twice (which of the two counts is not for the
        client to leave open). With both headers, the key counts. ``scrape``: the route
        also takes the scrape token."""
        for name in ("X-API-Key", "Authorization"):
            if len(headers.getlist(name)) > 1:
                raise ApiError("UNAUTHORIZED", f"{name} is given more than once")
        key = headers.get("X-API-Key")
        if key:
            return self.check_api_key(key)
        authorization = headers.get("Authorization", "")
        if scrape and (scraper := self.check_scrape_token(authorization)) is not None:
            return scraper
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError("UNAUTHORIZED", "Authorization must be 'Bearer <token>'")
            principal = self.check_token(token.strip())
            assert principal.token is not None
            await self.users.confirm(principal.token, storage)
            return principal
        return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@attrs.frozen
class _UserNow:
    """What a token's check needs of a user, as last read."""

    scope: str
    generation: int
    created_at: float


class TokenUsers:
    """Checks that a token's user still stands behind it, reading each user at most every
    :data:`USER_CHECK_SECONDS`. Only users named by tokens with a valid signature are
    kept, and only that long, so nobody without the secret can make it grow."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: dict[str, tuple[float, _UserNow | None]] = {}
        self._problems = ProblemLog("API", log)

    async def confirm(self, token: TokenClaims, storage: Any) -> None:
        """Return when the token's user exists with the token's generation, was created
        before the token was issued, and has a scope at least the token's; else raise
        ``UNAUTHORIZED`` (or ``STORAGE_NOT_AVAILABLE`` when the users cannot be read)."""
        now = self.clock()
        seen = self._seen.get(token.user)
        if seen is None or now - seen[0] >= USER_CHECK_SECONDS:
            seen = (now, await self._read(token.user, storage))
            if len(self._seen) >= 1024:
                self._forget_old(now)
            self._seen[token.user] = seen
        user = seen[1]
        if user is None or token.issued_at < math.floor(user.created_at):
            raise ApiError("UNAUTHORIZED", "Token revoked: its user no longer exists")
        if token.generation != user.generation:
            raise ApiError("UNAUTHORIZED", "Token revoked: log in again")
        if _RANK[token.scope] > _RANK.get(user.scope, -1):
            raise ApiError("UNAUTHORIZED", "Token revoked: the user's scope is now "
                           f"{user.scope}; log in again", {"scope": user.scope})

    async def _read(self, username: str, storage: Any) -> _UserNow | None:
        if not isinstance(storage, UserStore):
            raise ApiError("UNAUTHORIZED", "JWTs need a storage backend that keeps users")
        try:
            user = await storage.get_user(username)
        except ArbotError as err:
            self._problems.warning("users", "cannot check a token's user: %s", err)
            raise ApiError("STORAGE_NOT_AVAILABLE",
                           "Cannot check the token's user: the user database did not "
                           "answer") from None
        if user is None:
            return None
        return _UserNow(user["scope"], int(user.get("token_generation", 0)),
                        float(user["created_at"]))

    def _forget_old(self, now: float) -> None:
        for name in [n for n, (read, _) in self._seen.items()
                     if now - read >= USER_CHECK_SECONDS]:
            del self._seen[name]

    def __len__(self) -> int:
        return len(self._seen)
