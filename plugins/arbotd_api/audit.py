"""The API's audit trail: who changed what, from where, when, and how it ended.

Audited: every call of a route that changes state, whether it succeeds, fails or is
refused: the ``write`` routes (trading start and stop, a backtest's start, the
configuration edit, the emergency stop, batch trades) and logins (``public_write``).
Reads never are (``GET``, and ``POST /analytics/query``, a read by ``POST``). Each entry
(:meth:`arbotd.AuditStore.record_audit`):

- ``actor``: the JWT's user, the API key's ``key:<fingerprint>`` (never the key),
  ``anonymous`` when auth is off, the user name tried for a login, ``unauthenticated``
  when the credentials were missing or wrong;
- ``method``: ``jwt``, ``api_key``, ``anonymous``, ``password`` (a login); for wrong
  credentials the kind presented (``api_key``, ``jwt``, ``other``, ``none``);
- ``source``: the connecting address, or behind a proxy of ``[api] trusted_proxies`` the
  client its ``X-Forwarded-For`` names (:func:`client_address`);
- ``action``: the method and route template, ``POST /api/v1/trading/start``;
- ``outcome`` and ``status``: ``success`` or the error code, and the HTTP status;
- ``details``: what was asked and what it did (:data:`DESCRIBERS`): the start's mode,
  symbols and exchanges (and a backtest's times and id), the old and new value of each
  configuration key that changed, a batch's operations and results, the counts of an
  emergency stop, a login's user name (never a password); for a failure the error's
  message. Values are cut short (:func:`bounded`), values of keys that look secret
  replaced.

The entry is queued with the storage (its batched writer, never waiting for the disk)
before the answer leaves: the after-request hook records it, and records it even when
the client goes away while the hook reads the request (a ``finally``). A call whose
handler is cancelled before it answers (the client went away) is recorded as
``ABORTED``, with no status, by the teardown hook: it may have changed something.

Refusals are bounded (:mod:`arbotd_api.audittrail`): a flood of them must not fill the
disk.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import orjson
from quart import Quart, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from arbotd import Config
from arbotd_api.audittrail import REFUSAL_CODES
from arbotd_api.context import state

__all__ = [
    "ABORTED",
    "DESCRIBERS",
    "action_name",
    "bounded",
    "client_address",
    "current_actor",
    "install_audit",
    "is_audited",
]

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
AUDITED_KINDS = ("write", "public_write")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SUCCESS = "success"
ABORTED = "ABORTED"
"""The outcome of a call that ended without an answer (the client went away)."""

_MAX_TEXT = 200
_MAX_ITEMS = 100
_MAX_KEYS = 50
_MAX_DEPTH = 6
_SECRET_KEY = re.compile(r"pass|secret|token|credential|(^|_)key$", re.IGNORECASE)


# --- where a request comes from --------------------------------------------------------------


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(trusted_proxies: Sequence[str]) -> str:
    """The request's client: the connecting address, unless that is one of
    ``trusted_proxies`` (addresses or networks); then the right-most address of
    ``X-Forwarded-For`` that is not a trusted proxy itself (each proxy appends the address
    it was reached from, so only the entries the trusted ones wrote can be believed)."""
    peer = request.remote_addr or "unknown"
    if not trusted_proxies:
        return peer
    networks = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]

    def trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in networks)

    if not trusted(_ip(peer)):
        return peer
    hops = [hop.strip() for value in request.headers.getlist("X-Forwarded-For")
            for hop in value.split(",")]
    address = peer
    for hop in reversed(hops):
        parsed = _ip(hop)
        if parsed is None:
            break  # not an address: the last one a trusted proxy wrote is all we know
        address = str(parsed)
        if not trusted(parsed):
            break
    return address


# --- who, what ---------------------------------------------------------------------------------


def _route_kind() -> str | None:
    rule = request.url_rule
    if rule is None:
        return None
    view = current_app.view_functions.get(rule.endpoint)
    return getattr(view, "_api_kind", "read")


def is_audited() -> bool:
    """Whether this request is a call of a route that changes state."""
    return request.method not in SAFE_METHODS and _route_kind() in AUDITED_KINDS


def action_name() -> str:
    """``POST /api/v1/trading/start``: the method and the route's template, its
    parameters written ``{name}`` as in the OpenAPI document."""
    rule = request.url_rule
    template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) if rule else request.path
    return f"{request.method} {template}"


def _presented() -> str:
    """The kind of credentials a request carried (for one they did not let in)."""
    if "X-API-Key" in request.headers:
        return "api_key"
    authorization = request.headers.get("Authorization", "")
    if authorization:
        return "jwt" if authorization.partition(" ")[0].lower() == "bearer" else "other"
    return "none"


def current_actor() -> str:
    """Who makes the request, as the audit trail names them (a user name, an API key's
    ``key:<fingerprint>``, ``anonymous`` ...)."""
    return _who()[0]


def _who() -> tuple[str, str]:
    """``(actor, method)`` of the request."""
    principal = g.get("principal")
    if principal is not None:
        if principal.method == "jwt":
            return principal.client_id.removeprefix("user:"), "jwt"
        return principal.client_id, principal.method
    presented = _presented()
    if presented == "none" and not state().settings.auth_required:
        return "anonymous", "anonymous"
    return "unauthenticated", presented


# --- details -----------------------------------------------------------------------------------


def bounded(value: Any, depth: int = 0) -> Any:
    """``value`` (JSON) small enough to keep: strings cut to 200 characters, at most 100
    items per list and 50 keys per object, 6 levels; values of keys that look secret
    (``password``, ``token``, ``api_key`` ...) replaced by ``"[redacted]"``."""
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "..."
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return "..."
    if isinstance(value, list):
        items = [bounded(item, depth + 1) for item in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            items.append(f"... {len(value) - _MAX_ITEMS} more")
        return items
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in list(value.items())[:_MAX_KEYS]:
            name = bounded(str(key))
            out[name] = "[redacted]" if _SECRET_KEY.search(name) else bounded(item, depth + 1)
        if len(value) > _MAX_KEYS:
            out["..."] = f"{len(value) - _MAX_KEYS} more keys"
        return out
    return bounded(str(value), depth)


@attrs.define
class Call:
    """What the describers of :data:`DESCRIBERS` see of a call that reached its handler:
    the request's JSON body and the successful answer's (``None`` when there is none),
    and the running configuration before and after."""

    body: Any
    answer: Any
    config_before: Config
    config_after: Config

    def body_fields(self, *names: str) -> dict[str, Any]:
        return _pick(self.body, names)

    def answer_fields(self, *names: str) -> dict[str, Any]:
        return _pick(self.answer, names)


def _pick(source: Any, names: Sequence[str]) -> dict[str, Any]:
    if not isinstance(source, dict):
        return {}
    return {name: bounded(source[name]) for name in names if name in source}


def _trading_start(call: Call) -> dict[str, Any]:
    # The answer's mode is the one trading started in (the body may not name one).
    return {**call.body_fields("mode", "symbols", "exchanges", "start_time", "end_time",
                               "balance"),
            **call.answer_fields("mode", "symbols_count", "exchanges_count", "backtest_id")}


def _trading_stop(call: Call) -> dict[str, Any]:
    return call.answer_fields("trades_completed", "pending_trades")


def _emergency_stop(call: Call) -> dict[str, Any]:
    return call.answer_fields("trades_cancelled", "positions_closed")


def _batch_trades(call: Call) -> dict[str, Any]:
    return {**call.body_fields("operations"), **call.answer_fields("results")}


def _login(call: Call) -> dict[str, Any]:
    return call.body_fields("username")  # never the password


def _config_edit(call: Call) -> dict[str, Any]:
    """The keys asked for (``requested``) and, for each whose running value changed,
    ``changes[key] = {"old", "new"}``."""
    requested: dict[str, Any] = {}
    if isinstance(call.body, dict):
        _flatten(call.body, "", requested)
    changes = {}
    for path in requested:
        old = _config_value(call.config_before, path)
        new = _config_value(call.config_after, path)
        if old != new:
            changes[path] = {"old": bounded(old), "new": bounded(new)}
    return {"requested": bounded(requested), "changes": changes}


def _flatten(value: dict[str, Any], prefix: str, out: dict[str, Any], depth: int = 0
             ) -> None:
    """Nested tables as dotted keys, as the handler reads them (at most 50 keys and 6
    levels: this runs on bodies the handler refused too)."""
    for key, item in value.items():
        if len(out) >= _MAX_KEYS:
            return
        path = f"{prefix}{key}"
        if isinstance(item, dict) and item and depth < _MAX_DEPTH:
            _flatten(item, path + ".", out, depth + 1)
        else:
            out[path] = item


def _config_value(config: Config, path: str) -> Any:
    """The running value of a dotted key (``arbitrage.min_profit_threshold``,
    ``exchanges.binance.enabled``), JSON-ready; ``None`` when there is none."""
    keys = path.split(".")
    for split in range(len(keys) - 1, 0, -1):
        section = config.get(".".join(keys[:split]))
        if section is None:
            continue
        value = section
        for key in keys[split:]:
            # Settings only: a key such as "__class__" names no setting.
            value = None if key.startswith("_") else getattr(value, key, None)
        return _json_ready(value)
    return None


def _json_ready(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return str(value)


Describer = Callable[[Call], dict[str, Any]]
DESCRIBERS: dict[str, Describer] = {
    f"POST {PREFIX}/trading/start": _trading_start,
    f"POST {PREFIX}/trading/stop": _trading_stop,
    f"PUT {PREFIX}/trading/config": _config_edit,
    f"POST {PREFIX}/risk/emergency-stop": _emergency_stop,
    f"POST {PREFIX}/batch/trades": _batch_trades,
    f"POST {PREFIX}/auth/login": _login,
}
"""The details of each audited action. A write route not named here has its request's
body (cut short, secrets redacted) and path parameters."""


def _any_route(call: Call) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if request.view_args:
        details["path"] = bounded(dict(request.view_args))
    if call.body not in (None, {}, []):
        details["body"] = bounded(call.body)
    return details


# --- the hooks -----------------------------------------------------------------------------------


LOGIN = f"POST {PREFIX}/auth/login"


def _base_fields(status: int | None) -> dict[str, Any]:
    """What is known without reading anything: the outcome is a guess from the status
    until the answer's error code is read."""
    if status is None:
        outcome = ABORTED
    elif status < 400:
        outcome = SUCCESS
    else:
        outcome = f"HTTP_{status}"
    actor, method = _who()
    return {"actor": actor, "method": method,
            "source": client_address(state().settings.trusted_proxies),
            "action": action_name(), "status": status, "outcome": outcome, "details": {}}


