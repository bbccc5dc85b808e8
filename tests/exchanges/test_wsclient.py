"""The feeds' WebSocket client against real servers on 127.0.0.1: trio-websocket's server
(an independent implementation, so these are interoperability checks too) and raw TCP
servers that write exact bytes (fragments, bursts, drops, refusals, silence)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing
import wsproto
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from trio_websocket import ConnectionClosed as ServerSideClosed
from trio_websocket import WebSocketConnection as ServerSide
from trio_websocket import WebSocketRequest, serve_websocket

from arbotd.exchange import ConnectionClosed, HandshakeFailed, WebSocketConnection
from arbotd.exchange.wsclient import open_connection

LIMIT = 10  # seconds: a bound against hanging, never a measurement
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


# --- servers -------------------------------------------------------------------------------


@asynccontextmanager
async def websocket_server(
    handler: Callable[[ServerSide], Awaitable[None]],
    *,
    reject: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[str]:
    """trio-websocket's server running ``handler`` per connection; yields the URL."""

    async def accept(request: WebSocketRequest) -> None:
        if reject is not None:
            await request.reject(reject, body=b"not for you")
            return
        ws = await request.accept()
        await handler(ws)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, accept, "127.0.0.1", 0, ssl_context)
        scheme = "wss" if ssl_context is not None else "ws"
        yield f"{scheme}://127.0.0.1:{server.port}/"
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def tcp_server(handler: Callable[[trio.SocketStream], Awaitable[None]]
                     ) -> AsyncIterator[int]:
    """A plain TCP server running ``handler`` per connection; yields the port."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def read_request(stream: trio.abc.Stream) -> bytes:
    request = b""
    while b"\r\n\r\n" not in request:
        data = await stream.receive_some(4096)
        if not data:
            raise EOFError("the client hung up during the request")
        request += data
    return request


def upgrade_answer(request: bytes) -> bytes:
    key = next(line.partition(b":")[2].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def frame(opcode: int, payload: bytes | str, *, fin: bool = True) -> bytes:
    """An unmasked server-to-client frame (RFC 6455 section 5.2)."""
    data = payload.encode() if isinstance(payload, str) else payload
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(data)
    if size < 126:
        return head + bytes([size]) + data
    if size < 1 << 16:
        return head + b"\x7e" + size.to_bytes(2, "big") + data
    return head + b"\x7f" + size.to_bytes(8, "big") + data


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the masked frames a client sent."""
    server = wsproto.frame_protocol.FrameProtocol(client=False, extensions=[])
    server.receive_bytes(data)
    found = []
    for parsed in server.received_frames():
        payload = parsed.payload
        if isinstance(payload, str):
            payload = payload.encode()
        elif isinstance(payload, tuple):  # a close: (code, reason)
            payload = int(payload[0]).to_bytes(2, "big") + payload[1].encode()
        found.append((int(parsed.opcode), bytes(payload)))
    return found


async def answer_close(stream: trio.abc.Stream) -> None:
    """Read until the client's close frame, answer it and hang up (a polite server)."""
    frames = wsproto.frame_protocol.FrameProtocol(client=False, extensions=[])
    while data := await stream.receive_some(4096):
        frames.receive_bytes(data)
        for parsed in frames.received_frames():
            if parsed.opcode is wsproto.frame_protocol.Opcode.CLOSE:
                code, _ = parsed.payload
                await stream.send_all(frame(CLOSE, int(code).to_bytes(2, "big")))
                await stream.aclose()
                return


@asynccontextmanager
async def raw_websocket_server(
    script: Callable[[trio.SocketStream, bytes], Awaitable[None]],
) -> AsyncIterator[str]:
    """A server that completes the upgrade, then runs ``script(stream, request)`` to
    write exact frames; yields the URL."""

    async def handle(stream: trio.SocketStream) -> None:
        request = await read_request(stream)
        await stream.send_all(upgrade_answer(request))
        await script(stream, request)

    async with tcp_server(handle) as port:
        yield f"ws://127.0.0.1:{port}/"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


async def echo_until_closed(ws: ServerSide) -> None:
    with contextlib.suppress(ServerSideClosed):
        while True:
            await ws.send_message(await ws.get_message())


# --- messages ------------------------------------------------------------------------------


async def test_text_and_binary_messages_both_ways() -> None:
    async def echo(ws: ServerSide) -> None:
        await ws.send_message("hello")
        await ws.send_message(b"\x00\x01\xff")
        await echo_until_closed(ws)

    with trio.fail_after(LIMIT):
        async with websocket_server(echo) as url, open_connection(url) as ws:
            assert await ws.get_message() == "hello"
            assert await ws.get_message() == b"\x00\x01\xff"
            await ws.send_message("ünïcode ✓")
            assert await ws.get_message() == "ünïcode ✓"
            await ws.send_message(b"\x02" * 70_000)  # a frame with a 64-bit length
            assert await ws.get_message() == b"\x02" * 70_000


