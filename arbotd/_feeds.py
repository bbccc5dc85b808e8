"""Running the exchange adapters' market-data feeds.

Each enabled venue's feed runs as its own task in the supervisor's nursery, in its own
cancel scope, so that a reload can restart one feed without touching the others. An
adapter reconnects by itself; if its ``stream_quotes`` nevertheless fails, the supervisor
marks the venue unusable and starts it again with exponential backoff.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from arbotd._interfaces import ExchangeAdapter, FeedStatus, QuoteSink

__all__ = ["FeedSupervisor"]

log = logging.getLogger(__name__)

_BACKOFF_START = 1.0
_BACKOFF_MAX = 60.0
# A feed that ran this long before failing starts again from the shortest delay.
_HEALTHY_RUN = 60.0


class FeedSupervisor:
    """Keeps one feed task per enabled exchange adapter."""

    name = "feeds"

    def __init__(self, sink: QuoteSink) -> None:
        self.sink = sink
        self.adapters: dict[str, ExchangeAdapter] = {}
        self.symbols: tuple[str, ...] = ()
        self._scopes: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for name in self.adapters:
                self._start(name)
            task_status.started()
            await trio.sleep_forever()

    def configure(self, adapters: Mapping[str, ExchangeAdapter], symbols: Sequence[str]) -> None:
        """Install a new set of adapters and symbols. Feeds whose adapter compares equal
        and whose symbols did not change keep running; the others are restarted, added or
        stopped."""
        symbols = tuple(symbols)
        symbols_changed = symbols != self.symbols
        old = self.adapters
        self.adapters = dict(adapters)
        self.symbols = symbols
        if self._nursery is None:
            return
        for name in old:
            if name not in self.adapters:
                log.info("%s: feed stopped (exchange no longer enabled)", name)
                self._stop(name)
                self.sink.on_feed_state(name, False, "disabled")
        for name, adapter in self.adapters.items():
            if name not in old:
                self._start(name)
            elif symbols_changed or adapter != old[name]:
                log.info("%s: restarting feed with the new configuration", name)
                self._stop(name)
                self._start(name)

    def statuses(self) -> dict[str, FeedStatus]:
        return {name: adapter.feed_status() for name, adapter in self.adapters.items()}

    def _start(self, name: str) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._scopes[name] = scope
        self._nursery.start_soon(self._keep_running, self.adapters[name], scope, name=name)

    def _stop(self, name: str) -> None:
        scope = self._scopes.pop(name, None)
        if scope is not None:
            scope.cancel()

    async def _keep_running(self, adapter: ExchangeAdapter, scope: trio.CancelScope) -> None:
        backoff = _BACKOFF_START
        with scope:
            while True:
                started = trio.current_time()
                try:
                    await adapter.stream_quotes(
                        self.symbols, self.sink, task_status=trio.TASK_STATUS_IGNORED
                    )
                    log.warning("%s: feed ended by itself; restarting", adapter.name)
                except Exception as err:
                    log.error("%s: feed failed: %s: %s", adapter.name, type(err).__name__, err)
                self.sink.on_feed_state(adapter.name, False, "feed restarting")
                if trio.current_time() - started >= _HEALTHY_RUN:
                    backoff = _BACKOFF_START
                delay = backoff * (0.5 + random.random())
                log.info("%s: restarting feed in %.1f s", adapter.name, delay)
                await trio.sleep(delay)
                backoff = min(backoff * 2, _BACKOFF_MAX)
