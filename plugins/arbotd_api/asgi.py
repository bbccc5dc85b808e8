"""What stands between Hypercorn's trio worker and the Quart-Trio app: each message the
app sends on an HTTP request reaches Hypercorn shielded from cancellation.

Why: Quart-Trio answers a request in one task and reads the request's events in another,
and cancels both once Hypercorn reports the stream closed (``http.disconnect``). Hypercorn
reports that from inside the app's last ``send`` (the one ending the response) and then,
still inside that call, either readies the connection for its next request (and starts
its keep-alive timer) or closes it. Unshielded, Quart-Trio's cancellation lands in the
middle of that work, and the connection is left in between: a keep-alive connection never
gets its idle timer, so it stays open until the client leaves and holds a daemon's stop
for the whole graceful timeout; a connection that had to close (``Connection: close``, or
a request whose body was not read) is neither closed nor read again, so the client's next
request on it is never answered.

Each send is short: Hypercorn already shields its own socket writes, and what the shield
adds is its bookkeeping (the HTTP state machine, closing the socket, the idle timer).
"""

from __future__ import annotations

from typing import Any

import trio

__all__ = ["ShieldedSends"]


class ShieldedSends:
    """An ASGI application: ``app`` with its HTTP sends shielded (WebSockets and the
    lifespan pass through untouched)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def shielded_send(message: dict[str, Any]) -> None:
            with trio.CancelScope(shield=True):
                await send(message)

        await self.app(scope, receive, shielded_send)