def _is_refusal(fields: dict[str, Any]) -> bool:
    """Refusals are bounded: those of credentials and rate limits, and every failed
    login (anyone may send those, as fast as the rate limit lets them)."""
    return fields["outcome"] in REFUSAL_CODES or (
        fields["action"] == LOGIN and fields["outcome"] != SUCCESS)


def _record(fields: dict[str, Any]) -> None:
    current = state()
    current.audit.record(current.runtime.storage, fields, refusal=_is_refusal(fields))


async def _json_of(read: Callable[[], Any]) -> Any:
    try:
        raw = await read()
    except HTTPException:  # the body was too large or too slow: nothing to describe
        return None
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def _complete(fields: dict[str, Any], response: Response) -> None:
    """Fill in the outcome (the error code) and the details: this reads the answer and,
    for a call that reached its handler, the request's body."""
    status = response.status_code
    answer = await _json_of(response.get_data)
    error = answer.get("error") if status >= 400 and isinstance(answer, dict) else None
    if isinstance(error, dict):
        fields["outcome"] = str(error.get("code") or fields["outcome"])
    before = g.get("audit_config")
    details: dict[str, Any] = {}
    if before is not None:  # the call reached its handler (else it was refused unread)
        # 408: the body never came whole, and waiting again would not help.
        body = await _json_of(request.get_data) if status != 408 else None
        describe = DESCRIBERS.get(fields["action"], _any_route)
        details = describe(Call(body=body, answer=answer if status < 400 else None,
                                config_before=before, config_after=state().runtime.config))
    if isinstance(error, dict) and error.get("message"):
        details["error"] = bounded(str(error["message"]))
    if fields["action"] == LOGIN:
        username = details.get("username")
        fields["actor"] = username if isinstance(username, str) and username \
            else "unauthenticated"
        fields["method"] = "password"
    fields["details"] = details


