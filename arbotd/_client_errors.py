"""The exceptions of :mod:`arbotd.client`, built from the API's error object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from arbotd._errors import ArbotError


class ArbotApiError(ArbotError):
    """An error answer from the API, or no answer at all.

    ``code`` is the error object's code (``None`` when the body was not an error object),
    ``details`` its details, ``status`` the HTTP status (``None`` without an HTTP answer).
    """

    code_name: str | None = None

    def __init__(self, code: str | None, message: str,
                 details: Mapping[str, Any] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.status = status

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status is not None else ""
        return f"{prefix}{self.code or 'error'}: {self.message}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
                f"details={self.details!r}, status={self.status!r})")


class InvalidSymbol(ArbotApiError):
    """The symbol is not traded; ``details["valid_symbols"]`` lists those that are."""

    code_name = "INVALID_SYMBOL"


class ExchangeNotAvailable(ArbotApiError):
    """The exchange is unknown, disabled or not connected."""

    code_name = "EXCHANGE_NOT_AVAILABLE"


class InsufficientBalance(ArbotApiError):
    """An account does not hold enough for the operation."""

    code_name = "INSUFFICIENT_BALANCE"


class RateLimitExceeded(ArbotApiError):
    """Too many requests; ``retry_after`` is the seconds to wait (``None`` if not said)."""

    code_name = "RATE_LIMIT_EXCEEDED"

    def __init__(self, code: str | None, message: str,
                 details: Mapping[str, Any] | None = None, status: int | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(code, message, details, status)
        if retry_after is None:
            retry_after = _int_or_none(self.details.get("retry_after"))
        self.retry_after = retry_after


class Unauthorized(ArbotApiError):
    """Credentials are missing, wrong or expired."""

    code_name = "UNAUTHORIZED"


class Forbidden(ArbotApiError):
    """The credentials are valid but their scope does not allow this (read on a write)."""

    code_name = "FORBIDDEN"


class TradingDisabled(ArbotApiError):
    """Trading is not allowed now (for example live mode without live trading enabled)."""

    code_name = "TRADING_DISABLED"


class ValidationError(ArbotApiError):
    """A body or parameter is malformed; ``details`` usually names the field."""

    code_name = "VALIDATION_ERROR"


class NotFound(ArbotApiError):
    """No such endpoint or object."""

    code_name = "NOT_FOUND"


class InternalError(ArbotApiError):
    """The server failed; its log says why (the answer never does)."""

    code_name = "INTERNAL_ERROR"


class ConnectionFailed(ArbotApiError):
    """The server could not be reached or did not answer: the cause is ``__cause__``."""

    code_name = "CONNECTION_FAILED"


class StreamClosed(ArbotApiError):
    """The server closed a WebSocket subscription; ``close_code`` and ``message`` (the
    close reason) say why: 1001 at shutdown, 1008 for a policy violation (a client too
    slow to keep up, failed authentication)."""

    code_name = "STREAM_CLOSED"

    @property
    def close_code(self) -> int | None:
        return _int_or_none(self.details.get("close_code"))


_BY_CODE: dict[str, type[ArbotApiError]] = {
    cls.code_name: cls
    for cls in (InvalidSymbol, ExchangeNotAvailable, InsufficientBalance, RateLimitExceeded,
                Unauthorized, Forbidden, TradingDisabled, ValidationError, NotFound,
                InternalError)
    if cls.code_name
}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def from_error_object(error: Mapping[str, Any], status: int | None,
                       retry_after: int | None = None) -> ArbotApiError:
    code = error.get("code")
    code = code if isinstance(code, str) else None
    message = error.get("message")
    message = message if isinstance(message, str) else "error"
    details = error.get("details")
    details = details if isinstance(details, Mapping) else {}
    cls = _BY_CODE.get(code or "", ArbotApiError)
    if cls is RateLimitExceeded:
        return RateLimitExceeded(code, message, details, status, retry_after=retry_after)
    return cls(code, message, details, status)


def error_from_response(response: httpx.Response) -> ArbotApiError:
    """The exception for an error answer: the class of its error code, or
    ``ArbotApiError`` with ``code=None`` when the body is not the error object."""
    retry_after = _int_or_none(response.headers.get("Retry-After"))
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return from_error_object(error, response.status_code, retry_after)
    text = response.text.strip()[:200] or response.reason_phrase
    if response.status_code == 429:
        return RateLimitExceeded(None, text, {}, 429, retry_after=retry_after)
    return ArbotApiError(None, text, {}, response.status_code)
