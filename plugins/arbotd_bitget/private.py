"""Bitget's private ``orders`` channel: the account's spot orders, pushed as they change.

Facts (bitget-upbit-protocols.md 1.4, Bitget's ``common/websocket-intro`` and
``spot/websocket_private_Order-Channel``):

* ``wss://ws.bitget.com/v2/ws/private``. Log in first: ``{"op": "login", "args":
  [{"apiKey", "passphrase", "timestamp", "sign"}]}``, ``sign`` the base64 HMAC-SHA256 of
  ``timestamp + "GET" + "/user/verify"`` (:func:`arbotd_bitget.signing.login_request`).
  The answer is ``{"event": "login", "code": 0}`` (or ``"0"``), or ``{"event":
  "error", "code": "30005", ...}`` (30011/30012/30013/30015: key, passphrase,
  timestamp, sign), and the connection closes.
* Then ``{"op": "subscribe", "args": [{"instType": "SPOT", "channel": "orders",
  "instId": "default"}]}`` (every symbol), answered ``{"event": "subscribe", "arg":
  {...}}``. Nothing is pushed at subscription; each push is ``{"action", "arg",
  "data": [order, ...]}`` with ``clientOid``, ``orderId``, ``status``,
  ``accBaseVolume`` (filled so far), ``orderType``, ``force`` and, for the fill that
  caused it, ``tradeId``, ``fillPrice``, ``baseVolume``, ``fillFee`` (negative: a
  charge), ``fillFeeCoin`` and ``fillTime``.
* Heartbeat: the text ``ping``, answered ``pong``; the server cuts the connection every
  24 h, and the stream reconnects as after any drop.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from arbotd.exchange import OrderReport, ReportedFill, SignedOrderStream, StreamRefused
from arbotd.exchange.wsclient import WebSocketConnection
from arbotd_bitget.orders import final_status
from arbotd_bitget.signing import login_request

__all__ = ["ORDERS_CHANNEL", "BitgetOrderStream", "parse_orders"]

ORDERS_CHANNEL = {"instType": "SPOT", "channel": "orders", "instId": "default"}


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def parse_orders(message: dict[str, Any]) -> list[OrderReport]:
    """One ``orders`` push -> what it says of each order (orders without a
    ``clientOid`` are not arbotd's)."""
    reports = []
    for item in message["data"]:
        oid = item.get("clientOid")
        if not oid:
            continue
        filled = _number(item.get("accBaseVolume"))
        fills: tuple[ReportedFill, ...] = ()
        trade_id = item.get("tradeId")
        if trade_id and _number(item.get("baseVolume")) > 0:
            fills = (ReportedFill(
                fill_id=str(trade_id),
                price=_number(item["fillPrice"]),
                quantity=_number(item["baseVolume"]),
                fee=-_number(item.get("fillFee")),  # Bitget writes a charge as negative
                fee_asset=str(item.get("fillFeeCoin") or ""),
                timestamp=int(item.get("fillTime") or item["uTime"]) / 1000.0,
            ),)
        force = None if item.get("orderType") == "market" else item.get("force")
        reports.append(OrderReport(
            client_order_id=str(oid),
            exchange_order_id=str(item.get("orderId") or "") or None,
            status=final_status(str(item["status"]), filled, force),
            filled=filled,
            fills=fills,
        ))
    return reports


class BitgetOrderStream(SignedOrderStream):
    """The account's spot orders on Bitget's private WebSocket."""

    name = "bitget"
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
            ws, {"op": "subscribe", "args": [ORDERS_CHANNEL]},
            lambda message: message.get("event") in ("subscribe", "error"))
        if answer.get("event") != "subscribe":
            raise StreamRefused(f"subscribing to the orders channel answered "
                                f"{answer.get('code')}: {answer.get('msg')}")

    def heartbeat(self) -> str:
        return "ping"

    def parse(self, message: Any) -> Iterable[OrderReport]:
        event = message.get("event")
        if event == "error":
            self.problems.warning("error", "Bitget said %s: %s", message.get("code"),
                                  message.get("msg"))
            return ()
        if event is not None or message.get("arg", {}).get("channel") != "orders":
            return ()
        return parse_orders(message)
