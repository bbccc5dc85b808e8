"""A small WebSocket client (RFC 6455) on wsproto and trio streams, for market data.

Why not trio-websocket: it runs a reader task per connection and hands every message to
``get_message`` through a memory channel, a task switch per message, which costs more
than parsing the message and running the engine on it. Here ``get_message`` reads the
socket in the calling task: one ``receive_some`` of up to 64 KiB usually carries many
frames, wsproto decodes them all at once, and the following calls are served from a
queue of decoded messages without touching the socket or the scheduler.

What it does, and no more (a client of exchanges' public streams):

* ``ws://`` and ``wss://`` (certificates verified, SNI = the URL's host), the HTTP/1.1
  upgrade, connect + handshake bounded by ``connect_timeout``;
* text and binary messages, fragmented or not, at most ``max_message_size`` each;
* pings answered at once, the closing handshake answered, a polite close bounded in time.

No extensions (permessage-deflate) and no subprotocols. One task may read
(:meth:`WebSocketConnection.get_message`); any task may send at the same time.

Errors::

    WebSocketError
     +-- HandshakeFailed    the connection could not be opened (names the URL and why)
     +-- ConnectionClosed   the open connection ended (close code and reason)
"""

from __future__ import annotations

import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from http import HTTPStatus
from urllib.parse import urlsplit

import attrs
import trio
import wsproto
from wsproto.connection import Connection as _Protocol
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import RemoteProtocolError

__all__ = [
    "ConnectionClosed",
    "HandshakeFailed",
    "WebSocketConnection",
    "WebSocketError",
    "error_cause",
    "open_connection",
]

#: Bytes asked of the socket per read: large enough that a burst of small messages is
#: decoded in one go.
RECEIVE_SIZE = 64 * 1024
#: The largest message accepted (bytes, or characters for text). Exchanges' market-data
#: messages are a few KiB at most; anything near this is a fault, not data.
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: How long a polite close waits for the server's close frame or end of stream.
CLOSE_TIMEOUT = 2.0

# The close code for a connection that ended without a close frame (RFC 6455 7.1.5); it
# is never sent on the wire.
_ABNORMAL = int(CloseReason.ABNORMAL_CLOSURE)
_OPEN = ConnectionState.OPEN


class WebSocketError(Exception):
    """Base of this client's errors."""


class HandshakeFailed(WebSocketError):
    """The connection could not be opened: the TCP or TLS connection failed, the server
    refused the upgrade (``status`` is its HTTP status), answered something that is not
    a WebSocket upgrade, or did not answer within the connect timeout."""

    def __init__(self, url: str, detail: str, *, status: int | None = None) -> None:
        super().__init__(f"WebSocket connection to {url} failed: {detail}")
        self.url = url
        self.detail = detail
        self.status = status


class ConnectionClosed(WebSocketError):
    """The connection is closed: by the server (its close code and reason), by this
    client, or lost (code 1006, the reason says how)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        try:
            name = CloseReason(self.code).name
        except ValueError:
            name = "application code"
        described = f"close code {self.code}, {name}"
        return f"{self.reason} ({described})" if self.reason else described


def error_cause(err: BaseException) -> str:
    """The innermost cause of a connection error, which says what went wrong (a name that
    does not resolve, a refused port, a timeout) where the outer error does not."""
    while (inner := err.__cause__ or err.__context__) is not None:
        err = inner
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


@attrs.frozen
class _Target:
    """Where a ``ws://`` or ``wss://`` URL points."""

    secure: bool
    host: str
    port: int
    host_header: str
    resource: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"{url!r} is not a ws:// or wss:// URL with a host")
        secure = scheme == "wss"
        host = parts.hostname
        explicit_port = parts.port  # ValueError for a port that is not a number
        host_header = f"[{host}]" if ":" in host else host
        if explicit_port is not None:
            host_header += f":{explicit_port}"
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        port = explicit_port if explicit_port is not None else (443 if secure else 80)
        return cls(secure, host, port, host_header, resource)


