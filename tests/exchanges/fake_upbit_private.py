"""A fake Upbit private WebSocket (``/websocket/v1/private``) on 127.0.0.1 pushing the
orders of a :class:`FakeUpbit` as ``myOrder`` events as it matches them, for the private
stream's tests (bitget-upbit-protocols.md 2.4).

The upgrade must carry ``Authorization: Bearer <JWT>`` signed with the fake's secret
(verified for real: signature, access key, a fresh nonce); otherwise it is refused with
401 and Upbit's error body. The subscription is the request array with a ``myOrder``
type; Upbit acknowledges nothing. The text ``PING`` is answered ``{"status":"UP"}``.

Each order is pushed as it changes: ``wait`` when accepted, ``trade`` per fill (its
``trade_uuid`` that of the order's ``trades[]``, ``executed_volume`` cumulative,
``trades_count`` growing by one), then ``done`` or ``cancel``; in binary frames, as the
public stream. The faults are those of :mod:`exchanges.fakeprivate`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import jwt
import orjson
from exchanges.fake_upbit import FakeUpbit
from exchanges.fakeprivate import FILL, ORDER, FakePrivateStream, PrivateConnection, serving
from trio_websocket import WebSocketRequest

PATH = "/websocket/v1/private"


class FakeUpbitPrivate(FakePrivateStream):
    """The private WebSocket of ``exchange``'s account."""

    path = PATH

    def __init__(self, exchange: FakeUpbit) -> None:
        super().__init__()
        self.exchange = exchange
        exchange.order_listeners.append(self.on_order)
        self.requests: list[Any] = []

    async def serve(self, request: WebSocketRequest) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        refusal = None if not self.refuse_logins else "invalid_access_key"
        refusal = refusal or self._refusal(headers.get("authorization", ""))
        self.logins.append(refusal is None)
        if refusal is not None:
            await request.reject(401, body=orjson.dumps(
                {"error": {"name": refusal, "message": "refused"}}))
            return
        connection = PrivateConnection()
        connection.logged_in = True
        await self.run_connection(request, connection, self.read, self._send_queued)

    def _refusal(self, header: str) -> str | None:
        if not header.startswith("Bearer "):
            return "no_authorization_token"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                claims = jwt.decode(header[7:], self.exchange.secret_key,
                                    algorithms=["HS512", "HS256"])
        except jwt.InvalidTokenError:
            return "jwt_verification"
        if claims.get("access_key") != self.exchange.access_key:
            return "invalid_access_key"
        if claims.get("nonce") in self.exchange.nonces:
            return "nonce_used"
        self.exchange.nonces.add(claims.get("nonce"))
        return None

    async def read(self, ws: Any, connection: PrivateConnection) -> None:
        while True:
            raw = await ws.get_message()
            if raw == "PING":
                self.heartbeats += 1
                connection.send('{"status":"UP"}')
                continue
            try:
                message = orjson.loads(raw)
                assert isinstance(message, list) and "ticket" in message[0]
            except (ValueError, AssertionError, KeyError, TypeError):
                connection.send(orjson.dumps({"error": {
                    "name": "WRONG_FORMAT", "message": "request is not valid"}}).decode())
                continue
            self.requests.append(message)
            if any(item.get("type") == "myOrder" for item in message[1:]):
                connection.ready = True

    def on_order(self, order: dict[str, Any], trades: list[dict[str, Any]]) -> None:
        """Push the order's acceptance, each trade, and its end."""
        base = self._event(order, "wait", Decimal(0), 0)
        self.publish(orjson.dumps(base).decode(), ORDER)
        executed = Decimal(0)
        paid = Decimal(0)
        for number, trade in enumerate(trades, 1):
            executed += Decimal(trade["volume"])
            fee = Decimal(trade["funds"]) * Decimal("0.0005")
            paid += fee
            event = {**self._event(order, "trade", executed, number),
                     "trade_uuid": trade["uuid"], "price": float(trade["price"]),
                     "trade_fee": float(fee), "paid_fee": float(paid), "is_maker": False,
                     "trade_timestamp": int(time.time() * 1000)}
            self.publish(orjson.dumps(event).decode(), FILL)
        final = self._event(order, order["state"], executed, len(trades))
        self.publish(orjson.dumps(final).decode(), ORDER)

    @staticmethod
    def _event(order: dict[str, Any], state: str, executed: Decimal, count: int
               ) -> dict[str, Any]:
        now = int(time.time() * 1000)
        volume = order.get("volume")
        return {
            "type": "myOrder", "code": order["market"], "uuid": order["uuid"],
            "ask_bid": "BID" if order["side"] == "bid" else "ASK",
            "order_type": order["ord_type"], "state": state, "trade_uuid": None,
            "price": float(order["price"]) if order.get("price") else None,
            "avg_price": None, "volume": float(volume) if volume else None,
            "remaining_volume": None, "executed_volume": float(executed),
            "trades_count": count, "reserved_fee": 0, "remaining_fee": 0, "paid_fee": 0,
            "locked": 0, "executed_funds": 0, "trade_fee": None, "is_maker": None,
            "time_in_force": order.get("time_in_force"), "identifier": order["identifier"],
            "smp_type": None, "prevented_volume": 0, "prevented_locked": 0,
            "trade_timestamp": None, "order_timestamp": now, "timestamp": now,
            "stream_type": "REALTIME"}


@asynccontextmanager
async def open_fake_upbit_private(exchange: FakeUpbit) -> AsyncIterator[FakeUpbitPrivate]:
    async with serving(FakeUpbitPrivate(exchange)) as fake:
        yield fake
