"""Bitget's error codes and what the daemon makes of them (bitget-upbit-protocols.md
1.3, Bitget's ``spot/error-code_restapi`` and ``common/faq``).

Every REST answer is ``{"code": "00000", "msg": "success", "requestTime": ..., "data":
...}``; ``code`` is a string and anything but ``"00000"`` is an error. The HTTP status of
a business error is not documented (unverified): the client reads the ``code`` of any
JSON answer, whatever its status.
"""

from __future__ import annotations

__all__ = [
    "AUTH_CODES",
    "DUPLICATE_CLIENT_ID",
    "INSUFFICIENT_BALANCE",
    "ORDER_FINAL",
    "ORDER_NOT_FOUND",
    "RATE_LIMITED",
    "SUCCESS",
    "TEMPORARY_CODES",
    "TIMESTAMP_EXPIRED",
]

SUCCESS = "00000"
# "Too many requests", as an HTTP 429 (its body's code is 429 too).
RATE_LIMITED = frozenset({"429"})
# Backend releases (Tue/Wed/Thu 14:00-17:00 UTC+8): Bitget's FAQ says to retry these.
TEMPORARY_CODES = frozenset({"45001", "40725", "40808", "40015", "40200"}) | RATE_LIMITED
# The request's timestamp is too far from Bitget's clock (40008 expired, 40005 invalid),
# or a placement arrived after its requestTime + receiveWindow (40078): never executed,
# so a retry (after the clock is measured again) is safe.
TIMESTAMP_EXPIRED = frozenset({"40008", "40005", "40078"})
# A key, signature, passphrase, IP or permission Bitget refuses: the operator must act.
AUTH_CODES = frozenset({"40001", "40002", "40003", "40006", "40009", "40011", "40012",
                        "40036", "40018", "40038", "40014"})
# Looking up or cancelling an order Bitget does not know.
ORDER_NOT_FOUND = frozenset({"43001", "40109", "43004", "22001"})
# Cancelling an order that is already final.
ORDER_FINAL = frozenset({"45031"})
# A placement whose clientOid Bitget already holds.
DUPLICATE_CLIENT_ID = frozenset({"43118", "45034"})
INSUFFICIENT_BALANCE = frozenset({"43012", "45002", "43132"})
