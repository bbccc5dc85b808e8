"""API (plugin arbotd_api): requests/s and p99 latency of ``GET /api/v1/status`` and
``GET /api/v1/prices/current`` with 150 symbols on 3 venues, beside a trivial Quart-Trio
route served the same way, measured in the same run (issue 5, item 10); and
``GET /api/v1/status`` with a JWT (``Authorization: Bearer``), whose every request checks
the signature and the token's user (read from storage at most every 0.25 s).

Setup (2 cores, so every party has its own process and none shares a GIL):

- **daemon server**: a subprocess running the real daemon (``Daemon.prepare`` +
  ``serve`` with every installed plugin, as tests/api/apitools.py does) from a temporary
  config: ``autostart = false``, auth off, ``[api] read_per_minute`` and ``read_burst``
  at 10**9 (the limiter still runs on every request, but never refuses), the simulated
  venues at 1 update per second per symbol (little background work), a JWT secret and
  one user (``auth_required`` stays off, but a token sent is checked all the same). Once
  it is ready, the engine's book is filled directly with ``Quote`` objects for 150
  symbols x 3 venues, and the bench logs in for the token.
- **trivial server**: a subprocess serving a QuartTrio app with one route returning
  ``{"ok": true}``, through the same Hypercorn trio worker (``worker_serve`` on sockets
  bound beforehand, same Hypercorn settings as ``ApiService``).
- **load generator**: ``wrk`` (one thread, 10 keep-alive connections, ``--latency``) if
  installed (``apt-get install wrk``); else a raw-socket keep-alive client of this file in
  its own subprocess (one thread per connection). The output says which.

Each round loads the trivial route, /status and /prices/current in turn for the same
duration (5 s, ``--quick`` 1 s) after a short warm-up of each; the medians of the rounds
are printed, with the ratio of each route's rate to the trivial route's rate (target:
at least 0.8). Non-2xx answers are counted and reported (they would mean the rate
limiter or an error interfered).

    .venv/bin/python tests/bench/api.py              # 3 rounds of 5 s per route
    .venv/bin/python tests/bench/api.py --quick      # 1 round of 1 s
    .venv/bin/python tests/bench/api.py --client python   # force the Python client
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from _benchtools import median, percentile, print_table

# The default config's symbols (quoted by the simulated venues) and 145 more, put into the
# engine's book directly.
SIM_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT")
SYMBOLS = [*SIM_SYMBOLS, *(f"C{i:03d}USDT" for i in range(145))]
VENUES = ("sim_alpha", "sim_beta", "sim_gamma")
CONNECTIONS = 10
JWT_SECRET = "bench-" + "s" * 40
USER, PASSWORD = "bench", "bench-password"

DAEMON_CONFIG = """
[daemon]
autostart = false
state_dir = "{state_dir}"
shutdown_timeout_seconds = 3.0

[simulation]
updates_per_second = 1.0

