"""The API's error object and the status of every error code.

Every failure answers ``{"error": {"code", "message", "details", "timestamp"}}`` with the
codes of the API reference, plus ``VALIDATION_ERROR`` (malformed body or parameter),
``FORBIDDEN`` (read scope on a write route), ``NOT_FOUND``, ``METHOD_NOT_ALLOWED``,
``REQUEST_TIMEOUT`` (408: the request body did not arrive within ``[api]
body_timeout_seconds``) and ``STORAGE_NOT_AVAILABLE`` (history endpoints without a
storage that keeps history, the audit trail without one that keeps it).
Unexpected exceptions are logged here and answered ``INTERNAL_ERROR`` without any detail:
no stack trace leaves the server.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from arbotd import TradingError, iso_utc

__all__ = ["STATUS", "ApiError", "error_response", "install_error_handlers", "iso_now"]

log = logging.getLogger(__name__)

STATUS: dict[str, int] = {
    "INVALID_SYMBOL": 400,
    "INSUFFICIENT_BALANCE": 400,
    "VALIDATION_ERROR": 400,
    "UNAUTHORIZED": 401,
    "TRADING_DISABLED": 403,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "REQUEST_TIMEOUT": 408,
    "RATE_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "EXCHANGE_NOT_AVAILABLE": 503,
    "STORAGE_NOT_AVAILABLE": 503,
}


class ApiError(Exception):
    """Raised by handlers and hooks; answered as the reference's error object."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)


def iso_now() -> str:
    return iso_utc()


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json")


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "timestamp": iso_now(),
        }
    }


def error_response(err: ApiError) -> Response:
    response = json_response(error_body(err.code, err.message, err.details), err.status)
    response.headers.update(err.headers)
    return response


def _from_http(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    if status == 404:
        return ApiError("NOT_FOUND", "No such endpoint")
    if status == 405:
        allowed = sorted(getattr(exc, "valid_methods", None) or [])
        return ApiError("METHOD_NOT_ALLOWED", "Method not allowed on this endpoint",
                        {"allowed_methods": allowed}, headers={"Allow": ", ".join(allowed)})
    if status == 408:
        timeout = getattr(request, "body_timeout", None)
        return ApiError("REQUEST_TIMEOUT",
                        f"The request body did not arrive within {timeout:g} seconds"
                        if timeout else "The request body did not arrive in time",
                        {"field": "body", "timeout_seconds": timeout})
    if status in (400, 411, 413, 415, 422):
        return ApiError("VALIDATION_ERROR", exc.description or "Malformed request")
    if status == 401:
        return ApiError("UNAUTHORIZED", "Authentication required")
    if status == 403:
        return ApiError("FORBIDDEN", "Forbidden")
    log.warning("HTTP %s answered as INTERNAL_ERROR: %s", status, exc)
    return ApiError("INTERNAL_ERROR", "Internal server error")


def install_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def _api_error(err: ApiError) -> Response:
        return error_response(err)

    @app.errorhandler(TradingError)
    async def _trading_error(err: TradingError) -> Response:
        return error_response(ApiError(err.code, str(err), dict(err.details)))

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        return error_response(_from_http(exc))

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.error("unhandled error in the API", exc_info=exc)
        return error_response(ApiError("INTERNAL_ERROR", "Internal server error"))
