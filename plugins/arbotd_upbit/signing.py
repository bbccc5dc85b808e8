"""Upbit's request authentication: a JWT in ``Authorization: Bearer <token>``.

Facts (bitget-upbit-protocols.md 2.2, docs.upbit.com/kr/reference/auth):

* claims ``access_key``, ``nonce`` (a new UUID per request; a reused one is refused
  ``nonce_used``) and, only when the request has parameters, ``query_hash`` (the
  lowercase hex SHA-512 of the *unencoded* query string, ``market=KRW-BTC&side=bid``,
  arrays as ``key[]=v``) and ``query_hash_alg: "SHA512"``. A JSON body's fields are
  hashed the same way, in the order they are sent. No timestamp claim: no clock offset.
* Signed with the secret key as raw bytes. Upbit's own example token is HS512 (ccxt
  signs HS256, which Upbit also accepted in its older examples); HS512 is used here, as
  the current documentation shows it.
* The private WebSocket takes the same token, without a query hash.
"""

from __future__ import annotations

import hashlib
import uuid
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlencode

import jwt

__all__ = ["ALGORITHM", "bearer", "hash_source", "query_hash", "token"]

ALGORITHM = "HS512"


def hash_source(params: Mapping[str, Any]) -> str:
    """The string whose SHA-512 is the query hash: ``key=value`` pairs joined by ``&``,
    unencoded, lists as ``key[]=v`` (``None`` values left out)."""
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            pairs += [(f"{key}[]", item) for item in value]
        else:
            pairs.append((key, value))
    return unquote(urlencode(pairs))


def query_hash(params: Mapping[str, Any]) -> str:
    """The ``query_hash`` claim of a request with ``params``."""
    return hashlib.sha512(hash_source(params).encode()).hexdigest()


def token(access_key: str, secret_key: str, params: Mapping[str, Any] | None = None, *,
          nonce: str | None = None, algorithm: str = ALGORITHM) -> str:
    """A signed JWT for one request (``params``: its query or body fields)."""
    claims: dict[str, str] = {"access_key": access_key, "nonce": nonce or str(uuid.uuid4())}
    if params:
        claims["query_hash"] = query_hash(params)
        claims["query_hash_alg"] = "SHA512"
    with warnings.catch_warnings():
        # Upbit issues the secret keys (40 characters): PyJWT's advice on their length is
        # not the operator's to follow.
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret_key, algorithm=algorithm)


def bearer(access_key: str, secret_key: str, params: Mapping[str, Any] | None = None) -> str:
    """The ``Authorization`` header's value."""
    return f"Bearer {token(access_key, secret_key, params)}"