[api]
host = "127.0.0.1"
port = 0
auth_required = false
read_per_minute = 1000000000
read_burst = 1000000000
"""


# --- the servers (child processes) ---------------------------------------------------------


async def _until_stdin_closes() -> None:
    import trio

    await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)


def _announce(url: str) -> None:
    print(f"URL {url}", flush=True)


async def serve_daemon(workdir: Path) -> None:
    import trio
    from support import RecordingNotifier

    from arbotd import Quote, hash_password
    from arbotd._daemon import Daemon
    from arbotd_api.plugin import service_for

    os.environ.pop("ARBOT_API_KEY", None)
    os.environ["ARBOT_JWT_SECRET"] = JWT_SECRET
    path = workdir / "arbot.toml"
    path.write_text(textwrap.dedent(DAEMON_CONFIG).format(state_dir=workdir / "state"),
                    encoding="utf-8")
    notifier = RecordingNotifier()
    daemon = Daemon(path, notifier=notifier)
    runtime = daemon.prepare()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        with trio.fail_after(30):
            await notifier.wait_for("READY=1")
        engine = runtime.engine
        # The simulated venues quote the configured symbols themselves: wait for them.
        with trio.fail_after(30):
            while any(len(engine.book.get(s, {})) < len(VENUES) for s in SIM_SYMBOLS):
                await trio.sleep(0.05)
        now = time.time()
        for n, symbol in enumerate(SYMBOLS):
            if symbol in SIM_SYMBOLS:
                continue
            mid = 10.0 + n
            quotes = engine.book.setdefault(symbol, {})
            for k, venue in enumerate(VENUES):
                bid = mid * (1 - 0.0001 + 0.00005 * k)
                quotes[venue] = Quote(venue, symbol, bid, bid * 1.0002, 1.5, 2.5, now, now)
        await runtime.storage.add_user(USER, hash_password(PASSWORD), "read")
        service = service_for(runtime)
        assert service is not None
        _announce(service.urls[0])
        await _until_stdin_closes()
        runtime.shutdown_requested.set()


def _hypercorn_config() -> Any:
    """The settings ``ApiService._hypercorn_config`` uses, on a free loopback port."""
    import logging

    from hypercorn.config import Config

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("bench.server")
    config.graceful_timeout = 2.0
    config.include_server_header = False
    return config


async def serve_trivial() -> None:
    import trio
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app
    from quart_trio import QuartTrio

    app = QuartTrio("trivial")

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    config = _hypercorn_config()
    sockets = config.create_sockets()
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
    stop = trio.Event()

    async def serving(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await worker_serve(wrap_app(app, config.wsgi_max_body_size, None), config,
                           sockets=sockets, shutdown_trigger=stop.wait, task_status=task_status)

    async with trio.open_nursery() as nursery:
        urls = await nursery.start(serving)
        _announce(urls[0])
        await _until_stdin_closes()
        stop.set()


class Server:
    """A server subprocess of this file; stopped by closing its stdin."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--workdir", str(workdir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("URL "):
            self.stop()
            raise RuntimeError(f"the {kind} server did not start (exit {self.process.poll()})")
        self.url = line.split()[1].rstrip("/")

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- load generators --------------------------------------------------------------------------


@attrs.frozen
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers and socket errors


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(url: str, duration: float, header: str | None) -> Load:
    extra = ["-H", header] if header else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(duration))}s", "--latency",
         *extra, url],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return Load(rate, p50, p99, total, errors)


def _client_connection(host: str, port: int, request: bytes, until: float,
                       latencies: list[float], errors: list[int]) -> None:
    """One keep-alive connection sending ``request`` back to back until ``until``."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            sock.sendall(request)
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by the server")
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(buffer) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by the server")
                buffer += chunk
            buffer = buffer[length:]
            latencies.append(time.perf_counter() - start)
            if not head.split(b" ", 2)[1].startswith(b"2"):
                errors.append(1)
    except OSError:
        errors.append(1)
    finally:
        sock.close()


def python_client(url: str, duration: float, header: str | None) -> dict[str, Any]:
    """Run in the load subprocess: ``CONNECTIONS`` threads, one connection each."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = f"{header}\r\n" if header else ""
    request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{extra}"
               "Connection: keep-alive\r\n\r\n").encode()
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    until = start + duration
    threads = [
        threading.Thread(target=_client_connection,
                         args=(parts.hostname, parts.port, request, until, latencies, errors))
        for _ in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "seconds": elapsed,
            "p50_ms": percentile(latencies, 0.5) * 1000 if latencies else 0.0,
            "p99_ms": percentile(latencies, 0.99) * 1000 if latencies else 0.0,
            "errors": len(errors)}


