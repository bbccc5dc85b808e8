"""``/status``, ``/health``, ``/auth/login`` and ``/openapi.json``.

``status``: ``"running"`` while trading is on, ``"emergency_stopped"`` after an emergency
stop until trading is started again, ``"stopping"`` once the daemon shuts down, else
``"idle"`` (watching the markets, not trading). ``mode`` is the mode trading was last
started in, else ``[daemon] mode``.

``exchanges`` (in ``/status``): each enabled exchange's feed, as the feed supervisor
reports the running feeds: ``connected`` only while its market data is usable (its feed
is connected and quotes have arrived since it last (re)connected), ``last_update`` the
time of its latest quote.

``premium_baselines`` (an extra of ``/status``): each venue with a premium baseline, the
percent its prices are measured against now, ``fixed`` or ``rolling`` (the median of the
observed premium over ``window_seconds``, from ``samples`` samples). ``currencies``: each
venue quoted in another currency (:mod:`arbotd.fx`), its currency, rate market, latest
rate and the quotes dropped for want of a usable rate.

``/auth/login`` takes ``username`` and ``password`` as a JSON object or a form-encoded
body, and backs off per user name (:mod:`arbotd_api.logins`).

``/openapi.json`` is public like ``/health``: the OpenAPI document (:mod:`arbotd_api.openapi`).

``/health`` answers 200 when every check passes and 503 otherwise, with the same body:
- ``database``: the storage backend's ``ping()`` if it has one (else ``backlog()``, failing
  above 100,000 queued records), timed; and, when the backend has a ``status()``, its
  writes: the check fails from the first failed write until one succeeds again, with
  ``message`` saying why (the database's words: ``database or disk is full``) and
  ``backlog``, the records waiting in memory; ``pass`` without storage (nothing to check);
- ``exchanges``: feeds connected (as in ``/status``: market data usable) of those enabled;
  fails unless all are connected;
- ``memory``: the machine's memory in use, ``(MemTotal - MemAvailable) / MemTotal`` from
  ``/proc/meminfo``, fails above ``[api] health_max_memory_percent``;
- ``disk``: the lowest free space (GB = 10^9 bytes) of the filesystems the daemon writes
  to, its state directory and the storage backend's ``data_directories()`` (a SQLite
  file's directory), with the ``path`` it was found at; fails below
  ``[api] health_min_free_disk_gb``;
- ``config``: fails while the last reload was refused, with the problems;
- ``accounts`` (only when an executor trades through exchange accounts, i.e. live mode is
  installed and an exchange is enabled): each account's readiness, failing when one with
  keys has not answered or failed its last request, or, when trading live, lacks keys.
"""

from __future__ import annotations

import logging
import shutil
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio
from quart import Blueprint, Response, g, request

from arbotd import ArbotError, UserStore, __version__, verify_password
from arbotd_api.auth import SCOPES
from arbotd_api.context import json_body, kind, state
from arbotd_api.errors import ApiError, json_response
from arbotd_api.logins import LoginLocked

blueprint = Blueprint("system", __name__)
log = logging.getLogger(__name__)

_BACKLOG_LIMIT = 100_000
_DB_TIMEOUT = 2.0
# verify_password against this when the user is unknown, so that the time taken does not
# tell which user names exist.
_DUMMY_HASH = (
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)


@blueprint.get("/status")
@kind("read")
async def get_status() -> Response:
    runtime = state().runtime
    control, feeds, engine = runtime.control, runtime.feeds, runtime.engine
    assert control is not None and feeds is not None
    summary = control.status()
    if runtime.shutdown_requested.is_set():
        status = "stopping"
    elif control.trading:
        status = "running"
    elif control.emergency:
        status = "emergency_stopped"
    else:
        status = "idle"
    return json_response({
        "status": status,
        "uptime": int(runtime.uptime),
        "version": __version__,
        "mode": control.mode or runtime.config.daemon.mode,
        "exchanges": {
            name: {
                "connected": feed.connected,
                "last_update": feed.last_update,
                "latency_ms": feed.latency_ms,
            }
            for name, feed in sorted(feeds.statuses().items())
        },
        "active_symbols": len(control.selected_symbols or control.symbols),
        "signals_last_hour": summary["signals_last_hour"],
        "trades_today": summary["trades_today"],
        # Extras: venues' premium baselines and venues quoted in another currency.
        "premium_baselines": engine.premium_baselines() if engine is not None else {},
        "currencies": engine.currencies() if engine is not None else {},
    })


