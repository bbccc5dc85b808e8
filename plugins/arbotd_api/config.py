"""``[api]``: the REST/WebSocket server, its authentication and its rate limits.

Secrets never come from this table: ``api_keys_env`` and ``jwt_secret_env`` name the
environment variables that hold them.

Rate limits are token buckets per client (API key, else JWT user, else IP address) and
endpoint type. ``rate_limit`` is the reference's single number: write requests per minute,
and read requests get ten times as many (the reference's defaults, 100 and 1000). The
explicit ``read_per_minute``/``write_per_minute`` override it when not 0.

Logins also back off per user name, whatever address they come from
(:mod:`arbotd_api.logins`): ``login_failures_allowed`` failures in a row are free, then
each failure locks the name for ``login_backoff_seconds``, doubling up to
``login_backoff_max_seconds``.
"""

from __future__ import annotations

import ipaddress
import os

import attrs

from arbotd import one_way, setting
from arbotd_api.logins import LoginPolicy

__all__ = ["ApiConfig", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_origins(origins: list[str]) -> str | None:
    bad = [o for o in origins if o != "*" and not o.startswith(("http://", "https://"))]
    if bad:
        return f'origins are written like "https://dashboard.example.com", got {bad[0]!r}'
    return None


def _host_may_change(old: str, new: str) -> str | None:
    """On reload the API may move to a loopback address; any other address could widen
    who reaches it, which only a restart may do."""
    if is_loopback(new):
        return None
    return "a reload may move the API only to a loopback address"


def _tls_may_change(old: str, new: str) -> str | None:
    """On reload a certificate may be added or replaced, not removed: TLS off would send
    keys and tokens in clear."""
    return None if new else "a reload may not turn TLS off"


def _check_proxies(proxies: list[str]) -> str | None:
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            return ('trusted_proxies are IP addresses or networks, like "127.0.0.1" or '
                    f'"10.0.0.0/8", got {proxy!r}')
    return None


def _check_env_name(name: str) -> str | None:
    if not name or not name.replace("_", "").isalnum():
        return f"expected the name of an environment variable, got {name!r}"
    return None


@attrs.frozen
class ApiConfig:
    """Nothing here may be changed through the API. A reload applies limits, CORS, the
    port and the certificate; it refuses (until a restart) to turn authentication or TLS
    off, to widen the address, or to change the secrets' variables."""

    # The server is started, or not, at start.
    enabled: bool = setting(True, reload="restart")
    host: str = setting("127.0.0.1", reload=_host_may_change)
    # 0 picks a free port (tests); the bound address is logged.
    port: int = setting(8080, ge=0, le=65535)
    cors_enabled: bool = setting(False)
    cors_origins: list[str] = setting(factory=list, check=_check_origins)
    rate_limit: int = setting(100, ge=1)
    read_per_minute: int = setting(0, ge=0)
    read_burst: int = setting(50, ge=1)
    write_per_minute: int = setting(0, ge=0)
    write_burst: int = setting(10, ge=1)
    ws_per_minute: int = setting(10, ge=1)
    ws_burst: int = setting(3, ge=1)
    auth_required: bool = setting(False, reload=one_way(True))
    allow_public_without_auth: bool = setting(False, reload=one_way(False))
    # Reverse proxies whose X-Forwarded-For names the client (audit source, rate limits):
    # who may choose the address recorded, so it changes only at a restart.
    trusted_proxies: list[str] = setting(factory=list, check=_check_proxies,
                                         reload="restart")
    ssl_cert: str = setting("", reload=_tls_may_change)
    ssl_key: str = setting("", reload=_tls_may_change)
    jwt_lifetime_seconds: int = setting(3600, ge=60, le=30 * 86400)
    api_keys_env: str = setting("ARBOT_API_KEY", check=_check_env_name, reload="restart")
    jwt_secret_env: str = setting("ARBOT_JWT_SECRET", check=_check_env_name,
                                  reload="restart")
    # The scrape token that opens GET /metrics (only) to Prometheus when auth is on.
    metrics_token_env: str = setting("ARBOT_METRICS_TOKEN", check=_check_env_name,
                                     reload="restart")
    login_failures_allowed: int = setting(5, ge=1, le=1000)
    login_backoff_seconds: float = setting(1.0, gt=0, le=86_400)
    login_backoff_max_seconds: float = setting(900.0, gt=0, le=7 * 86_400)
    # A WebSocket client this many signals/trades behind is disconnected.
    ws_max_pending: int = setting(1000, ge=10)
    # A request body must arrive whole within this many seconds (else 408 REQUEST_TIMEOUT).
    body_timeout_seconds: float = setting(10.0, gt=0, le=300)
    # /health fails above this memory use (percent of the machine) ...
    health_max_memory_percent: float = setting(95.0, gt=0, le=100)
    # ... or below this free space (GB) where the daemon keeps its state or its SQLite
    # database (the lowest of them).
    health_min_free_disk_gb: float = setting(1.0, ge=0)

    @property
    def read_limit(self) -> int:
        return self.read_per_minute or 10 * self.rate_limit

    @property
    def write_limit(self) -> int:
        return self.write_per_minute or self.rate_limit

    @property
    def login_policy(self) -> LoginPolicy:
        return LoginPolicy(self.login_failures_allowed, self.login_backoff_seconds,
                           self.login_backoff_max_seconds)

    def startup_problem(self) -> str | None:
        """Why the server must not start, or ``None``."""
        exposed = self.enabled and not is_loopback(self.host)
        if exposed and not self.auth_required and not self.allow_public_without_auth:
            return (
                f"host = {self.host!r} accepts connections from other machines but "
                "auth_required = false: anyone who reaches the port could trade. Set "
                "auth_required = true (and the API key or JWT secret environment "
                'variables), use host = "127.0.0.1", or set allow_public_without_auth '
                "= true if a proxy in front authenticates"
            )
        return None

    def validate_config(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        problem = self.startup_problem()
        if problem:
            problems.append(("host", problem))
        if bool(self.ssl_cert) != bool(self.ssl_key):
            problems.append(("ssl_cert", "ssl_cert and ssl_key go together: set both or neither"))
        for key in ("ssl_cert", "ssl_key"):
            path = getattr(self, key)
            if path and not os.path.isfile(path):
                problems.append((key, f"no such file: {path}"))
        if self.login_backoff_max_seconds < self.login_backoff_seconds:
            problems.append(("login_backoff_max_seconds",
                             "must be at least login_backoff_seconds "
                             f"({self.login_backoff_seconds:g})"))
        if self.cors_enabled and not self.cors_origins:
            problems.append(
                ("cors_origins", "cors_enabled = true needs the allowed origins listed here")
            )
        return problems