def run_python_client(url: str, duration: float, header: str | None) -> Load:
    extra = ["--header", header] if header else []
    out = subprocess.run(
        [sys.executable, __file__, "--load", url, "--duration", str(duration), *extra],
        capture_output=True, text=True, check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return Load(result["requests"] / result["seconds"], result["p50_ms"], result["p99_ms"],
                result["requests"], result["errors"])


# --- main ---------------------------------------------------------------------------------------


def _get(url: str, header: str | None = None) -> bytes:
    import httpx

    name, _, value = (header or "").partition(": ")
    response = httpx.get(url, timeout=10, headers={name: value} if header else None)
    response.raise_for_status()
    return response.content


def _bearer(base_url: str) -> str:
    """The ``Authorization`` header of a token for the daemon's bench user."""
    import httpx

    response = httpx.post(f"{base_url}/api/v1/auth/login", timeout=10,
                          json={"username": USER, "password": PASSWORD})
    response.raise_for_status()
    return f"Authorization: Bearer {response.json()['access_token']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s per route")
    parser.add_argument("--duration", type=float, help="seconds per route and round")
    parser.add_argument("--rounds", type=int, help="rounds (the medians are printed)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--serve", choices=("daemon", "trivial"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--header", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        import logging

        import trio

        logging.basicConfig(level=logging.ERROR)
        if args.serve == "daemon":
            trio.run(serve_daemon, args.workdir)
        else:
            trio.run(serve_trivial)
        return
    if args.load:
        print(json.dumps(python_client(args.load, args.duration, args.header)))
        return

    duration = args.duration or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    if use_wrk and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")
    load = run_wrk if use_wrk else run_python_client
    generator = (f"wrk -t1 -c{CONNECTIONS} --latency" if use_wrk else
                 f"Python raw-socket keep-alive client, {CONNECTIONS} connections "
                 "(wrk not installed)")
    print(f"api bench: {len(SYMBOLS)} symbols x {len(VENUES)} venues in the book; "
          f"{rounds} round(s) of {duration:g} s per route; load generator: {generator}; "
          f"{os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory(prefix="arbotd-bench-api-") as tmp:
        servers: list[Server] = []
        try:
            for kind in ("trivial", "daemon"):
                servers.append(Server(kind, Path(tmp)))
            trivial, daemon = servers
            bearer = _bearer(daemon.url)
            targets: dict[str, tuple[str, str | None]] = {
                "trivial route (/ping)": (trivial.url + "/ping", None),
                "GET /api/v1/status": (daemon.url + "/api/v1/status", None),
                "GET /api/v1/status (JWT)": (daemon.url + "/api/v1/status", bearer),
                "GET /api/v1/prices/current": (daemon.url + "/api/v1/prices/current", None),
            }
            prices_url = targets["GET /api/v1/prices/current"][0]
            prices = json.loads(_get(prices_url))["prices"]
            size = len(_get(prices_url))
            print(f"/prices/current answers {len(prices)} symbols x "
                  f"{max(len(v) for v in prices.values())} venues, {size:,} bytes; "
                  f"/status {len(_get(targets['GET /api/v1/status'][0])):,} bytes; "
                  f"trivial {len(_get(targets['trivial route (/ping)'][0]))} bytes")
            _get(*targets["GET /api/v1/status (JWT)"])  # the token is accepted
            for url, header in targets.values():  # warm-up
                load(url, min(1.0, duration), header)
            results: dict[str, list[Load]] = {name: [] for name in targets}
            for _ in range(rounds):
                for name, (url, header) in targets.items():
                    results[name].append(load(url, duration, header))
        finally:
            for server in servers:
                server.stop()

    trivial_rate = median([r.requests_per_second for r in results["trivial route (/ping)"]])
    rows = []
    for name, runs in results.items():
        rate = median([r.requests_per_second for r in runs])
        rows.append([
            name, f"{rate:,.0f}", " ".join(f"{r.requests_per_second:,.0f}" for r in runs),
            f"{median([r.p50_ms for r in runs]):.2f}", f"{median([r.p99_ms for r in runs]):.2f}",
            f"{rate / trivial_rate:.2f}", str(sum(r.errors for r in runs)),
        ])
    print_table(["route", "req/s (median)", "rounds", "p50 ms", "p99 ms",
                 "ratio to trivial", "errors"], rows)
    for name in ("GET /api/v1/status", "GET /api/v1/prices/current"):
        ratio = median([r.requests_per_second for r in results[name]]) / trivial_rate
        verdict = "meets" if ratio >= 0.8 else "BELOW"
        print(f"{name}: {ratio:.2f} of the trivial route's rate ({verdict} the 0.8 target)")
    anonymous = median([r.requests_per_second for r in results["GET /api/v1/status"]])
    with_jwt = median([r.requests_per_second for r in results["GET /api/v1/status (JWT)"]])
    print(f"GET /api/v1/status with a JWT: {with_jwt / anonymous:.2f} of its rate without "
          "credentials")


if __name__ == "__main__":
    main()
