"""Password hashes for API users: scrypt from the standard library.

A hash is stored as ``scrypt$N$r$p$salt$key`` (salt and key in base64), so the cost can be
raised later without invalidating existing hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = ["hash_password", "verify_password"]

_N, _R, _P = 2**14, 8, 1  # about 16 MiB and 50 ms per hash on a small server
_KEY_LENGTH = 32


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_KEY_LENGTH,
        maxmem=256 * 1024 * 1024,
    )


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``."""
    salt = os.urandom(16)
    key = _scrypt(password, salt, _N, _R, _P)
    encode = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${encode(salt).decode()}${encode(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (compared in
    constant time; a malformed hash never matches)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
