"""Bybit's private stream: the account's spot orders and executions, pushed as they happen.

Facts (bybit-exchange/docs @072c197: ``websocket/wss-authentication.mdx``,
``websocket/private/order.mdx``, ``websocket/private/execution.mdx``):

* ``wss://stream.bybit.com/v5/private``. Authenticate first with
  ``{"op": "auth", "args": [api_key, expires, signature]}``: ``expires`` a time in ms
  later than now, ``signature`` the hex HMAC-SHA256 of ``"GET/realtime" + expires``.
  The answer is ``{"op": "auth", "success": true|false, "ret_msg", "conn_id"}``.
* Then ``{"op": "subscribe", "args": ["order.spot", "execution.spot"]}`` (the
  categorised topics: spot only), answered ``{"op": "subscribe", "success": ...}``.
* ``order.spot`` pushes ``{"topic", "creationTime", "data": [order, ...]}`` with
  ``orderLinkId``, ``orderId``, ``orderStatus``, ``cumExecQty`` and ``rejectReason``;
  ``execution.spot`` pushes executions with ``execId``, ``execPrice``, ``execQty``,
  ``execFee``, ``feeCurrency``, ``execTime`` and ``execType`` (``Trade`` for a fill),
  possibly several of one order in one message. The two topics are separate: an order
  may be reported ``Filled`` before its executions arrive.
* Heartbeat: ``{"op": "ping"}`` every 20 s (the private answer is
  ``{"op": "pong", ...}``); a connection without pings or data is cut after 10 min.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson

from arbotd.exchange import (
    OrderReport,
    OrderTracker,
    ReportedFill,
    SignedOrderStream,
    StreamRefused,
)
from arbotd.exchange.wsclient import WebSocketConnection
from arbotd_bybit.orders import order_status, outcome_reason
from arbotd_bybit.rest import sign

__all__ = ["TOPICS", "BybitOrderStream", "auth_request", "parse_private"]

TOPICS = ("order.spot", "execution.spot")
_HEARTBEAT = orjson.dumps({"req_id": "arbotd-ping", "op": "ping"}).decode()


def auth_request(api_key: str, api_secret: str, expires_ms: int) -> dict[str, Any]:
    """The ``auth`` operation, signed."""
    return {"req_id": "arbotd-auth", "op": "auth",
            "args": [api_key, expires_ms, sign(api_secret, f"GET/realtime{expires_ms}")]}


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def parse_private(message: dict[str, Any]) -> list[OrderReport]:
    """One private-stream message -> what it says of the account's spot orders (nothing
    for answers and pongs; orders without an ``orderLinkId`` are not arbotd's)."""
    topic = message.get("topic")
    if topic is None:
        return []
    reports: list[OrderReport] = []
    if topic.startswith("order"):
        for item in message["data"]:
            link = item.get("orderLinkId")
            if not link or item.get("category", "spot") != "spot":
                continue
            filled = _number(item["cumExecQty"])
            bybit_status = str(item["orderStatus"])
            status = order_status(bybit_status, filled)
            reports.append(OrderReport(
                client_order_id=str(link),
                exchange_order_id=str(item.get("orderId") or "") or None,
                status=status,
                filled=filled,
                reason=None if status is None else outcome_reason(
                    bybit_status, str(item.get("rejectReason") or ""), status),
            ))
    elif topic.startswith("execution"):
        fills: dict[str, list[ReportedFill]] = {}
        order_ids: dict[str, str] = {}
        for item in message["data"]:
            link = item.get("orderLinkId")
            if not link or item.get("category", "spot") != "spot" \
                    or item.get("execType", "Trade") != "Trade":
                continue
            fills.setdefault(str(link), []).append(ReportedFill(
                fill_id=str(item["execId"]),
                price=_number(item["execPrice"]),
                quantity=_number(item["execQty"]),
                fee=_number(item.get("execFee")),
                fee_asset=str(item.get("feeCurrency") or ""),
                timestamp=int(item["execTime"]) / 1000.0,
            ))
            order_ids[str(link)] = str(item.get("orderId") or "")
        reports += [OrderReport(client_order_id=link, exchange_order_id=order_ids[link] or None,
                                fills=tuple(heard)) for link, heard in fills.items()]
    return reports


class BybitOrderStream(SignedOrderStream):
    """The account's spot orders and executions on Bybit's private stream."""

    name = "bybit"
    refused_advice = ("check the key in {0} and its secret in {1}, and that the key may "
                      "read orders (the same key as REST trading)")

    def __init__(self, tracker: OrderTracker, url: str, *, expires_after_ms: int = 5000,
                 **options: Any) -> None:
        super().__init__(tracker, url, **options)
        self.expires_after_ms = expires_after_ms

    async def login(self, ws: WebSocketConnection) -> None:
        key, secret = self.secrets()
        expires = self.timestamp_ms() + self.expires_after_ms
        answer = await self.request(ws, auth_request(key, secret, expires),
                                    lambda message: message.get("op") == "auth")
        if answer.get("success") is not True:
            raise StreamRefused(f"auth answered: {answer.get('ret_msg') or answer}")
        answer = await self.request(
            ws, {"req_id": "arbotd-subscribe", "op": "subscribe", "args": list(TOPICS)},
            lambda message: message.get("op") == "subscribe")
        if answer.get("success") is not True:
            raise StreamRefused(f"subscribing to {', '.join(TOPICS)} answered: "
                                f"{answer.get('ret_msg') or answer}")

    def heartbeat(self) -> str:
        return _HEARTBEAT

    def parse(self, message: Any) -> Iterable[OrderReport]:
        return parse_private(message)
