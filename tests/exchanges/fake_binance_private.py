"""A fake Binance WebSocket API on 127.0.0.1 serving the account's user data stream, for
the private stream's tests: the orders of a :class:`FakeBinanceRest` are pushed as
``executionReport`` events while that fake matches them.

It answers, in the shapes of Binance's ``web-socket-api.md``:

* ``userDataStream.subscribe.signature``: the key must be the REST fake's, the timestamp
  within ``recvWindow`` of its clock, and the signature the hex HMAC-SHA256 of the other
  params sorted by name (checked for real): ``{"id", "status": 200, "result":
  {"subscriptionId"}}``, else 401 ``-2015`` / 400 ``-1021`` / 400 ``-1022``;
* ``ping``: ``{"id", "status": 200, "result": {}}``.

Events are ``{"subscriptionId", "event": {"e": "executionReport", ...}}`` as
``user-data-stream.md`` shows them: ``NEW``, one ``TRADE`` per fill (with the same
trade id as ``myTrades``), then ``EXPIRED`` for an IOC order that did not fill entirely.
The faults are those of :mod:`exchanges.fakeprivate`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any

import orjson
from exchanges.fake_binance_rest import FakeBinanceRest, FakeOrder
from exchanges.fakeprivate import FILL, ORDER, FakePrivateStream, PrivateConnection, serving

PATH = "/ws-api/v3"
BAD_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
BAD_SIGNATURE = {"code": -1022, "msg": "Signature for this request is not valid."}
BAD_TIMESTAMP = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
UNKNOWN_METHOD = {"code": -1100, "msg": "Illegal characters found in a parameter."}


def _text(value: Decimal) -> str:
    return f"{value:.8f}"


class FakeBinanceUserData(FakePrivateStream):
    """The WebSocket API's user data stream of ``rest``'s account."""

    path = PATH

    def __init__(self, rest: FakeBinanceRest) -> None:
        super().__init__()
        self.rest = rest
        rest.order_listeners.append(self.on_order)
        self._executions = itertools.count(8641984)
        # order id -> quantity already announced as executed
        self._announced: dict[int, Decimal] = {}

    # --- requests --------------------------------------------------------------------

    async def read(self, ws: Any, connection: PrivateConnection) -> None:
        while True:
            message = orjson.loads(await ws.get_message())
            self.requests.append(message)
            method, request_id = message.get("method"), message.get("id")
            if method == "userDataStream.subscribe.signature":
                status, answer = self._subscribe(message.get("params") or {})
                self.logins.append(status == 200)
                if status == 200:
                    connection.ready = True
            elif method == "ping":
                self.heartbeats += 1
                status, answer = 200, {}
            else:
                status, answer = 400, UNKNOWN_METHOD
            reply: dict[str, Any] = {"id": request_id, "status": status}
            reply["result" if status == 200 else "error"] = answer
            connection.send(orjson.dumps(reply).decode())

    def _subscribe(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.refuse_logins or params.get("apiKey") != self.rest.api_key:
            return 401, BAD_KEY
        try:
            timestamp = int(params["timestamp"])
            recv_window = int(params.get("recvWindow", 5000))
        except (KeyError, ValueError):
            return 400, BAD_TIMESTAMP
        server = self.rest.now_ms()
        if timestamp >= server + 1000 or server - timestamp > recv_window:
            return 400, BAD_TIMESTAMP
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
        expected = hmac.new(self.rest.api_secret.encode(), payload.encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(params.get("signature", "")).lower()):
            return 400, BAD_SIGNATURE
        return 200, {"subscriptionId": 0}  # ids count per connection, from 0

    # --- events ------------------------------------------------------------------------

    def on_order(self, order: FakeOrder, trades: list[dict[str, Any]]) -> None:
        """Push what just happened to ``order``: its acceptance, each fill, its end."""
        announced = self._announced.get(order.order_id)
        if announced is None:
            announced = Decimal(0)
            self._report(order, "NEW", "NEW", announced)
        for number, trade in enumerate(trades, 1):
            announced += Decimal(trade["qty"])
            last = number == len(trades)
            status = "FILLED" if last and order.status == "FILLED" else "PARTIALLY_FILLED"
            self._report(order, "TRADE", status, announced, trade)
        self._announced[order.order_id] = announced
        if order.status in ("EXPIRED", "CANCELED", "REJECTED"):
            self._report(order, order.status, order.status, announced)

    def _report(self, order: FakeOrder, execution: str, status: str, executed: Decimal,
              trade: dict[str, Any] | None = None) -> None:
        now = self.rest.now_ms()
        event: dict[str, Any] = {
            "e": "executionReport", "E": now, "s": order.symbol,
            "c": order.client_order_id, "S": order.side, "o": order.type,
            "f": order.time_in_force, "q": _text(order.quantity), "p": _text(order.price),
            "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "", "x": execution,
            "X": status, "r": "NONE", "i": order.order_id,
            "l": trade["qty"] if trade else "0.00000000", "z": _text(executed),
            "L": trade["price"] if trade else "0.00000000",
            "n": trade["commission"] if trade else "0",
            "N": trade["commissionAsset"] if trade else None,
            "T": trade["time"] if trade else now, "t": trade["id"] if trade else -1,
            "I": next(self._executions), "w": False, "m": False, "M": False,
            "O": order.time_ms, "Z": _text(order.quote), "Y": trade["quoteQty"] if trade
            else "0.00000000", "Q": "0.00000000", "V": "NONE",
        }
        if execution == "EXPIRED":
            event["eR"] = "UNFILLED_IOC_QUANTITY_EXPIRED"
        # Each connection holds one subscription, the first of its session: id 0.
        self.publish(orjson.dumps({"subscriptionId": 0, "event": event}).decode(),
                     FILL if trade else ORDER)


def open_fake_binance_user_data(
    rest: FakeBinanceRest,
) -> AbstractAsyncContextManager[FakeBinanceUserData]:
    """The fake WebSocket API beside ``rest``; ``url`` is the stream's URL to configure."""
    return serving(FakeBinanceUserData(rest))