class WebSocketConnection:
    """An open client connection; made by :func:`open_connection`.

    Exactly one task reads (:meth:`get_message`); sends (:meth:`send_message`, the
    automatic pongs and close frames) go out whole, one after the other, under a lock,
    so a task may send while another is blocked reading.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: _Protocol,
        url: str,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
        close_timeout: float = CLOSE_TIMEOUT,
        receive_size: int = RECEIVE_SIZE,
    ) -> None:
        self.url = url
        self.max_message_size = max_message_size
        self.close_timeout = close_timeout
        self._stream = stream
        self._protocol = protocol
        self._receive_size = receive_size
        # Whole messages decoded but not yet returned: one read serves many calls.
        self._messages: deque[str | bytes] = deque()
        # The fragments of a message still arriving, and their total length.
        self._parts: list[str | bytes] = []
        self._parts_size = 0
        # Frames produced by wsproto, in order, that are not on the wire yet: whoever
        # holds the send lock next sends them ahead of its own frame, so an automatic
        # pong and a concurrent send never interleave and never reorder.
        self._outgoing = bytearray()
        self._send_lock = trio.StrictFIFOLock()
        # Set once the connection is over for the caller: (code, reason).
        self._closed: tuple[int, str] | None = None
        # Set when the server's close frame or the end of the stream has been seen.
        self._peer_done = trio.Event()
        # A send was interrupted or the stream broke: nothing more may be written.
        self._unwritable = False
        self._reading = False
        self._stream_closed = False
        # Frames that came in the same read as the server's 101 answer are already in
        # wsproto's buffer: decode them now, or they would wait for the next read.
        self._take(b"")

    # --- receiving --------------------------------------------------------------------

    async def get_message(self) -> str | bytes:
        """The next whole message: ``str`` for a text message, ``bytes`` for a binary one.

        Raises :class:`ConnectionClosed` once the connection is closed (messages that
        arrived before the close are returned first). A message already decoded is
        returned without a schedule point (cancellation is still honoured); reading the
        socket always is one.
        """
        messages = self._messages
        if messages:
            await trio.lowlevel.checkpoint_if_cancelled()
            return messages.popleft()
        while not messages:
            if self._closed is not None:
                raise ConnectionClosed(*self._closed)
            await self._read()
        return messages.popleft()

    async def _read(self) -> None:
        """One read from the socket, decoded into messages; answers pings and closes."""
        if self._reading:
            raise trio.BusyResourceError("another task is already reading this connection")
        if self._outgoing:
            # A pong decoded before the first read (see __init__) goes out first.
            await self._flush_quietly()
            if self._closed is not None:
                return
        self._reading = True
        try:
            data = await self._stream.receive_some(self._receive_size)
        except trio.ClosedResourceError:
            self._lost("connection closed by this client while reading")
            return
        except trio.BrokenResourceError as err:
            self._lost(f"connection lost: {error_cause(err)}")
            return
        finally:
            self._reading = False
        if not data:
            self._lost("connection lost: the server ended the stream without a close frame")
            return
        self._take(data)
        if self._outgoing:
            await self._flush_quietly()

    def _take(self, data: bytes) -> None:
        """Decode ``data`` into whole messages; queue pongs and close answers."""
        protocol = self._protocol
        protocol.receive_data(data)
        append = self._messages.append
        limit = self.max_message_size
        for event in protocol.events():
            kind = type(event)
            if kind is TextMessage or kind is BytesMessage:
                if event.message_finished and not self._parts:
                    payload = event.data
                    if len(payload) > limit:
                        self._too_big()
                        return
                    append(payload)
                elif not self._assemble(event):
                    return
            elif kind is Ping:
                # Exchanges drop a client that does not answer their pings (Binance: within
                # a minute); once closing, wsproto sends no pongs, and none are needed.
                if protocol.state is _OPEN:
                    self._outgoing += protocol.send(event.response())
            elif kind is CloseConnection:
                self._on_close(event)
                return
            # Pong: an answer to a ping this client did not send; nothing to do.

    def _assemble(self, event: TextMessage | BytesMessage) -> bool:
        """Add a fragment; queue the message once it is whole. False if it grew too big."""
        self._parts.append(event.data)
        self._parts_size += len(event.data)
        if self._parts_size > self.max_message_size:
            self._too_big()
            return False
        if event.message_finished:
            joiner: str | bytes = "" if isinstance(event, TextMessage) else b""
            self._messages.append(joiner.join(self._parts))
            self._parts.clear()
            self._parts_size = 0
        return True

    def _too_big(self) -> None:
        self._parts.clear()
        self._parts_size = 0
        if self._protocol.state is _OPEN:
            self._outgoing += self._protocol.send(
                CloseConnection(code=CloseReason.MESSAGE_TOO_BIG, reason="message too big"))
        self._set_closed(int(CloseReason.MESSAGE_TOO_BIG),
                         f"message too big: more than {self.max_message_size} bytes")

    def _on_close(self, event: CloseConnection) -> None:
        protocol = self._protocol
        state = protocol.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The server closes: answer with the same code, as RFC 6455 5.5.1 asks.
            self._outgoing += protocol.send(event.response())
            self._set_closed(int(event.code), event.reason or "closed by the server")
        elif state is _OPEN:
            # wsproto reports a frame it cannot parse as a close in the OPEN state: the
            # server broke the protocol. Close with the code wsproto chose.
            self._outgoing += protocol.send(CloseConnection(code=event.code))
            self._set_closed(int(event.code), f"protocol error: {event.reason}")
        else:
            # The answer to this client's own close.
            self._set_closed(int(event.code), event.reason or "closed by this client")
        self._peer_done.set()

    def _lost(self, reason: str) -> None:
        self._set_closed(_ABNORMAL, reason)
        self._peer_done.set()

    def _set_closed(self, code: int, reason: str) -> None:
        if self._closed is None:
            self._closed = (code, reason)

    # --- sending ------------------------------------------------------------------------

    async def send_message(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message. Safe to call while another
        task is blocked in :meth:`get_message`. Raises :class:`ConnectionClosed` once the
        connection is closed or closing."""
        event = (TextMessage(data=message) if isinstance(message, str)
                 else BytesMessage(data=message))
        async with self._send_lock:
            if self._closed is not None or self._protocol.state is not _OPEN:
                raise ConnectionClosed(*(self._closed or (_ABNORMAL, "connection closing")))
            if self._unwritable:
                raise ConnectionClosed(_ABNORMAL, "connection unusable: a send was interrupted")
            self._outgoing += self._protocol.send(event)
            await self._send_pending()

    async def _flush_quietly(self) -> None:
        """Send the queued pongs and close answers for the reader. A failure is recorded:
        the next get_message raises it, after the messages already queued."""
        with contextlib.suppress(ConnectionClosed):
            async with self._send_lock:
                await self._send_pending()

    async def _send_pending(self) -> None:
        """Write the queued frames; the caller holds the send lock."""
        if not self._outgoing or self._unwritable:
            return
        data = bytes(self._outgoing)
        self._outgoing.clear()
        sent = False
        try:
            await self._stream.send_all(data)
            sent = True
        except (trio.BrokenResourceError, trio.ClosedResourceError) as err:
            self._lost(f"connection lost: {error_cause(err)}")
            raise ConnectionClosed(*self._closed) from err
        finally:
            # A send_all that did not finish may have written part of a frame: anything
            # written after it would be garbage to the server.
            if not sent:
                self._unwritable = True

    # --- closing ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close politely: send a close frame, wait up to ``close_timeout`` seconds for the
        server's close frame or end of stream, then close the stream. The stream is
        closed in every case; a cancelled caller gets a prompt close without the
        wait."""
        if self._stream_closed:
            await trio.lowlevel.checkpoint()
            return
        try:
            with trio.move_on_after(self.close_timeout):
                await self._close_politely()
        finally:
            self._stream_closed = True
            self._set_closed(int(CloseReason.NORMAL_CLOSURE), "closed by this client")
            # Closes even inside a cancelled scope (aclose_forcefully cancels the polite
            # parts of closing a TLS stream, never the closing itself).
            await trio.aclose_forcefully(self._stream)

    async def _close_politely(self) -> None:
        protocol = self._protocol
        try:
            async with self._send_lock:
                if protocol.state is _OPEN:
                    self._outgoing += protocol.send(
                        CloseConnection(code=CloseReason.NORMAL_CLOSURE))
                await self._send_pending()
            if self._unwritable:
                return
            if self._reading:
                # Another task is reading: it will see the server's close frame.
                await self._peer_done.wait()
            else:
                await self._drain()
            await self._stream.aclose()
        except (WebSocketError, trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def _drain(self) -> None:
        """Read until the server's close frame or end of stream, dropping messages."""
        while not self._peer_done.is_set():
            data = await self._stream.receive_some(self._receive_size)
            if not data:
                return
            self._take(data)
            self._messages.clear()
            self._parts.clear()
            self._parts_size = 0


