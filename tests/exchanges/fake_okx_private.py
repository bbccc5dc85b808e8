"""A fake OKX private WebSocket (``/ws/v5/private``) on 127.0.0.1 pushing the orders of a
:class:`FakeOkx` on the ``orders`` channel as it matches them, for the private stream's
tests.

It answers, in the shapes of OKX's docs (``#overview-websocket-login``, ``#order-book-
trading-trade-ws-order-channel``, ``#error-code-websocket-public``):

* ``login``: the key and passphrase must be the fake's, the timestamp (seconds) within
  30 s of its clock, and ``sign`` the base64 HMAC-SHA256 of ``timestamp + "GET" +
  "/users/self/verify"`` (checked for real); refusals are ``{"event": "error"}`` with
  60005, 60024, 60006 or 60007;
* ``subscribe`` to ``orders`` only once logged in (60011 otherwise);
* the text ``ping`` with ``pong``.

Each order is pushed as it changes: ``live`` when accepted, then once per fill (the
``tradeId`` of ``/api/v5/trade/fills``, ``fillFee`` negative for a charge) as
``partially_filled`` or ``filled``, then ``canceled`` for an IOC order not filled
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
from exchanges.fake_okx import FakeOkx
from exchanges.fakeprivate import FILL, ORDER, FakePrivateStream, PrivateConnection, serving

PATH = "/ws/v5/private"
_NO_FILL = {"tradeId": "", "fillPx": "", "fillSz": "0", "fillFee": "0", "fillFeeCcy": "",
            "fillTime": ""}


class FakeOkxPrivate(FakePrivateStream):
    """The private WebSocket of ``exchange``'s account."""

    path = PATH

    def __init__(self, exchange: FakeOkx) -> None:
        super().__init__()
        self.exchange = exchange
        exchange.order_listeners.append(self.on_order)

    async def read(self, ws: Any, connection: PrivateConnection) -> None:
        conn_id = f"{id(connection) & 0xFFFFFFFF:08x}"
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
                    {"event": "login", "code": "0", "msg": ""} if refusal is None
                    else {"event": "error", "code": refusal[0], "msg": refusal[1]})
            elif op == "subscribe":
                args = message.get("args") or []
                if not connection.logged_in:
                    answer = {"event": "error", "code": "60011", "msg": "Please log in"}
                elif [a.get("channel") for a in args] != ["orders"]:
                    answer = {"event": "error", "code": "60018",
                              "msg": f"Wrong URL or channel:{args} doesn't exist."}
                else:
                    connection.ready = True
                    answer = {"event": "subscribe", "arg": args[0]}
                if "id" in message:
                    answer["id"] = message["id"]
            else:
                answer = {"event": "error", "code": "60019", "msg": f"Invalid op: {op}"}
            connection.send(orjson.dumps({**answer, "connId": conn_id}).decode())

    def _refusal(self, args: dict[str, Any]) -> tuple[str, str] | None:
        """Why a ``login`` is refused (code, message), ``None`` when it passes."""
        if self.refuse_logins or args.get("apiKey") != self.exchange.api_key:
            return "60005", "Invalid apiKey"
        if args.get("passphrase") != self.exchange.passphrase:
            return "60024", "Wrong passphrase"
        try:
            timestamp = int(args["timestamp"])
        except (KeyError, ValueError):
            return "60004", "Invalid timestamp"
        if abs(timestamp * 1000 - self.exchange.now_ms()) > 30_000:
            return "60006", "Timestamp request expired"
        payload = f"{timestamp}GET/users/self/verify"
        expected = base64.b64encode(hmac.new(self.exchange.api_secret.encode(),
                                             payload.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, str(args.get("sign", ""))):
            return "60007", "Invalid sign"
        return None

    def on_order(self, order: dict[str, Any], fills: list[dict[str, Any]]) -> None:
        """Push the order's acceptance, each fill, and its end when not filled."""
        self.publish(self._push({**order, "state": "live", "accFillSz": "0", "avgPx": "",
                                 **_NO_FILL}), ORDER)
        done = Decimal(0)
        for number, fill in enumerate(fills, 1):
            done += Decimal(fill["fillSz"])
            last = number == len(fills)
            state = "filled" if last and order["state"] == "filled" else "partially_filled"
            self.publish(self._push({
                **order, "state": state, "accFillSz": format(done, "f"),
                "tradeId": fill["tradeId"], "fillPx": fill["fillPx"], "fillSz": fill["fillSz"],
                "fillFee": fill["fee"], "fillFeeCcy": fill["feeCcy"],
                "fillTime": fill["fillTime"], "execType": "T"}), FILL)
        if order["state"] != "filled":
            self.publish(self._push({**order, **_NO_FILL}), ORDER)

    def _push(self, item: dict[str, Any]) -> str:
        return orjson.dumps({
            "arg": {"channel": "orders", "instType": "SPOT", "uid": "614488474791936"},
            "data": [item],
        }).decode()


def open_fake_okx_private(exchange: FakeOkx) -> AbstractAsyncContextManager[FakeOkxPrivate]:
    """The fake private WebSocket beside ``exchange``; ``url`` is the URL to configure."""
    return serving(FakeOkxPrivate(exchange))
