"""A fake Binance spot REST server on 127.0.0.1 (trio + h11), for the REST client's tests.

It serves ``GET /api/v3/time`` and the signed ``GET /api/v3/account`` in Binance's response
shapes (exchange-protocols.md 1.2), verifies signatures for real (HMAC-SHA256 over the query
string as received, minus the ``signature`` parameter), checks ``X-MBX-APIKEY`` and the
timestamp against its own clock (shifted by ``skew_ms``) and ``recvWindow``, and answers
``X-MBX-USED-WEIGHT-1M``. ``fault`` injects: ``"429"``, ``"418"`` (with ``Retry-After``),
``"500"``, ``"-1021"``, ``"-1022"`` and ``"stall"`` (sleep ``stall_seconds``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import h11
import orjson
import trio

WEIGHTS = {"/api/v3/time": 1, "/api/v3/account": 20}
BAD_SIGNATURE = {"code": -1022, "msg": "Signature for this request is not valid."}
BAD_TIMESTAMP = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
BAD_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}


@attrs.define
class SeenRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    signature_valid: bool | None = None


@attrs.define
class FakeBinanceRest:
    api_key: str
    api_secret: str
    url: str = ""
    skew_ms: int = 0
    fault: str | None = None
    retry_after: int = 7
    stall_seconds: float = 5.0
    used_weight: int = 0
    balances: dict[str, tuple[str, str]] = attrs.field(
        factory=lambda: {"BTC": ("0.50000000", "0.10000000"), "USDT": ("1000.00000000", "0")}
    )
    requests: list[SeenRequest] = attrs.field(factory=list)

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.skew_ms

    def verify(self, query: str) -> bool:
        """Recompute the signature over the query minus its ``signature`` parameter."""
        parts = query.split("&")
        given = [p.partition("=")[2] for p in parts if p.startswith("signature=")]
        rest = "&".join(p for p in parts if not p.startswith("signature="))
        if len(given) != 1:
            return False
        expected = hmac.new(self.api_secret.encode(), rest.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, given[0])

    async def answer(self, seen: SeenRequest) -> tuple[int, dict[str, str], Any]:
        self.used_weight += WEIGHTS.get(seen.path, 1)
        headers: dict[str, str] = {}
        if self.fault == "stall":
            await trio.sleep(self.stall_seconds)
        if self.fault in ("429", "418"):
            headers["Retry-After"] = str(self.retry_after)
            msg = "Way too many requests; IP banned." if self.fault == "418" else (
                "Too many requests.")
            return int(self.fault), headers, {"code": -1003, "msg": msg}
        if self.fault == "500":
            return 500, headers, {"code": -1000, "msg": "An unknown error occurred."}
        if self.fault == "-1021" and seen.path == "/api/v3/account":
            return 400, headers, BAD_TIMESTAMP
        if self.fault == "-1022":
            return 400, headers, BAD_SIGNATURE
        if seen.path == "/api/v3/time" and seen.method == "GET":
            return 200, headers, {"serverTime": self.now_ms()}
        if seen.path == "/api/v3/account" and seen.method == "GET":
            return self.account(seen)
        return 404, headers, {"code": -1000, "msg": "Unknown endpoint."}

    def account(self, seen: SeenRequest) -> tuple[int, dict[str, str], Any]:
        if seen.headers.get("x-mbx-apikey") != self.api_key:
            return 401, {}, BAD_KEY
        params = dict(parse_qsl(seen.query))
        try:
            timestamp = int(params["timestamp"])
            recv_window = int(params.get("recvWindow", 5000))
        except (KeyError, ValueError):
            return 400, {}, {"code": -1102, "msg": "Mandatory parameter 'timestamp' was not sent."}
        server = self.now_ms()
        if timestamp >= server + 1000 or server - timestamp > recv_window:
            return 400, {}, BAD_TIMESTAMP
        seen.signature_valid = self.verify(seen.query)
        if not seen.signature_valid:
            return 400, {}, BAD_SIGNATURE
        return 200, {}, {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000",
                                "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": server, "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": f"{Decimal(free):.8f}", "locked": f"{Decimal(locked):.8f}"}
                for a, (free, locked) in self.balances.items()
            ],
            "permissions": ["SPOT"], "uid": 354937868,
        }

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                    continue
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage) and request is not None:
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    return
            target = urlsplit(request.target.decode())
            seen = SeenRequest(
                method=request.method.decode(),
                path=target.path,
                query=target.query,
                headers={k.decode().lower(): v.decode() for k, v in request.headers},
            )
            self.requests.append(seen)
            status, headers, body = await self.answer(seen)
            payload = orjson.dumps(body)
            headers = {
                **headers,
                "Content-Type": "application/json;charset=UTF-8",
                "Content-Length": str(len(payload)),
                "Connection": "close",
                "X-MBX-USED-WEIGHT-1M": str(self.used_weight),
            }
            await stream.send_all(conn.send(h11.Response(
                status_code=status, headers=list(headers.items()))))
            await stream.send_all(conn.send(h11.Data(data=payload)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass
        finally:
            await stream.aclose()


@asynccontextmanager
async def open_fake_binance_rest(
    api_key: str = "test-api-key", api_secret: str = "test-api-secret"
) -> AsyncIterator[FakeBinanceRest]:
    fake = FakeBinanceRest(api_key=api_key, api_secret=api_secret)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, fake.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        fake.url = f"http://127.0.0.1:{port}"
        yield fake
        nursery.cancel_scope.cancel()