async def connect(
    url: str,
    *,
    connect_timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = MAX_MESSAGE_SIZE,
    close_timeout: float = CLOSE_TIMEOUT,
    headers: Sequence[tuple[str, str]] = (),
) -> WebSocketConnection:
    """Open a connection to ``url`` (``ws://`` or ``wss://``); the caller must
    :meth:`~WebSocketConnection.aclose` it. Prefer :func:`open_connection`.

    The TCP connection, the TLS handshake and the HTTP upgrade together take at most
    ``connect_timeout`` seconds. ``ssl_context`` defaults to
    :func:`ssl.create_default_context` (system CAs, host name checked). ``headers`` are
    added to the upgrade request (an exchange's authorisation, never logged). Raises
    :class:`HandshakeFailed`, or ``ValueError`` for a URL that is not a WebSocket URL.
    """
    target = _Target.parse(url)
    stream: trio.abc.Stream | None = None
    with trio.move_on_after(connect_timeout):
        try:
            stream = await _open_stream(target, ssl_context)
            protocol = await _handshake(stream, target, url, headers)
        except BaseException as err:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            if isinstance(err, OSError | trio.BrokenResourceError | trio.ClosedResourceError):
                raise HandshakeFailed(url, error_cause(err)) from err
            raise
        return WebSocketConnection(
            stream, protocol, url, max_message_size=max_message_size,
            close_timeout=close_timeout)
    # Raised outside any except block, so that it has no context: its own message is
    # the cause that error_cause reports.
    raise HandshakeFailed(url, f"no answer within the connect timeout of {connect_timeout:g} s")


