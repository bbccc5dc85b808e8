"""Upbit's private ``myOrder`` stream: the account's orders, pushed as they change.

Facts (bitget-upbit-protocols.md 2.4, docs.upbit.com/kr/reference/websocket-myorder):

* ``wss://api.upbit.com/websocket/v1/private``, authenticated in the upgrade request by
  ``Authorization: Bearer <JWT>`` (claims ``access_key`` and ``nonce``, no query hash).
* Subscribe with ``[{"ticket"}, {"type": "myOrder"}, {"format": "DEFAULT"}]`` (no codes:
  every market). Upbit answers nothing until an order changes, so the subscription counts
  as made once sent; errors come as ``{"error": {"name", "message"}}``.
* Each event: ``{"type": "myOrder", "code", "uuid", "identifier", "state", "order_type",
  "price", "volume", "executed_volume", "trades_count", "trade_uuid", "trade_fee",
  "paid_fee", "time_in_force", "trade_timestamp", ...}``, numbers as JSON numbers.
  ``state: "trade"`` is one fill: ``price`` and ``trade_fee`` are that fill's; its volume
  is the growth of ``executed_volume`` since the order's event before, which the stream
  counts only when ``trades_count`` grew by exactly one (an event missed in between
  would merge two fills under one id; the fill is then left to REST).
* Keepalive as the public stream: the text ``PING``, answered ``{"status":"UP"}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson

from arbotd.exchange import (
    OrderReport,
    ReportedFill,
    Resync,
    SignedOrderStream,
)
from arbotd.exchange.wsclient import WebSocketConnection
from arbotd_upbit.orders import final_status
from arbotd_upbit.signing import token

__all__ = ["MyOrderParser", "UpbitOrderStream", "subscribe_request"]

FEE_ASSET = "KRW"


def subscribe_request() -> str:
    return orjson.dumps([{"ticket": f"arbotd-{uuid.uuid4()}"}, {"type": "myOrder"},
                         {"format": "DEFAULT"}]).decode()


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


class MyOrderParser:
    """``myOrder`` events -> order reports, remembering per order the trades heard so far
    (one parser per connection: a reconnect may have missed events)."""

    def __init__(self) -> None:
        # identifier -> (trades_count, executed_volume) of its last event
        self._last: dict[str, tuple[int, Decimal]] = {}

    def parse(self, message: dict[str, Any]) -> list[OrderReport]:
        identifier = message.get("identifier")
        if not identifier:
            return []  # not arbotd's (or made before identifiers were sent)
        identifier = str(identifier)
        state = str(message["state"])
        executed = _number(message.get("executed_volume"))
        count = int(message.get("trades_count") or 0)
        fills: tuple[ReportedFill, ...] = ()
        last_count, last_executed = self._last.get(identifier, (0, Decimal(0)))
        if state == "trade" and message.get("trade_uuid") and count == last_count + 1:
            ts = message.get("trade_timestamp") or message.get("timestamp")
            fills = (ReportedFill(
                fill_id=str(message["trade_uuid"]),
                price=_number(message["price"]),
                quantity=executed - last_executed,
                fee=_number(message.get("trade_fee")),
                fee_asset=FEE_ASSET,
                timestamp=int(ts) / 1000.0,
            ),)
        self._last[identifier] = (count, executed)
        volume = message.get("volume")
        order_type = str(message.get("order_type") or "")
        immediate = order_type != "limit" or message.get("time_in_force") in ("ioc", "fok")
        status = final_status(state, executed, None if volume is None else _number(volume),
                              immediate)
        return [OrderReport(
            client_order_id=identifier,
            exchange_order_id=str(message.get("uuid") or "") or None,
            status=status,
            filled=executed,
            fills=fills,
        )]


class UpbitOrderStream(SignedOrderStream):
    """The account's KRW-market orders on Upbit's private WebSocket. It signs in the
    upgrade request (a JWT of the access key and a nonce: no timestamp, so
    ``timestamp_ms`` goes unused)."""

    name = "upbit"
    secret_names = ("access key", "secret key")
    refused_advice = ("check the access key in {0}, the secret key in {1} and the key's IP "
                      "allowlist")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parser = MyOrderParser()

    def handshake_headers(self) -> list[tuple[str, str]]:
        access, secret = self.secrets()
        return [("Authorization", f"Bearer {token(access, secret)}")]

    async def login(self, ws: WebSocketConnection) -> None:
        # The upgrade carried the token; Upbit acknowledges no subscription.
        self._parser = MyOrderParser()
        await ws.send_message(subscribe_request())

    def heartbeat(self) -> str:
        return "PING"

    def parse(self, message: Any) -> Iterable[OrderReport]:
        if not isinstance(message, dict):
            raise ValueError("not a JSON object")
        error = message.get("error")
        if isinstance(error, dict):
            raise Resync(f"Upbit answered {error.get('name')}: {error.get('message')}")
        if message.get("type") != "myOrder":
            return ()  # {"status": "UP"}, myAsset
        return self._parser.parse(message)