async def _database_check(storage: Any) -> dict[str, Any]:
    if storage is None:
        return {"status": "pass", "response_time_ms": 0.0}
    started = time.perf_counter()
    problem: str | None = None
    try:
        ping = getattr(storage, "ping", None)
        if callable(ping):
            with trio.fail_after(_DB_TIMEOUT):
                await ping()
        elif storage.backlog() > _BACKLOG_LIMIT:
            problem = f"more than {_BACKLOG_LIMIT} records wait to be written"
    except trio.TooSlowError:
        problem = f"the database did not answer within {_DB_TIMEOUT:g} s"
    except Exception as err:
        problem = str(err) or type(err).__name__
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    check: dict[str, Any] = {"status": "pass", "response_time_ms": elapsed}
    try:
        writes = storage_status(storage)
    except Exception as err:
        writes = {"healthy": False, "last_error": str(err) or type(err).__name__}
    if writes is not None:
        if isinstance(writes.get("backlog"), int):
            check["backlog"] = writes["backlog"]
        if not writes.get("healthy", True):
            # The writer's failure comes first: it is what keeps records from the disk.
            cause = writes.get("last_error") or "unknown error"
            problem = f"cannot write to the database: {cause}"
    if problem is not None:
        check["status"] = "fail"
        check["message"] = problem
    return check


def storage_status(storage: Any) -> Mapping[str, Any] | None:
    """The backend's ``status()`` (``healthy``, ``last_error``, ``backlog``), if it has
    one that answers a mapping."""
    status = getattr(storage, "status", None)
    if not callable(status):
        return None
    report = status()
    return report if isinstance(report, Mapping) else None


def memory_usage_percent() -> float:
    info: dict[str, int] = {}
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            name, _, rest = line.partition(":")
            info[name] = int(rest.split()[0])
    total = info["MemTotal"]
    return round((total - info["MemAvailable"]) / total * 100, 1)


def _free_bytes(path: Path) -> int:
    path = path.resolve()
    while not path.exists():  # not created yet: it will be on its parent's filesystem
        path = path.parent
    return shutil.disk_usage(path).free


def _disk_check(runtime: Any, min_free_gb: float) -> dict[str, Any]:
    """The lowest free space of the filesystems the daemon writes to: the storage's
    (a SQLite file's directory), then the state directory."""
    paths: list[Path] = []
    directories = getattr(runtime.storage, "data_directories", None)
    if callable(directories):
        paths.extend(Path(directory) for directory in directories())
    paths.append(runtime.config.daemon.resolved_state_dir())
    free, path = min(((_free_bytes(path), path) for path in paths), key=lambda item: item[0])
    free_gb = round(free / 1e9, 1)
    return {
        "status": "pass" if free_gb >= min_free_gb else "fail",
        "free_space_gb": free_gb,
        "path": str(path),
    }


@blueprint.get("/health")
@kind("public_read")
async def get_health() -> Response:
    current = state()
    runtime, settings = current.runtime, current.settings
    statuses = runtime.feeds.statuses() if runtime.feeds is not None else {}
    connected = sum(1 for s in statuses.values() if s.connected)
    try:
        memory = memory_usage_percent()
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        memory = 0.0
    checks: dict[str, dict[str, Any]] = {
        "database": await _database_check(runtime.storage),
        "exchanges": {
            "status": "pass" if statuses and connected == len(statuses) else "fail",
            "connected_count": connected,
            "total_count": len(statuses),
        },
        "memory": {
            "status": "pass" if memory <= settings.health_max_memory_percent else "fail",
            "usage_percent": memory,
        },
        "disk": _disk_check(runtime, settings.health_min_free_disk_gb),
    }
    accounts = _accounts_check(runtime)
    if accounts is not None:
        checks["accounts"] = accounts
    error = runtime.last_config_error
    if error is None:
        checks["config"] = {"status": "pass"}
    else:
        checks["config"] = {
            "status": "fail",
            "message": "the last reload was refused; the previous configuration is in force",
            "problems": [{"field": p.path, "message": p.message} for p in error.problems],
        }
    healthy = all(check["status"] == "pass" for check in checks.values())
    return json_response({"healthy": healthy, "checks": checks}, 200 if healthy else 503)