@asynccontextmanager
async def open_connection(
    url: str,
    *,
    connect_timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = MAX_MESSAGE_SIZE,
    close_timeout: float = CLOSE_TIMEOUT,
    headers: Sequence[tuple[str, str]] = (),
) -> AsyncIterator[WebSocketConnection]:
    """``async with open_connection(url) as ws:`` a connection (see :func:`connect`),
    closed politely on the way out (see :meth:`WebSocketConnection.aclose`)."""
    connection = await connect(
        url, connect_timeout=connect_timeout, ssl_context=ssl_context,
        max_message_size=max_message_size, close_timeout=close_timeout, headers=headers)
    try:
        yield connection
    finally:
        await connection.aclose()


async def _open_stream(target: _Target, ssl_context: ssl.SSLContext | None) -> trio.abc.Stream:
    if not target.secure:
        return await trio.open_tcp_stream(target.host, target.port)
    context = ssl_context if ssl_context is not None else ssl.create_default_context()
    stream = await trio.open_ssl_over_tcp_stream(
        target.host, target.port, ssl_context=context)
    try:
        # Explicitly, so that a certificate problem is reported as such, not as a failed
        # first write.
        await stream.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def _handshake(stream: trio.abc.Stream, target: _Target, url: str,
                     headers: Sequence[tuple[str, str]] = ()) -> _Protocol:
    """The HTTP/1.1 upgrade; returns wsproto's connection, holding any frames that came
    with the server's answer."""
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    extra = [(name.encode(), value.encode()) for name, value in headers]
    await stream.send_all(client.send(Request(
        host=target.host_header, target=target.resource, extra_headers=extra)))
    refusal: _Refusal | None = None
    try:
        while refusal is None:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise HandshakeFailed(url, "the server closed the connection without "
                                           "answering the WebSocket upgrade")
            client.receive_data(data)
            for event in client.events():
                if isinstance(event, AcceptConnection):
                    # Stop here: the events after it are frames, read by get_message.
                    assert client.connection is not None
                    return client.connection
                if isinstance(event, RejectConnection):
                    refusal = _Refusal(event.status_code, finished=not event.has_body)
                elif isinstance(event, RejectData) and refusal is not None:
                    refusal.add(event)
        # The body often says why (an exchange's error code): read a little of it, briefly.
        with trio.move_on_after(_REFUSAL_BODY_WAIT):
            while not refusal.finished:
                data = await stream.receive_some(RECEIVE_SIZE)
                if not data:
                    break
                client.receive_data(data)
                for event in client.events():
                    if isinstance(event, RejectData):
                        refusal.add(event)
    except RemoteProtocolError as err:
        if refusal is None:
            raise HandshakeFailed(
                url, f"the answer is not a WebSocket upgrade: {err}") from err
    raise HandshakeFailed(url, refusal.describe(), status=refusal.status)


_REFUSAL_BODY_WAIT = 1.0
_REFUSAL_BODY_KEPT = 200


class _Refusal:
    """A refused upgrade: the HTTP status and the start of the body."""

    def __init__(self, status: int, *, finished: bool) -> None:
        self.status = status
        self.finished = finished
        self.body = b""

    def add(self, event: RejectData) -> None:
        self.body = (self.body + event.data)[:_REFUSAL_BODY_KEPT]
        self.finished = event.body_finished or len(self.body) >= _REFUSAL_BODY_KEPT

    def describe(self) -> str:
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = ""
        text = f"the server refused the WebSocket upgrade: HTTP {self.status} {phrase}".rstrip()
        snippet = self.body.decode("utf-8", "replace").strip()
        return f"{text}: {snippet}" if snippet else text
