"""Upbit's error answers: ``{"error": {"name": "<code>", "message": "…"}}`` with an HTTP
status (bitget-upbit-protocols.md 2.3), and what each means to the daemon.

Quotation endpoints may answer a numeric ``name``; names are compared as strings.
"""

from __future__ import annotations

from typing import Any

from arbotd import PermanentExchangeError

__all__ = [
    "AUTH_ERRORS",
    "ORDER_NOT_FOUND",
    "ORDER_REFUSALS",
    "UpbitError",
    "error_fields",
]

EXCHANGE = "upbit"
ORDER_NOT_FOUND = "order_not_found"
# An order Upbit refuses for what it is (balance, size, tick, parameters): a rejection,
# not a failure to talk to Upbit.
ORDER_REFUSALS = frozenset({
    "insufficient_funds_bid", "insufficient_funds_ask",
    "under_min_total_bid", "under_min_total_ask",
    "invalid_price_bid", "invalid_price_ask",
    "create_bid_error", "create_ask_error",
    "validation_error", "invalid_parameter", "invalid_identifier",
    "market_does_not_exist", "market_offline",
})
# The key, its IP allowlist or its permissions: the operator must act.
AUTH_ERRORS = frozenset({
    "jwt_verification", "invalid_query_payload", "expired_access_key",
    "invalid_access_key", "no_authorization_ip", "no_authorization_i_p",
    "no_authorization_token", "out_of_scope", "thirdparty_agreement_required",
})
# nonce_used: a token's nonce Upbit saw before; a new token has a new nonce.
NONCE_USED = "nonce_used"


class UpbitError(PermanentExchangeError):
    """Upbit refused a request; ``name`` is its ``error.name`` (``"order_not_found"``)."""

    def __init__(self, message: str, name: str, status: int) -> None:
        self.name = name
        self.status = status
        super().__init__(EXCHANGE, message)


def error_fields(answer: Any) -> tuple[str, str] | None:
    """``(name, message)`` of an Upbit error answer, ``None`` for anything else."""
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), dict):
        return None
    error = answer["error"]
    return str(error.get("name", "")), str(error.get("message", ""))