async def test_fragments_are_assembled_around_control_frames() -> None:
    check = "€"  # three bytes in UTF-8, split across two fragments below
    raw = check.encode()

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(
            frame(TEXT, b"hel", fin=False)
            + frame(PING, b"mid-message")  # control frames may come between fragments
            + frame(CONTINUATION, b"lo " + raw[:1], fin=False)
            + frame(CONTINUATION, raw[1:] + b" world")
            + frame(BINARY, b"\x01", fin=False) + frame(CONTINUATION, b"\x02")
        )
        await answer_close(stream)

    with trio.fail_after(LIMIT):
        async with raw_websocket_server(script) as url, open_connection(url) as ws:
            assert await ws.get_message() == f"hello {check} world"
            assert await ws.get_message() == b"\x01\x02"


async def test_a_burst_read_at_once_serves_every_message_in_order() -> None:
    """Many frames in one read are decoded together and served without reading again."""
    client_side, server_side = trio.testing.memory_stream_pair()
    reads = 0

    class CountingStream(trio.abc.Stream):
        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            nonlocal reads
            reads += 1
            return await client_side.receive_some(max_bytes)

        async def send_all(self, data: bytes | bytearray | memoryview) -> None:
            await client_side.send_all(data)

        async def wait_send_all_might_not_block(self) -> None:
            await client_side.wait_send_all_might_not_block()

        async def aclose(self) -> None:
            await client_side.aclose()

    protocol = wsproto.connection.Connection(wsproto.ConnectionType.CLIENT)
    ws = WebSocketConnection(CountingStream(), protocol, "ws://memory/")
    with trio.fail_after(LIMIT):
        await server_side.send_all(b"".join(frame(TEXT, f"m{i}") for i in range(500)))
        assert [await ws.get_message() for _ in range(500)] == [f"m{i}" for i in range(500)]
    assert reads == 1


async def test_frames_split_across_reads_and_frames_sent_with_the_upgrade() -> None:
    burst = b"".join(frame(TEXT, f"message {i}") for i in range(300)) + frame(BINARY, b"z" * 300)

    async def handle(stream: trio.SocketStream) -> None:
        request = await read_request(stream)
        # The first frames travel in the same packet as the 101 answer.
        await stream.send_all(upgrade_answer(request) + burst[:20])
        for start in range(20, len(burst), 7):  # then 7 bytes at a time
            await stream.send_all(burst[start:start + 7])
            await trio.sleep(0)
        await answer_close(stream)

    with trio.fail_after(LIMIT):
        async with tcp_server(handle) as port, open_connection(f"ws://127.0.0.1:{port}") as ws:
            for i in range(300):
                assert await ws.get_message() == f"message {i}"
            assert await ws.get_message() == b"z" * 300


async def test_frames_that_all_came_with_the_upgrade_answer_are_not_left_waiting() -> None:
    """Nothing follows the 101 answer and its frames: they must be served (and the ping
    answered) without waiting for another read."""
    sent: list[bytes] = []

    async def handle(stream: trio.SocketStream) -> None:
        request = await read_request(stream)
        await stream.send_all(upgrade_answer(request) + frame(PING, b"early")
                              + frame(TEXT, "first") + frame(TEXT, "second"))
        while data := await stream.receive_some(4096):
            sent.append(data)

    with trio.fail_after(LIMIT):
        async with (tcp_server(handle) as port,
                    open_connection(f"ws://127.0.0.1:{port}", close_timeout=0.2) as ws):
            assert await ws.get_message() == "first"
            assert await ws.get_message() == "second"
    assert client_frames(b"".join(sent))[0] == (PONG, b"early")


async def test_the_request_names_the_host_path_and_query() -> None:
    requests: list[bytes] = []

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        requests.append(request)
        await answer_close(stream)

    with trio.fail_after(LIMIT):
        async with (raw_websocket_server(script) as url,
                    open_connection(url + "stream?streams=a@bookTicker/b@bookTicker")):
            pass
    first, *headers = requests[0].decode().split("\r\n")
    assert first == "GET /stream?streams=a@bookTicker/b@bookTicker HTTP/1.1"
    assert f"Host: {url.removeprefix('ws://').rstrip('/')}" in headers


# --- control frames and concurrency -----------------------------------------------------


