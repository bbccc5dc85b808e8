"""The API server as a daemon service: Hypercorn's trio worker in the daemon's nursery.

``run`` binds and listens itself, then hands the sockets to Hypercorn's trio worker
(what ``hypercorn.trio.serve`` runs), and reports started once the worker is serving.
It stops when the daemon's shutdown is requested: Hypercorn stops accepting, and
requests and WebSockets in flight get ``graceful_timeout`` (the daemon's shutdown
timeout, less a second) to finish.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from arbotd import ConfigError, ConfigProblem, Runtime
from arbotd_api.app import create_app
from arbotd_api.auth import Credentials
from arbotd_api.config import ApiConfig
from arbotd_api.context import ApiState
from arbotd_api.ratelimit import RateLimiter

__all__ = ["ApiService", "rate_limits"]

log = logging.getLogger(__name__)


def rate_limits(settings: ApiConfig) -> dict[str, tuple[int, int]]:
    return {
        "read": (settings.read_limit, settings.read_burst),
        "write": (settings.write_limit, settings.write_burst),
        "websocket": (settings.ws_per_minute, settings.ws_burst),
    }


class ApiService:
    name = "api"

    def __init__(self, settings: ApiConfig, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.urls: list[str] = []
        self.state: ApiState | None = None

    def apply(self, settings: ApiConfig) -> None:
        """A reload: limits, CORS and auth settings take effect at once; host, port and
        TLS need a restart."""
        if self.state is None:
            return
        for key in ("host", "port", "ssl_cert", "ssl_key", "api_keys_env", "jwt_secret_env"):
            if getattr(settings, key) != getattr(self.settings, key):
                log.warning("[api] %s changed: restart the daemon for it to take effect", key)
        problem = settings.startup_problem()
        if problem and settings.host == self.settings.host:
            log.error("[api] change not applied: %s", problem)
            return
        self.state.settings = settings
        self.state.credentials.jwt_lifetime = settings.jwt_lifetime_seconds
        self.state.limiter.configure(rate_limits(settings))

    def _hypercorn_config(self) -> HypercornConfig:
        settings = self.settings
        config = HypercornConfig()
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        config.bind = [f"{host}:{settings.port}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("arbotd_api.server")
        config.graceful_timeout = max(
            0.5, self.runtime.config.daemon.shutdown_timeout_seconds - 1.0
        )
        config.include_server_header = False
        if settings.ssl_cert:
            config.certfile = settings.ssl_cert
            config.keyfile = settings.ssl_key
        return config

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        settings = self.settings
        problem = settings.startup_problem()
        if problem:
            raise ConfigError([ConfigProblem(str(self.runtime.config.path), "api.host",
                                             problem)])
        try:
            credentials = Credentials.from_env(
                settings.api_keys_env, settings.jwt_secret_env, settings.jwt_lifetime_seconds
            )
        except ValueError as err:
            raise ConfigError([ConfigProblem("environment", "api", str(err))]) from None
        if settings.auth_required and not credentials.any_configured:
            log.warning("[api] auth_required = true but neither $%s nor $%s is set: only "
                        "/health will answer", settings.api_keys_env, settings.jwt_secret_env)
        self.state = ApiState(self.runtime, settings, credentials,
                              RateLimiter(rate_limits(settings)))
        app = create_app(self.state)
        try:
            config = self._hypercorn_config()
        except Exception as err:
            raise ConfigError([ConfigProblem(str(self.runtime.config.path), "api.ssl_cert",
                                             f"cannot load the TLS certificate: {err}")]
                              ) from None

        # Bind here rather than inside Hypercorn, so that a port in use is one clear
        # error naming the address, not a nest of exception groups.
        try:
            sockets = config.create_sockets()
        except OSError as err:
            reason = ("the address is already in use" if err.errno == errno.EADDRINUSE
                      else err.strerror)
            raise OSError(err.errno, f"API: cannot listen on {self._where()}: {reason}"
                          ) from None
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            sock.listen(config.backlog)

        async def serving(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await worker_serve(wrap_app(app, config.wsgi_max_body_size, None), config,
                               sockets=sockets,
                               shutdown_trigger=self.runtime.shutdown_requested.wait,
                               task_status=task_status)

        async with trio.open_nursery() as nursery:
            self.urls = await nursery.start(serving)
            log.info("API listening on %s (auth %s)", ", ".join(self.urls),
                     "required" if settings.auth_required else "not required")
            task_status.started()
