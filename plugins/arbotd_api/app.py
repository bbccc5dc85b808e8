"""The Quart-Trio application: authentication, rate limits and CORS around every route.

Order of work per request (``before_request``): read the credentials when ``[api]
auth_required`` is on (a wrong one is remembered, not yet refused; with it off any
credentials sent are ignored and every client is anonymous with the trading scope), take
a token from the client's bucket (keyed by API key, else JWT user, else IP address) so
that every answer, refusals included, carries the rate-limit headers; then refuse: 429,
401 for wrong or missing credentials, 403 for the read scope on a write route or the
audit trail, 400 for a query parameter given more than once. Unknown routes count as
reads. Behind a proxy of ``[api] trusted_proxies``, the IP address is the client its
``X-Forwarded-For`` names.

After every answer (``after_request``), refusals included: the answer is counted for
``/metrics`` (by route template, method and status), the rate-limit and CORS headers are
added, and the rule that keeps a keep-alive connection in step applies. An answer may come
before the request's body has arrived (a refusal decided on the headers alone); the body's
bytes still follow on the connection, and would be read as the start of the next request.
So the body is read to its end first, within the body timeout (``[api]
body_timeout_seconds``) and the size limit; a body that is too large, too slow, or that
already ran out of time gets the answer with ``Connection: close`` instead, and the
connection ends after it.

Every call of a route that changes state is audited (:mod:`arbotd_api.audit`), refusals
included: its entry is queued with the storage before the answer leaves.
"""

from __future__ import annotations

from quart import Response, current_app, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from arbotd_api.audit import client_address, install_audit
from arbotd_api.auth import Principal
from arbotd_api.context import TRADING_KINDS, ApiState, state
from arbotd_api.errors import ApiError, install_error_handlers
from arbotd_api.routes import register_routes
from arbotd_api.ws import register_websocket

__all__ = ["create_app"]

_ANONYMOUS = Principal("anonymous", "trading", "anonymous")
MAX_BODY_BYTES = 1024 * 1024


def endpoint_kind() -> str:
    rule = request.url_rule
    if rule is None:
        return "read"
    view = current_app.view_functions.get(rule.endpoint)
    return getattr(view, "_api_kind", "read")


def rate_kind(kind: str) -> str:
    if kind == "scrape":
        return "scrape"
    return "write" if kind.endswith("write") else "read"


def create_app(api: ApiState) -> QuartTrio:
    app = QuartTrio("arbotd_api")
    app.config["ARBOTD"] = api
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    install_error_handlers(app)
    register_routes(app)
    register_websocket(app)

    @app.before_request
    async def _guard() -> Response | None:
        current = state()
        # Read per request, so that a reload's new value applies at once.
        request.body_timeout = current.settings.body_timeout_seconds
        kind = endpoint_kind()
        principal: Principal | None = None
        auth_error: ApiError | None = None
        if current.settings.auth_required:
            try:
                principal = await current.credentials.authenticate(
                    request.headers, current.runtime.storage, scrape=kind == "scrape")
            except ApiError as err:
                auth_error = err
        # Without auth_required, credentials are not needed, and any sent are ignored:
        # every client is anonymous with the trading scope (so a client written for a
        # server with keys works against one without).
        g.principal = principal  # the audit trail's actor, refusals included
        client = (principal.client_id if principal
                  else f"ip:{client_address(current.settings.trusted_proxies)}")
        decision = current.limiter.take(client, rate_kind(kind))
        g.rate_headers = decision.headers()
        if not decision.allowed:
            raise ApiError(
                "RATE_LIMIT_EXCEEDED",
                "API rate limit exceeded",
                {"limit": decision.limit, "retry_after": decision.retry_after,
                 "type": rate_kind(kind)},
            )
        if _is_preflight():
            return Response(b"", status=204)
        public = kind.startswith("public")
        if auth_error is not None and not public:
            raise auth_error
        if principal is None:
            if current.settings.auth_required and not public:
                raise ApiError("UNAUTHORIZED", "Invalid or missing authentication",
                               {"accepted": ["X-API-Key", "Authorization: Bearer"]})
            principal = _ANONYMOUS
        if kind in TRADING_KINDS and not principal.may_trade:
            raise ApiError("FORBIDDEN", "This endpoint needs the trading scope",
                           {"scope": principal.scope, "required_scope": "trading"})
        g.principal = principal
        repeated = [name for name, values in request.args.lists() if len(values) > 1]
        if repeated:
            # Taking one of the values silently would answer a different question than
            # the caller asked.
            raise ApiError("VALIDATION_ERROR", f"{repeated[0]} is given more than once",
                           {"field": repeated[0]})
        return None

    @app.after_request
    async def _headers(response: Response) -> Response:
        rule = request.url_rule
        state().metrics.count_request(rule.rule if rule is not None else None,
                                      request.method, response.status_code)
        response.headers.update(getattr(g, "rate_headers", {}))
        _cors(response)
        if not await _body_received(response):
            response.headers["Connection"] = "close"
        return response

    # After the guard: see install_audit.
    install_audit(app)
    return app


async def _body_received(response: Response) -> bool:
    """Whether the request's body, if it has one, has arrived whole, waiting for the rest
    when the answer came first. ``False``: too large, too slow, or already too slow
    (``response`` is the 408), so the connection must close after this answer."""
    if not request.content_length and "Transfer-Encoding" not in request.headers:
        return True
    if response.status_code == 408:
        return False  # the body ran out of time already: waiting again would not help
    try:
        await request.get_data()  # bounded by MAX_CONTENT_LENGTH and the body timeout
    except HTTPException:
        return False
    return True


def _is_preflight() -> bool:
    return (
        request.method == "OPTIONS"
        and state().settings.cors_enabled
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def _cors(response: Response) -> None:
    settings = state().settings
    origin = request.headers.get("Origin")
    if not settings.cors_enabled or not origin:
        return
    allowed = settings.cors_origins
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    else:
        return
    response.headers["Access-Control-Expose-Headers"] = (
        "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Type, "
        "Retry-After"
    )
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            "Content-Type, Authorization, X-API-Key"
        )
        response.headers["Access-Control-Max-Age"] = "600"
