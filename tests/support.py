"""Helpers shared by tests in several folders (importable as ``support``: the tests
folder is on ``sys.path`` through pytest's ``pythonpath`` setting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from arbotd._daemon import Daemon
from arbotd._sdnotify import Notifier


class RecordingNotifier(Notifier):
    """Keeps the service-manager notifications instead of sending them."""

    def __init__(self) -> None:
        super().__init__(address="", watchdog_usec="")
        self.sent: list[tuple[str, ...]] = []
        self._news = trio.Event()

    def notify(self, *fields: str) -> None:
        self.sent.append(fields)
        self._news.set()
        self._news = trio.Event()

    def count(self, field: str) -> int:
        return sum(field in fields for fields in self.sent)

    async def wait_for(self, field: str, count: int = 1) -> None:
        """Wait until ``count`` notifications carried ``field`` (e.g. ``"READY=1"``)."""
        while self.count(field) < count:
            await self._news.wait()


# --- running the daemon in virtual time -----------------------------------------------------

VIRTUAL_EPOCH = 1_750_000_000.0


async def simulate(
    config_path: Path, seconds: float, notifier: RecordingNotifier | None = None
) -> tuple[Any, list[Any]]:
    """Run the daemon with the installed plugins on ``config_path`` for ``seconds`` of
    trio time, its wall clock starting at ``VIRTUAL_EPOCH`` whenever the run starts; return
    the runtime (stopped) and every quote it published. Use with the ``autojump_clock``
    fixture, requested by the test itself."""
    from arbotd import SubscriptionClosed

    notifier = notifier or RecordingNotifier()
    daemon = Daemon(config_path, notifier=notifier)
    runtime = daemon.prepare()
    runtime.use_virtual_clock(VIRTUAL_EPOCH - trio.current_time())
    quotes: list[Any] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.serve)
        # Opening storage runs in a thread, during which the autojump clock moves on:
        # count the run's time from READY, when the feeds and trading have started.
        await notifier.wait_for("READY=1")
        subscription = runtime.bus.subscribe(kinds=["price"], max_pending=10**6)

        async def record() -> None:
            try:
                async for event in subscription:
                    quotes.append(event.payload)
            except SubscriptionClosed:  # the daemon shut down
                pass

        nursery.start_soon(record)
        await trio.sleep(seconds)
        runtime.shutdown_requested.set()
    return runtime, quotes