def install_audit(app: Quart) -> None:
    """Audit every call of a state-changing route of ``app``. Install after the hook that
    authenticates, so that this one's before-request runs only for calls it let in, and
    its after-request runs first (Quart runs them in reverse)."""

    @app.before_request
    async def _remember_config() -> None:
        if is_audited():
            # The running configuration now, to show what a configuration edit changed;
            # set only for calls the guard let in, which reach their handler.
            g.audit_config = state().runtime.config

    @app.after_request
    async def _record_answer(response: Response) -> Response:
        if not is_audited():
            return response
        fields = _base_fields(response.status_code)
        try:
            await _complete(fields, response)
        except Exception:
            log.exception("could not describe the audited call %s", fields["action"])
        finally:
            # Even when the client goes away while the body is read: the call happened.
            _record(fields)
            g.audit_recorded = True
        return response

    @app.teardown_request
    async def _record_unanswered(exc: BaseException | None) -> None:
        # No await before the record: this runs in a cancelled scope when the client left.
        # Only calls let in (``audit_config``) reach a handler that can be cut off.
        if g.get("audit_recorded") or g.get("audit_config") is None:
            return
        fields = _base_fields(None)
        fields["details"] = {"error": "the call ended before it was answered (the client "
                                      "went away); it may have changed something"}
        _record(fields)

    @app.before_serving
    async def _start_flushing() -> None:
        current = state()
        app.add_background_task(current.audit.flush_periodically,
                                lambda: current.runtime.storage)

    @app.after_serving
    async def _flush_at_stop() -> None:
        current = state()
        current.audit.closed.set()
        current.audit.flush(current.runtime.storage, final=True)
