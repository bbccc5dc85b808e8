"""The WebSocket side of :mod:`arbotd.client`: live updates under trio."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from arbotd._client_errors import (
    ArbotApiError,
    ConnectionFailed,
    StreamClosed,
    error_from_response,
    from_error_object,
)

API_PREFIX = "/api/v1"
DATA_MESSAGES = frozenset({"price_update", "signal", "trade_update"})
_ACKS = frozenset({"authenticated", "subscribed", "unsubscribed"})



def _ws_url(url: str) -> str:
    """``ws://host/api/v1/ws`` as given; an ``http(s)://`` base URL becomes the
    WebSocket URL of that server."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path
    if parts.scheme in ("http", "https") and path.rstrip("/") in ("", API_PREFIX):
        path = API_PREFIX + "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class Subscription:
    """An open WebSocket subscription: iterate over it for the data messages
    (``{"type": "price_update" | "signal" | "trade_update", "data": {...}}``).

    Iteration ends when the server closes the socket normally; an ``error`` message
    raises the exception of its code, any other close :class:`StreamClosed`.
    """

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._pending: deque[dict[str, Any]] = deque()

    async def _receive(self) -> dict[str, Any] | None:
        """The next message, ``None`` after a normal close; raises for errors."""
        try:
            raw = await self._ws.get_message()
        except ConnectionClosed as closed:
            reason = closed.reason
            if reason is None or reason.code == 1000:
                return None
            raise StreamClosed("STREAM_CLOSED", reason.reason or reason.name,
                               {"close_code": reason.code, "reason": reason.reason}
                               ) from None
        message = orjson.loads(raw)
        if not isinstance(message, dict):
            raise ArbotApiError(None, "The server sent a message that is not an object")
        if message.get("type") == "error":
            error = message.get("error")
            raise from_error_object(error if isinstance(error, dict) else {}, None)
        return message

    async def _expect(self, reply: str) -> dict[str, Any]:
        """Wait for the ``reply`` acknowledgement, keeping data messages for later."""
        while True:
            message = await self._receive()
            if message is None:
                raise StreamClosed("STREAM_CLOSED", f"closed before {reply!r}",
                                   {"close_code": 1000})
            if message.get("type") == reply:
                return message
            if message.get("type") in DATA_MESSAGES:
                self._pending.append(message)

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._ws.send_message(orjson.dumps(message).decode())
        except ConnectionClosed as closed:
            # The server closed first: the error message it sent before closing, if any,
            # says why (``_receive`` raises it), else the close reason does.
            while await self._receive() is not None:
                pass
            raise StreamClosed("STREAM_CLOSED", "The server closed the connection",
                               {"close_code": 1000}) from closed

    async def authenticate(self, token: str) -> dict[str, Any]:
        """Send the ``auth`` message; returns the server's ``authenticated`` reply (with
        the ``scope``). Raises :class:`Unauthorized` for a wrong token."""
        await self._send({"type": "auth", "token": token})
        return await self._expect("authenticated")

    async def subscribe(self, channel: str, symbols: Iterable[str] | None = None
                        ) -> dict[str, Any]:
        """Subscribe to ``channel`` ("prices", "signals", "trades"), only for ``symbols``
        if given; returns the ``subscribed`` reply."""
        message: dict[str, Any] = {"type": "subscribe", "channel": channel}
        if symbols is not None:
            message["symbols"] = list(symbols)
        await self._send(message)
        return await self._expect("subscribed")

    async def unsubscribe(self, channel: str) -> dict[str, Any]:
        """Stop receiving ``channel``; returns the ``unsubscribed`` reply."""
        await self._send({"type": "unsubscribe", "channel": channel})
        return await self._expect("unsubscribed")

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._pending:
            message = await self._receive()
            if message is None:
                raise StopAsyncIteration
            if message.get("type") in DATA_MESSAGES:
                return message
        return self._pending.popleft()


@asynccontextmanager
async def open_subscription(url: str, channels: Iterable[str] = ("prices",),
                            symbols: Iterable[str] | None = None, token: str | None = None,
                            ) -> AsyncIterator[Subscription]:
    """Connect to the API's WebSocket, authenticate with ``token`` (a JWT or an API key)
    when given, subscribe to ``channels`` (filtered by ``symbols`` when given) and yield
    the :class:`Subscription` to iterate over.

    ``url`` is the WebSocket URL (``ws://localhost:8080/api/v1/ws``) or the server's
    base URL (``http://localhost:8080``). Raises :class:`ConnectionFailed` when the server
    cannot be reached, the exception of the error code when it refuses the connection
    (:class:`RateLimitExceeded`), the credentials or a subscription.
    """
    target = _ws_url(url)
    symbol_list = list(symbols) if symbols is not None else None
    opened = False
    try:
        async with open_websocket_url(target) as ws:
            opened = True
            subscription = Subscription(ws)
            if token is not None:
                await subscription.authenticate(token)
            for channel in channels:
                await subscription.subscribe(channel, symbol_list)
            yield subscription
    except ConnectionRejected as rejected:
        raise _rejection(rejected) from rejected
    except (HandshakeError, OSError, trio.BrokenResourceError) as err:
        if opened:  # raised by the caller's code, or after the handshake: not ours
            raise
        raise ConnectionFailed("CONNECTION_FAILED",
                               f"{target}: {type(err).__name__}: {err}") from err


def _rejection(rejected: ConnectionRejected) -> ArbotApiError:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in rejected.headers or ()}
    response = httpx.Response(rejected.status_code, headers=headers,
                              content=rejected.body or b"")
    return error_from_response(response)
