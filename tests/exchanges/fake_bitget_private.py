"""A fake Bitget private WebSocket (``/v2/ws/private``) on 127.0.0.1 pushing the orders of
a :class:`FakeBitget` on the ``orders`` channel as it matches them, for the private
stream's tests.

It answers, in the shapes of bitget-upbit-protocols.md 1.4 (and ccxt's reading of them):

* ``login``: the key and passphrase must be the fake's, the timestamp (seconds) within
  30 s of its clock, and ``sign`` the base64 HMAC-SHA256 of ``timestamp + "GET" +
  "/user/verify"`` (checked for real); refusals are ``{"event": "error"}`` with 30011,
  30012, 30014 or 30015, then the connection closes;
* ``subscribe`` to ``orders`` (``instId`` ``default``) only once logged in (30004
  otherwise);
* the text ``ping`` with ``pong``.

Each order is pushed as it changes: ``live`` when accepted, then once per fill (the
``tradeId`` of ``/api/v2/spot/trade/fills``, ``fillFee`` negative for a charge) as
``partially_filled`` or ``filled``, then ``cancelled`` for an IOC order not filled
entirely. The faults are those of :mod:`exchanges.fakeprivate`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any

import orjson
from exchanges.fake_bitget import FakeBitget
from exchanges.fakeprivate import FILL, ORDER, FakePrivateStream, PrivateConnection, serving

PATH = "/v2/ws/private"
_NO_FILL = {"tradeId": "", "fillPrice": "", "baseVolume": "0", "fillFee": "0",
            "fillFeeCoin": "", "fillTime": ""}


class FakeBitgetPrivate(FakePrivateStream):
    """The private WebSocket of ``exchange``'s account."""

    path = PATH

    def __init__(self, exchange: FakeBitget) -> None:
        super().__init__()
        self.exchange = exchange
        exchange.order_listeners.append(self.on_order)

    async def read(self, ws: Any, connection: PrivateConnection) -> None:
        while True:
            raw = await ws.get_message()
            if raw == "ping":
                self.heartbeats += 1
                connection.send("pong")
                continue
            message = orjson.loads(raw)
            self.requests.append(message)
            op = message.get("op")
            if op == "login":
                refusal = self._refusal((message.get("args") or [{}])[0])
                self.logins.append(refusal is None)
                connection.logged_in = refusal is None
                answer: dict[str, Any] = (
                    {"event": "login", "code": 0, "msg": ""} if refusal is None
                    else {"event": "error", "code": refusal[0], "msg": refusal[1]})
            elif op == "subscribe":
                args = message.get("args") or []
                if not connection.logged_in:
                    answer = {"event": "error", "code": "30004", "msg": "User needs to log in"}
                elif [(a.get("channel"), a.get("instType")) for a in args] != [
                        ("orders", "SPOT")]:
                    answer = {"event": "error", "code": "30001",
                              "msg": f"channel {args} doesn't exist"}
                else:
                    connection.ready = True
                    answer = {"event": "subscribe", "arg": args[0]}
            else:
                answer = {"event": "error", "code": "30003", "msg": f"Invalid op: {op}"}
            connection.send(orjson.dumps(answer).decode())

    def _refusal(self, args: dict[str, Any]) -> tuple[str, str] | None:
        """Why a ``login`` is refused (code, message), ``None`` when it passes."""
        if self.refuse_logins or args.get("apiKey") != self.exchange.api_key:
            return "30011", "Invalid ACCESS_KEY"
        if args.get("passphrase") != self.exchange.passphrase:
            return "30012", "Invalid ACCESS_PASSPHRASE"
        try:
            timestamp = int(args["timestamp"])
        except (KeyError, ValueError):
            return "30013", "Invalid ACCESS_TIMESTAMP"
        if abs(timestamp * 1000 - self.exchange.now_ms()) > 30_000:
            return "30014", "Request timestamp expired"
        payload = f"{timestamp}GET/user/verify"
        expected = base64.b64encode(hmac.new(self.exchange.api_secret.encode(),
                                             payload.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, str(args.get("sign", ""))):
            return "30015", "Invalid signature"
        return None

    def on_order(self, order: dict[str, Any], fills: list[dict[str, Any]]) -> None:
        """Push the order's acceptance, each fill, and its end when not filled."""
        item = {"instId": order["symbol"], "orderId": order["orderId"],
                "clientOid": order["clientOid"], "size": order["size"],
                "newSize": order["size"], "notional": order["size"],
                "orderType": order["orderType"], "force": order["force"],
                "side": order["side"], "priceAvg": order["priceAvg"],
                "cTime": order["cTime"], "uTime": order["uTime"], "stpMode": "none",
                "enterPointSource": "API"}
        self.publish(self._push({**item, "status": "live", "accBaseVolume": "0",
                                 **_NO_FILL}), ORDER)
        done = Decimal(0)
        for number, fill in enumerate(fills, 1):
            done += Decimal(fill["size"])
            last = number == len(fills)
            status = "filled" if last and order["status"] == "filled" else "partially_filled"
            fee = fill["feeDetail"]
            self.publish(self._push({
                **item, "status": status, "accBaseVolume": format(done, "f"),
                "tradeId": fill["tradeId"], "fillPrice": fill["priceAvg"],
                "baseVolume": fill["size"], "fillFee": fee["totalFee"],
                "fillFeeCoin": fee["feeCoin"], "fillTime": fill["cTime"], "tradeScope": "T",
                "feeDetail": [{"feeCoin": fee["feeCoin"], "fee": fee["totalFee"]}]}), FILL)
        if order["status"] != "filled":
            self.publish(self._push({**item, "status": order["status"],
                                     "accBaseVolume": order["baseVolume"], **_NO_FILL}), ORDER)

    def _push(self, item: dict[str, Any]) -> str:
        return orjson.dumps({
            "action": "snapshot",
            "arg": {"instType": "SPOT", "channel": "orders", "instId": "default"},
            "data": [item], "ts": self.exchange.now_ms(),
        }).decode()


def open_fake_bitget_private(
    exchange: FakeBitget,
) -> AbstractAsyncContextManager[FakeBitgetPrivate]:
    """The fake private WebSocket beside ``exchange``; ``url`` is the URL to configure."""
    return serving(FakeBitgetPrivate(exchange))
