"""A fake Bybit private stream (``/v5/private``) on 127.0.0.1 pushing the orders and
executions of a :class:`FakeBybit` as it matches them, for the private stream's tests.

It answers, in the shapes of Bybit's ``wss-authentication.mdx``:

* ``auth`` (``args: [api_key, expires, signature]``): the key must be the fake's,
  ``expires`` later than its clock, and the signature the hex HMAC-SHA256 of
  ``"GET/realtime" + expires`` (checked for real);
* ``subscribe`` to ``order``/``execution`` topics (``.spot`` or all-in-one), only once
  authenticated;
* ``ping``, with the private pong ``{"op": "pong", "args": [ts]}``.

Each order change is pushed as an ``order.spot`` message (the order as the REST lists
show it), then one ``execution.spot`` message per execution (the same ``execId`` as
``/v5/execution/list``). The faults are those of :mod:`exchanges.fakeprivate`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
from exchanges.fake_bybit import FakeBybit
from exchanges.fakeprivate import FILL, ORDER, FakePrivateStream, PrivateConnection, serving

PATH = "/v5/private"
TOPICS = frozenset({"order", "order.spot", "execution", "execution.spot"})


class FakeBybitPrivate(FakePrivateStream):
    """The private stream of ``exchange``'s account."""

    path = PATH

    def __init__(self, exchange: FakeBybit) -> None:
        super().__init__()
        self.exchange = exchange
        exchange.order_listeners.append(self.on_order)
        self._ids = itertools.count(1)

    async def read(self, ws: Any, connection: PrivateConnection) -> None:
        conn_id = f"fake-private-{id(connection) & 0xFFFF:04x}"
        while True:
            message = orjson.loads(await ws.get_message())
            self.requests.append(message)
            op = message.get("op")
            answer: dict[str, Any] = {"op": op, "conn_id": conn_id}
            if "req_id" in message:
                answer["req_id"] = message["req_id"]
            if op == "auth":
                refusal = self._refusal(message.get("args") or [])
                self.logins.append(refusal is None)
                connection.logged_in = refusal is None
                answer |= {"success": refusal is None, "ret_msg": refusal or ""}
            elif op == "subscribe":
                args = set(message.get("args") or [])
                if not connection.logged_in:
                    answer |= {"success": False, "ret_msg": "Request not authorized"}
                elif not args or not args <= TOPICS:
                    answer |= {"success": False, "ret_msg": f"error:topics {sorted(args)}"}
                else:
                    connection.ready = True
                    answer |= {"success": True, "ret_msg": ""}
            elif op == "ping":
                self.heartbeats += 1
                answer = {**answer, "op": "pong", "args": [str(self.exchange.now_ms())]}
            else:
                answer |= {"success": False, "ret_msg": f"error:unknown op {op!r}"}
            connection.send(orjson.dumps(answer).decode())

    def _refusal(self, args: list[Any]) -> str | None:
        """Why an ``auth`` is refused, ``None`` when it passes."""
        if self.refuse_logins or len(args) != 3 or args[0] != self.exchange.api_key:
            return "error:apikey invalid"
        try:
            expires = int(args[1])
        except (TypeError, ValueError):
            return "error:params error"
        if expires <= self.exchange.now_ms():
            return "error:request expired"
        expected = hmac.new(self.exchange.api_secret.encode(), f"GET/realtime{expires}".encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(args[2])):
            return "error:signature verification failed"
        return None

    def on_order(self, order: dict[str, Any], executions: list[dict[str, Any]]) -> None:
        """Push the order as it now is, then each of its new executions."""
        self.publish(self._message("order.spot", [order]), ORDER)
        for execution in executions:
            self.publish(self._message("execution.spot", [execution]), FILL)

    def _message(self, topic: str, items: list[dict[str, Any]]) -> str:
        return orjson.dumps({
            "id": f"{next(self._ids)}_{topic}", "topic": topic,
            "creationTime": self.exchange.now_ms(),
            "data": [{**item, "category": "spot"} for item in items],
        }).decode()


def open_fake_bybit_private(exchange: FakeBybit) -> AbstractAsyncContextManager[FakeBybitPrivate]:
    """The fake private stream beside ``exchange``; ``url`` is the URL to configure."""
    return serving(FakeBybitPrivate(exchange))