async def test_a_server_ping_is_answered_with_a_pong() -> None:
    answered = trio.Event()

    async def pinger(ws: ServerSide) -> None:
        await ws.ping(b"are you there")  # returns once the matching pong arrives
        answered.set()
        await ws.send_message("after the pong")
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with websocket_server(pinger) as url, open_connection(url) as ws:
            assert await ws.get_message() == "after the pong"
    assert answered.is_set()


async def test_sends_from_another_task_never_interleave_with_automatic_pongs() -> None:
    """A heartbeat task sends while the reader waits; the server pings all the while, so
    pongs (written by the reader) race the sends. trio-websocket's server rejects any
    garbled frame, and the messages must arrive whole and in order."""
    count = 200
    received: list[str] = []
    pings = 0

    async def server(ws: ServerSide) -> None:
        nonlocal pings

        async def keep_pinging() -> None:
            nonlocal pings
            while True:
                await ws.ping()
                pings += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_pinging)
            while len(received) < count:
                received.append(await ws.get_message())
            while pings < 20:
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()
        await ws.send_message("all received")
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with (websocket_server(server) as url, open_connection(url) as ws,
                    trio.open_nursery() as nursery):

            async def sender() -> None:
                for i in range(count):
                    await ws.send_message(f"ping {i}")

            nursery.start_soon(sender)
            assert await ws.get_message() == "all received"
    assert received == [f"ping {i}" for i in range(count)]
    assert pings >= 20


async def test_a_send_from_another_task_while_the_reader_waits() -> None:
    async def server(ws: ServerSide) -> None:
        assert await ws.get_message() == "ping"
        await ws.send_message("pong")
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with websocket_server(server) as url, open_connection(url) as ws:
            async with trio.open_nursery() as nursery:
                got: list[str | bytes] = []

                async def reader() -> None:
                    got.append(await ws.get_message())

                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()  # the reader is in a read
                await ws.send_message("ping")
            assert got == ["pong"]


# --- closing -------------------------------------------------------------------------------


async def test_a_server_close_carries_its_code_and_reason_after_queued_messages() -> None:
    async def closer(ws: ServerSide) -> None:
        await ws.send_message("last words")
        await ws.aclose(code=4001, reason="maintenance")

    with trio.fail_after(LIMIT):
        async with websocket_server(closer) as url, open_connection(url) as ws:
            assert await ws.get_message() == "last words"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            with pytest.raises(ConnectionClosed):
                await ws.get_message()  # and stays closed
            with pytest.raises(ConnectionClosed):
                await ws.send_message("too late")
    assert (closed.value.code, closed.value.reason) == (4001, "maintenance")
    assert "maintenance" in str(closed.value) and "4001" in str(closed.value)


async def test_an_abrupt_tcp_drop_is_a_lost_connection() -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(frame(TEXT, "one"))
        await stream.aclose()  # no close frame

    with trio.fail_after(LIMIT):
        async with raw_websocket_server(script) as url, open_connection(url) as ws:
            assert await ws.get_message() == "one"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
    assert closed.value.code == 1006
    assert "lost" in closed.value.reason


async def test_close_is_polite() -> None:
    seen: list[tuple[int, str | None]] = []

    async def server(ws: ServerSide) -> None:
        try:
            while True:
                await ws.get_message()
        except ServerSideClosed as err:
            assert err.reason is not None
            seen.append((err.reason.code, err.reason.reason))

    with trio.fail_after(LIMIT):
        async with websocket_server(server) as url:
            async with open_connection(url) as ws:
                await ws.send_message("hi")
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
            while not seen:
                await trio.sleep(0.01)
    assert seen[0][0] == 1000


async def test_close_gives_up_waiting_for_a_server_that_never_answers_it() -> None:
    sent: list[bytes] = []
    ended = trio.Event()

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        # Reads what the client sends, answers nothing, notices when the client hangs up.
        while data := await stream.receive_some(4096):
            sent.append(data)
        ended.set()

    with trio.fail_after(LIMIT):
        async with raw_websocket_server(script) as url:
            async with open_connection(url, close_timeout=0.2):
                pass
            await ended.wait()
    assert client_frames(b"".join(sent)) == [(CLOSE, (1000).to_bytes(2, "big"))]


async def test_a_cancelled_close_still_closes_the_stream() -> None:
    ended = trio.Event()

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        while await stream.receive_some(4096):
            pass
        ended.set()

    with trio.fail_after(LIMIT):
        async with raw_websocket_server(script) as url:
            with trio.CancelScope() as scope:
                async with open_connection(url, close_timeout=60) as ws:
                    scope.cancel()
            await ended.wait()
            with pytest.raises(ConnectionClosed):
                await ws.get_message()


