"""Helpers of the private order stream tests: running an account's stream, waiting for a
condition, and the quick reconnect policy the tests use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from arbotd.exchange import Backoff, OrderStream

# Heartbeats and reconnects in tenths of a second, so that faults play out quickly.
QUICK = {"heartbeat_interval": 0.05, "stale_after": 0.5, "login_timeout": 2.0,
         "backoff": Backoff(first=0.02, maximum=0.1, healthy_after=60.0)}


async def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    """Return once ``condition()`` is true; fail after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.005)


@asynccontextmanager
async def streaming(stream: OrderStream | None) -> AsyncIterator[OrderStream]:
    """Run ``stream`` until the block ends, once it is subscribed."""
    assert stream is not None, "the account has no order stream"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.run)
        await wait_until(lambda: stream.tracker.up)
        yield stream
        nursery.cancel_scope.cancel()
