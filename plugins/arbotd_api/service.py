"""The API server as a daemon service: Hypercorn's trio worker in the daemon's nursery.

``run`` binds and listens itself, then hands the sockets to Hypercorn's trio worker
(what ``hypercorn.trio.serve`` runs), and reports started once the worker is serving.
It stops when the daemon's shutdown is requested: Hypercorn stops accepting, idle
keep-alive connections close at once, and requests and WebSockets in flight get
``graceful_timeout`` (the daemon's shutdown timeout, less a second) to finish. That
idle connections have a timer to close them at all is owed to
:class:`arbotd_api.asgi.ShieldedSends` around the app.
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
from arbotd_api.asgi import ShieldedSends
from arbotd_api.auth import Credentials
from arbotd_api.config import ApiConfig
from arbotd_api.context import ApiState
from arbotd_api.logins import LoginGuard
from arbotd_api.metrics import ApiMetrics
from arbotd_api.ratelimit import RateLimiter

__all__ = ["ApiService", "rate_limits"]

log = logging.getLogger(__name__)


def rate_limits(settings: ApiConfig) -> dict[str, tuple[int, int]]:
    return {
        "read": (settings.read_limit, settings.read_burst),
        "write": (settings.write_limit, settings.write_burst),
        "websocket": (settings.ws_per_minute, settings.ws_burst),
        # /metrics: the read limits, in a bucket of its own (see arbotd_api.routes.metrics).
        "scrape": (settings.read_limit, settings.read_burst),
    }


# Settings that need a new listener to take effect. The secrets' variables never change
# on reload (see ApiConfig): the core refuses such a reload.
_LISTENER_KEYS = ("host", "port", "ssl_cert", "ssl_key")


class ApiService:
    """The API server. A reload applies limits, CORS and auth settings in place, and the
    API keys and JWT secret as the reload found them (a secrets file, ``[daemon]
    secrets_file``, is read again at every reload): new ones replace the old at once. A
    new host, port or certificate starts a new listener, and the old one
    stops (its requests in flight finish) only once the new one is serving, so a mistake
    such as a port in use leaves the API where it was. The rate limits' and the login
    back-off's counts carry over to a new listener."""

    name = "api"

    def __init__(self, settings: ApiConfig, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.urls: list[str] = []
        self.state: ApiState | None = None
        # The daemon's Prometheus registry: its counts carry over to a new listener.
        self.metrics = ApiMetrics(runtime)
        self._pending: ApiConfig | None = None
        self._restart = trio.Event()

    def apply(self, settings: ApiConfig) -> None:
        """A reload (whether ``[api]`` changed or not): limits, CORS, auth settings and
        the secrets take effect at once; a changed listener restarts the server."""
        if self.state is None:
            return
        problem = settings.startup_problem()
        if problem:
            log.error("[api] change not applied: %s", problem)
            return
        if any(getattr(settings, k) != getattr(self.settings, k) for k in _LISTENER_KEYS):
            self._pending = settings
            self._restart.set()
            return
        self.settings = settings
        self.state.settings = settings
        self.state.limiter.configure(rate_limits(settings))
        self.state.logins.configure(settings.login_policy)
        self._reload_credentials(settings)

    def _reload_credentials(self, settings: ApiConfig) -> None:
        """The API keys and JWT secret as the environment and the secrets file hold them
        now: new ones replace the old at once (old keys and tokens signed with the old
        secret stop working); unusable ones are refused and the old stay, saying why."""
        assert self.state is not None
        current = self.state.credentials
        try:
            fresh = Credentials.from_env(settings.api_keys_env, settings.jwt_secret_env,
                                         settings.jwt_lifetime_seconds, current.users,
                                         settings.metrics_token_env)
        except ValueError as err:
            log.error("[api] new secrets not applied, the previous API keys and JWT secret "
                      "stay in force: %s", err)
            current.jwt_lifetime = settings.jwt_lifetime_seconds
            return
        if fresh.same_secrets(current):
            current.jwt_lifetime = settings.jwt_lifetime_seconds
            return
        self.state.credentials = fresh
        log.info("[api] new secrets in force: %s; the previous keys and tokens no longer "
                 "work", fresh.describe())

    def _hypercorn_config(self, settings: ApiConfig) -> HypercornConfig:
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

    def _prepare(self, settings: ApiConfig) -> tuple[ApiState, Any, HypercornConfig, Any]:
        """Credentials, app and bound sockets for ``settings``. Raises
        :class:`arbotd.ConfigError` or ``OSError`` naming what is wrong."""
        problem = settings.startup_problem()
        if problem:
            raise ConfigError([ConfigProblem(str(self.runtime.config.path), "api.host",
                                             problem)])
        try:
            credentials = Credentials.from_env(
                settings.api_keys_env, settings.jwt_secret_env, settings.jwt_lifetime_seconds,
                self.state.credentials.users if self.state is not None else None,
                settings.metrics_token_env,
            )
        except ValueError as err:
            raise ConfigError([ConfigProblem("environment", "api", str(err))]) from None
        if settings.auth_required and not credentials.any_configured:
            log.warning("[api] auth_required = true but neither $%s nor $%s is set: only "
                        "/health will answer", settings.api_keys_env, settings.jwt_secret_env)
        limiter = (self.state.limiter if self.state is not None
                   else RateLimiter(rate_limits(settings)))
        limiter.configure(rate_limits(settings))
        logins = (self.state.logins if self.state is not None
                  else LoginGuard(settings.login_policy))
        logins.configure(settings.login_policy)
        api_state = ApiState(self.runtime, settings, credentials, limiter, logins,
                             self.metrics)
        app = create_app(api_state)
        try:
            config = self._hypercorn_config(settings)
        except Exception as err:
            raise ConfigError([ConfigProblem(str(self.runtime.config.path), "api.ssl_cert",
                                             f"cannot load the TLS certificate: {err}")]
                              ) from None
        # Bind here rather than inside Hypercorn, so that a port in use is one clear
        # error naming the address, not a nest of exception groups.
        where = f"{settings.host}:{settings.port}"
        try:
            sockets = config.create_sockets()
        except OSError as err:
            reason = ("the address is already in use" if err.errno == errno.EADDRINUSE
                      else err.strerror)
            raise OSError(err.errno, f"API: cannot listen on {where}: {reason}") from None
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            sock.listen(config.backlog)
        return api_state, app, config, sockets

    async def _serve(self, app: Any, config: HypercornConfig, sockets: Any, stop: trio.Event,
                     *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """One listener, until the daemon stops or ``stop`` is set."""

        async def stopped() -> None:
            await _first_of(stop, self.runtime.shutdown_requested)

        app = wrap_app(ShieldedSends(app), config.wsgi_max_body_size, "asgi")
        await worker_serve(app, config, sockets=sockets, shutdown_trigger=stopped,
                           task_status=task_status)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.state, app, config, sockets = self._prepare(self.settings)
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            self.urls = await nursery.start(self._serve, app, config, sockets, stop)
            self._log_listening()
            task_status.started()
            while True:
                await self._restart_or_shutdown()
                if self.runtime.shutdown_requested.is_set():
                    break  # the listeners stop by themselves, gracefully
                self._restart = trio.Event()
                settings, self._pending = self._pending, None
                if settings is None:
                    continue
                try:
                    api_state, app, config, sockets = self._prepare(settings)
                except (ConfigError, OSError) as err:
                    log.error("[api] change not applied, still serving on %s: %s",
                              ", ".join(self.urls), err)
                    continue
                new_stop = trio.Event()
                urls = await nursery.start(self._serve, app, config, sockets, new_stop)
                stop.set()  # the old listener finishes its requests in flight and ends
                stop, self.urls, self.state, self.settings = new_stop, urls, api_state, settings
                self._log_listening()

    async def _restart_or_shutdown(self) -> None:
        await _first_of(self._restart, self.runtime.shutdown_requested)

    def _log_listening(self) -> None:
        log.info("API listening on %s (auth %s)", ", ".join(self.urls),
                 "required" if self.settings.auth_required else "not required")


async def _first_of(*events: Any) -> None:
    """Return once any of ``events`` is set."""
    async with trio.open_nursery() as nursery:
        async def wait_then_cancel(event: Any) -> None:
            await event.wait()
            nursery.cancel_scope.cancel()
        for event in events:
            nursery.start_soon(wait_then_cancel, event)