def _accounts_check(runtime: Any) -> dict[str, Any] | None:
    """The trading accounts of the executors that have any (live mode's), or ``None``.

    An account fails the check when its keys are set but it has not answered (or its
    last request failed); one without keys fails only while the daemon is meant to trade
    live (``[daemon] mode = "live"`` or live trading started), since paper trading on a
    real exchange's prices needs no keys."""
    control = runtime.control
    if control is None:
        return None
    statuses: dict[str, dict[str, Any]] = {}
    for executor in control.executors.values():
        report = getattr(executor, "account_status", None)
        if callable(report):
            statuses.update(report())
    if not statuses:
        return None
    live = runtime.config.daemon.mode == "live" or (control.trading and control.mode == "live")
    problems: dict[str, str] = {}
    for name, status in sorted(statuses.items()):
        if not status["credentials"]:
            if live:
                problems[name] = "API keys are not set"
        elif status["last_error"]:
            problems[name] = status["last_error"]
        elif not status["ready"]:
            problems[name] = "has not answered yet"
    return {
        "status": "fail" if problems else "pass",
        "ready_count": sum(1 for s in statuses.values()
                           if s["ready"] and not s["last_error"]),
        "total_count": len(statuses),
        "problems": problems,
    }


@blueprint.post("/auth/login")
@kind("public_write")
async def login() -> Response:
    """A JWT for a user of the storage backend, from a JSON or a form-encoded body
    (``username``, ``password``). Failures back off per user name
    (:mod:`arbotd_api.logins`): a locked name is answered 429 before its password is
    checked, and an unknown name is treated exactly like a wrong password."""
    current = state()
    username, password = await _login_fields()
    storage = current.runtime.storage
    if not isinstance(storage, UserStore):
        raise ApiError("UNAUTHORIZED", "Login needs a storage backend that keeps users")
    if current.credentials.jwt_secret is None:
        raise ApiError("UNAUTHORIZED", "JWT login is not configured on this server",
                       {"missing_environment_variable": current.settings.jwt_secret_env})
    try:
        attempt = current.logins.attempt(username, request.remote_addr)
    except LoginLocked as locked:
        # The rate-limit headers of this answer are the account's, not the address's.
        g.rate_headers = {**getattr(g, "rate_headers", {}), **locked.headers()}
        raise ApiError("RATE_LIMIT_EXCEEDED",
                       "Too many failed logins for this user name; try again later",
                       {"retry_after": locked.retry_after, "type": "login"}) from None
    with attempt:
        try:
            user = await storage.get_user(username)
        except ArbotError as err:
            log.warning("login of %r: cannot read the users: %s", username[:64], err)
            raise ApiError("STORAGE_NOT_AVAILABLE",
                           "Cannot log in now: the user database did not answer") from None
        stored = user["password_hash"] if user else _DUMMY_HASH
        matches = await trio.to_thread.run_sync(verify_password, password, stored)
        if user is None or not matches or user.get("scope") not in SCOPES:
            attempt.failed("no such user" if user is None else
                           "wrong password" if not matches else
                           f"the user's scope {user.get('scope')!r} is not read or trading")
            raise ApiError("UNAUTHORIZED", "Invalid username or password")
        attempt.succeeded(user["scope"])
    token = current.credentials.issue_token(username, user["scope"],
                                            int(user.get("token_generation", 0)))
    return json_response(token)


async def _login_fields() -> tuple[str, str]:
    """``username`` and ``password`` from a JSON object or, as the API reference's
    example posts them, a form-encoded body; ``VALIDATION_ERROR`` otherwise."""
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = await request.get_data(as_text=False)
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                           strict_parsing=False, max_num_fields=16,
                                           errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise ApiError("VALIDATION_ERROR", "The form body is not valid "
                           "application/x-www-form-urlencoded UTF-8 text") from None
        body: dict[str, Any] = {}
        for name, value in pairs:
            if name in body:
                raise ApiError("VALIDATION_ERROR", f"{name} is given more than once",
                               {"field": name})
            body[name] = value
    else:
        body = await json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError("VALIDATION_ERROR", "username and password (strings) are required",
                       {"fields": ["username", "password"]})
    return username, password


@blueprint.get("/openapi.json")
@kind("public_read")
async def get_openapi() -> Response:
    """The OpenAPI document. Public like ``/health``: it describes the API and holds no
    secret, so tools can load it before they have credentials."""
    # Imported here: arbotd_api.openapi reads the routes' constants, so importing it at
    # the top would make a cycle through arbotd_api.routes.
    from arbotd_api.openapi import openapi_document

    return json_response(openapi_document())
