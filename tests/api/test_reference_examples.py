"""The API reference's own SDK examples, run as published against a real daemon: the
Python one (requests) and the JavaScript one (fetch and WebSocket, with Node.js; skipped
when ``node`` is not installed).

The examples in ``reference_examples/`` are the reference's text with its indentation
back (the reference as shipped has lost it); a test checks they hold nothing else. They
talk to ``http://localhost:8080`` with the key ``your-api-key``, so the daemon listens
there with authentication off (a key sent is then ignored)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
import trio
from apitools import server_factory

HERE = Path(__file__).parent / "reference_examples"
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "spec" / "api-reference.txt"


def reference_lines(start: str, end: str) -> list[str]:
    lines = REFERENCE.read_text(encoding="utf-8").splitlines()
    first = lines.index(start) + 1
    return [line.strip() for line in lines[first:lines.index(end, first)] if line.strip()]


def example_lines(name: str) -> list[str]:
    text = (HERE / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.mark.skipif(not REFERENCE.exists(), reason="the API reference is not beside the "
                                                   "checkout (../shared/spec)")
def test_the_examples_are_the_references_text() -> None:
    assert example_lines("sdk_python.py") == reference_lines("Python SDK¶", "JavaScript SDK¶")
    assert example_lines("sdk_javascript.js") == reference_lines("JavaScript SDK¶",
                                                                 "API Best Practices")


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


def port_8080_free() -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", 8080))
        except OSError:
            return False
    return True


async def run(command: list[str], seconds: float) -> str:
    """Run ``command`` for at most ``seconds``; return what it printed."""
    process = await trio.lowlevel.open_process(command, stdout=-1, stderr=-2)
    output = b""
    assert process.stdout is not None
    with trio.move_on_after(seconds):
        async for chunk in process.stdout:
            output += chunk
    if process.poll() is None:
        process.kill()
    await process.wait()
    return output.decode()


@pytest.mark.slow
async def test_the_python_sdk_example_runs_as_published(serve_api) -> None:
    if not port_8080_free():
        pytest.skip("port 8080, which the example talks to, is in use")
    async with serve_api("auth_required = false\n", port=8080):
        out = await run([sys.executable, str(HERE / "sdk_python.py")], 60)
    assert "ArBot status: idle" in out, out
    assert "Found 0 recent trades" in out, out
    assert "Trading started: True" in out, out


@pytest.mark.slow
async def test_the_javascript_sdk_example_runs_as_published(serve_api) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js (node) is not installed")
    if not port_8080_free():
        pytest.skip("port 8080, which the example talks to, is in use")
    async with serve_api("auth_required = false\n", port=8080) as api:
        api.runtime.control.start("simulation")
        # The example never closes its WebSocket: it runs until stopped. Node.js 20 has
        # WebSocket behind a flag (22 has it by default).
        flags = ["--experimental-websocket"] if _node_major(node) < 22 else []
        out = await run([node, *flags, str(HERE / "sdk_javascript.js")], 15)
    assert "ArBot status: running" in out, out
    assert "Current BTC prices: {" in out and "BTCUSDT" in out, out


def _node_major(node: str) -> int:
    import subprocess

    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=False, env=dict(os.environ)).stdout.strip()
    try:
        return int(version.lstrip("v").split(".")[0])
    except ValueError:
        return 0