async def test_an_oversized_message_closes_the_connection() -> None:
    seen: list[int] = []

    async def server(ws: ServerSide) -> None:
        await ws.send_message("small")
        await ws.send_message("x" * 5000)
        try:
            await ws.get_message()
        except ServerSideClosed as err:
            assert err.reason is not None
            seen.append(err.reason.code)

    with trio.fail_after(LIMIT):
        async with websocket_server(server) as url:
            async with open_connection(url, max_message_size=1000) as ws:
                assert await ws.get_message() == "small"
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
            while not seen:
                await trio.sleep(0.01)
    assert closed.value.code == 1009 and "too big" in closed.value.reason
    assert seen == [1009]


async def test_an_oversized_fragmented_message_closes_the_connection() -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(frame(BINARY, b"a" * 100, fin=False))
        for _ in range(20):
            await stream.send_all(frame(CONTINUATION, b"a" * 100, fin=False))
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with (raw_websocket_server(script) as url,
                    open_connection(url, max_message_size=1000, close_timeout=0.2) as ws):
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
    assert closed.value.code == 1009


async def test_a_protocol_violation_closes_the_connection() -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(frame(CONTINUATION, b"no message to continue"))
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with (raw_websocket_server(script) as url,
                    open_connection(url, close_timeout=0.2) as ws):
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
    assert closed.value.code == 1002 and "protocol error" in closed.value.reason


# --- opening -------------------------------------------------------------------------------


async def test_a_refused_upgrade_names_the_url_and_status() -> None:
    async def never(ws: ServerSide) -> None:
        raise AssertionError("accepted")

    with trio.fail_after(LIMIT):
        async with websocket_server(never, reject=403) as url:
            with pytest.raises(HandshakeFailed) as failed:
                async with open_connection(url):
                    pass
    assert failed.value.status == 403
    assert url in str(failed.value) and "HTTP 403 Forbidden" in str(failed.value)
    assert "not for you" in str(failed.value)


async def test_an_http_server_that_is_not_a_websocket_server() -> None:
    async def http_404(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                              b"Content-Length: 9\r\n\r\nnot here\n")
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with tcp_server(http_404) as port:
            with pytest.raises(HandshakeFailed, match="HTTP 404 Not Found") as failed:
                async with open_connection(f"ws://127.0.0.1:{port}/ws"):
                    pass
    assert failed.value.status == 404


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH_9.6\r\n", b""])
async def test_an_answer_that_is_not_http_fails_the_handshake(answer: bytes) -> None:
    async def odd(stream: trio.SocketStream) -> None:
        await read_request(stream)
        if answer:
            await stream.send_all(answer + b"\r\n\r\n")
            await trio.sleep_forever()
        await stream.aclose()

    with trio.fail_after(LIMIT):
        async with tcp_server(odd) as port:
            with pytest.raises(HandshakeFailed) as failed:
                async with open_connection(f"ws://127.0.0.1:{port}/"):
                    pass
    assert failed.value.status is None


async def test_a_server_that_never_answers_fails_within_the_connect_timeout() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(LIMIT):
        async with tcp_server(silent) as port:
            with pytest.raises(HandshakeFailed, match=r"connect timeout of 0\.3 s"):
                async with open_connection(f"ws://127.0.0.1:{port}/", connect_timeout=0.3):
                    pass


async def test_a_refused_port_is_a_failed_connection() -> None:
    async with tcp_server(lambda stream: stream.aclose()) as port:
        pass  # the port is free again now
    with trio.fail_after(LIMIT), pytest.raises(HandshakeFailed) as failed:
        async with open_connection(f"ws://127.0.0.1:{port}/"):
            pass
    assert isinstance(failed.value.__cause__, OSError)


@pytest.mark.parametrize("url", ["http://example.com/", "ws:///no-host", "example.com"])
async def test_a_url_that_is_not_a_websocket_url(url: str) -> None:
    with pytest.raises(ValueError, match="not a ws:// or wss:// URL"):
        async with open_connection(url):
            pass


async def test_wss_with_a_custom_ssl_context(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    with trio.fail_after(LIMIT):
        async with websocket_server(echo_until_closed, ssl_context=server_context) as url:
            assert url.startswith("wss://")
            trusted = ssl.create_default_context(cafile=str(cert))
            async with open_connection(url, ssl_context=trusted) as ws:
                await ws.send_message("over tls")
                assert await ws.get_message() == "over tls"
            # The system's CAs do not know the self-signed certificate.
            with pytest.raises(HandshakeFailed, match="CERTIFICATE_VERIFY_FAILED"):
                async with open_connection(url):
                    pass
