"""OKX's private ``orders`` channel: the account's spot orders, pushed as they change.

Facts (OKX docs-v5 ``#overview-websocket-login``, ``#order-book-trading-trade-ws-order-
channel``, ``#error-code-websocket-public``; exchange-protocols.md 3.1):

* ``wss://ws.okx.com:8443/ws/v5/private`` (demo trading: ``wspap.okx.com``). Log in
  first: ``{"op": "login", "args": [{"apiKey", "passphrase", "timestamp", "sign"}]}``
  with ``timestamp`` in Unix seconds and ``sign`` the base64 HMAC-SHA256 of
  ``timestamp + "GET" + "/users/self/verify"``; the login expires 30 s after its
  timestamp. The answer is ``{"event": "login", "code": "0"}``, or
  ``{"event": "error", "code", "msg"}`` (60005 invalid apiKey, 60007 invalid sign,
  60009 login failure, 60024 wrong passphrase...).
* Then ``{"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]}``,
  answered ``{"event": "subscribe", "arg": {...}}``. Nothing is pushed at
  subscription; each push is ``{"arg": {...}, "data": [order, ...]}`` with ``clOrdId``,
  ``ordId``, ``state``, ``accFillSz``, ``ordType`` and, for the fill that caused the
  update, ``tradeId``, ``fillPx``, ``fillSz``, ``fillFee`` (negative: a charge),
  ``fillFeeCcy`` and ``fillTime``.
* Heartbeat: the text ``ping`` when nothing came for a while (under 30 s), answered
  ``pong``. ``{"event": "notice", "code": "64008"}`` announces a disconnect for an
  upgrade: connect again.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from arbotd.exchange import (
    OrderReport,
    ReportedFill,
    Resync,
    SignedOrderStream,
    StreamRefused,
)
from arbotd.exchange.wsclient import WebSocketConnection
from arbotd_okx.orders import final_status
from arbotd_okx.rest import sign

__all__ = ["ORDERS_CHANNEL", "OkxOrderStream", "login_request", "parse_orders"]

ORDERS_CHANNEL = {"channel": "orders", "instType": "SPOT"}
VERIFY_PATH = "/users/self/verify"
SERVICE_UPGRADE = "64008"


def login_request(api_key: str, api_secret: str, passphrase: str, timestamp_s: int
                  ) -> dict[str, Any]:
    """The ``login`` operation, signed."""
    ts = str(timestamp_s)
    return {"op": "login", "args": [{
        "apiKey": api_key, "passphrase": passphrase, "timestamp": ts,
        "sign": sign(api_secret, ts, "GET", VERIFY_PATH)}]}


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def parse_orders(message: dict[str, Any]) -> list[OrderReport]:
    """One ``orders`` push -> what it says of each order (orders without a ``clOrdId``
    are not arbotd's)."""
    reports = []
    for item in message["data"]:
        cl_ord_id = item.get("clOrdId")
        if not cl_ord_id:
            continue
        filled = _number(item.get("accFillSz"))
        fills: tuple[ReportedFill, ...] = ()
        trade_id = item.get("tradeId")
        if trade_id and _number(item.get("fillSz")) > 0:
            fills = (ReportedFill(
                fill_id=str(trade_id),
                price=_number(item["fillPx"]),
                quantity=_number(item["fillSz"]),
                fee=-_number(item.get("fillFee")),  # OKX writes a charge as negative
                fee_asset=str(item.get("fillFeeCcy") or ""),
                timestamp=int(item.get("fillTime") or item["uTime"]) / 1000.0,
            ),)
        reports.append(OrderReport(
            client_order_id=str(cl_ord_id),
            exchange_order_id=str(item.get("ordId") or "") or None,
            status=final_status(str(item["state"]), filled, item.get("ordType")),
            filled=filled,
            fills=fills,
        ))
    return reports


class OkxOrderStream(SignedOrderStream):
    """The account's spot orders on OKX's private WebSocket."""

    name = "okx"
    plain_replies = frozenset({"pong"})
    secret_names = ("API key", "secret", "passphrase")
    refused_advice = "check the key in {0}, its secret in {1} and the passphrase in {2}"

    async def login(self, ws: WebSocketConnection) -> None:
        key, secret, passphrase = self.secrets()
        answer = await self.request(
            ws, login_request(key, secret, passphrase, self.timestamp_ms() // 1000),
            lambda message: message.get("event") in ("login", "error"))
        if answer.get("event") != "login" or str(answer.get("code", "0")) != "0":
            raise StreamRefused(f"login answered {answer.get('code')}: {answer.get('msg')}")
        answer = await self.request(
            ws, {"id": "arbotdorders", "op": "subscribe", "args": [ORDERS_CHANNEL]},
            lambda message: message.get("event") in ("subscribe", "error"))
        if answer.get("event") != "subscribe":
            raise StreamRefused(f"subscribing to the orders channel answered "
                                f"{answer.get('code')}: {answer.get('msg')}")

    def heartbeat(self) -> str:
        return "ping"

    def parse(self, message: Any) -> Iterable[OrderReport]:
        event = message.get("event")
        if event == "notice" and str(message.get("code")) == SERVICE_UPGRADE:
            raise Resync(f"OKX announced a disconnect: {message.get('msg')}")
        if event == "error":
            self.problems.warning("error", "OKX said %s: %s", message.get("code"),
                                  message.get("msg"))
            return ()
        if event is not None or message.get("arg", {}).get("channel") != "orders":
            return ()
        return parse_orders(message)
