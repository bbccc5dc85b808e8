"""What handlers share: the server's state, endpoint kinds and request parsing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import orjson
from quart import current_app, request

from arbotd import Runtime
from arbotd_api.auth import Credentials
from arbotd_api.config import ApiConfig
from arbotd_api.errors import ApiError
from arbotd_api.pricecache import PriceCache
from arbotd_api.ratelimit import RateLimiter

__all__ = ["ApiState", "json_body", "kind", "state"]

F = TypeVar("F", bound=Callable[..., Any])

# Endpoint kinds: "read" and "write" need credentials when auth is required ("write"
# also the trading scope); "public_read"/"public_write" (health, login) never do.
KINDS = ("read", "write", "public_read", "public_write")


@attrs.define
class ApiState:
    runtime: Runtime
    settings: ApiConfig
    credentials: Credentials
    limiter: RateLimiter
    prices: PriceCache = attrs.field(factory=PriceCache)


def state() -> ApiState:
    return current_app.config["ARBOTD"]


def kind(name: str) -> Callable[[F], F]:
    """Mark a view function with its endpoint kind (see ``KINDS``)."""
    assert name in KINDS

    def mark(view: F) -> F:
        view._api_kind = name  # type: ignore[attr-defined]
        return view

    return mark


async def json_body(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; ``VALIDATION_ERROR`` for anything else. An empty body
    is ``{}`` when ``optional``."""
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        if optional:
            return {}
        raise ApiError("VALIDATION_ERROR", "A JSON object body is required")
    try:
        body = orjson.loads(raw)
    except ValueError:
        raise ApiError("VALIDATION_ERROR", "The body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError("VALIDATION_ERROR", "The body must be a JSON object")
    return body


def string_list(body: dict[str, Any], field: str) -> list[str] | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError("VALIDATION_ERROR", f"{field} must be a list of strings",
                       {"field": field})
    return value


def float_param(name: str) -> float | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError("VALIDATION_ERROR", f"{name} must be a number",
                       {"field": name, "provided": raw}) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ApiError("VALIDATION_ERROR", f"{name} must be a finite number", {"field": name})
    return value
