"""Bitget's request signatures (bitget-upbit-protocols.md 1.2 and 1.4, Bitget's
``common/signature``): REST and the private WebSocket's login sign the same way.

* REST: ``ACCESS-SIGN`` = base64(HMAC-SHA256(secret, timestamp + METHOD + request path
  + ("?" + query string when there is one) + body)), the timestamp in milliseconds, the
  body left out when empty. The query string is signed exactly as it is sent.
* WebSocket login: the same over ``timestamp + "GET" + "/user/verify"``.

The secret and the passphrase are never logged nor put in a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

__all__ = ["VERIFY_PATH", "login_request", "sign"]

VERIFY_PATH = "/user/verify"


def sign(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    """Bitget's signature of one request: ``request_path`` carries ``?query`` when there
    is one."""
    payload = f"{timestamp}{method.upper()}{request_path}{body}"
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def login_request(api_key: str, api_secret: str, passphrase: str, timestamp: int
                  ) -> dict[str, Any]:
    """The private WebSocket's ``login`` operation, signed. The doc's text says the
    timestamp is in milliseconds but its example and every client read use seconds
    (bitget-upbit-protocols.md 1.4, unverified): the caller passes seconds, the form
    that the published clients are known to log in with."""
    ts = str(timestamp)
    return {"op": "login", "args": [{
        "apiKey": api_key, "passphrase": passphrase, "timestamp": ts,
        "sign": sign(api_secret, ts, "GET", VERIFY_PATH)}]}
