"""Running the exchange adapters' market-data feeds.

Each enabled venue's feed runs as its own task in the supervisor's nursery, in its own
cancel scope, so that a reload can restart one feed without touching the others. An
adapter reconnects by itself; if its ``stream_quotes`` nevertheless fails, the supervisor
marks the venue unusable and starts it again with exponential backoff.

The adapter objects the supervisor holds are the ones running: a reload hands it fresh
adapter objects, and one that compares equal to the running adapter (with unchanged
symbols) is dropped, so that :meth:`FeedSupervisor.statuses` always reads the feed that
delivers the quotes. A feed that is restarted or stopped is marked unusable first (its
quotes are forgotten), and a venue's new task starts only once its old one has ended, so
that two runs of one adapter never overlap.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio

from arbotd._interfaces import ExchangeAdapter, FeedStatus, QuoteSink

__all__ = ["FeedSupervisor", "MarketDataSink"]

log = logging.getLogger(__name__)

_BACKOFF_START = 1.0
_BACKOFF_MAX = 60.0
# A feed that ran this long before failing starts again from the shortest delay.
_HEALTHY_RUN = 60.0


class MarketDataSink(QuoteSink, Protocol):
    """What the supervisor feeds (the engine): a quote sink that also says whether a
    venue's market data is usable, which is what ``statuses`` reports as connected."""

    def is_usable(self, exchange: str) -> bool: ...


class FeedSupervisor:
    """Keeps one feed task per enabled exchange adapter."""

    name = "feeds"

    def __init__(self, sink: MarketDataSink) -> None:
        self.sink = sink
        self.adapters: dict[str, ExchangeAdapter] = {}
        self.symbols: tuple[str, ...] = ()
        self._scopes: dict[str, trio.CancelScope] = {}
        # Set when a venue's latest feed task has ended: its next task waits for it.
        self._ended: dict[str, trio.Event] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for name in self.adapters:
                self._start(name)
            task_status.started()
            await trio.sleep_forever()

    def configure(self, adapters: Mapping[str, ExchangeAdapter], symbols: Sequence[str]) -> None:
        """Install a new set of adapters and symbols. A feed whose new adapter compares
        equal to the running one, with unchanged symbols, keeps running (as the running
        object); the others are restarted with their new adapter, added or stopped."""
        symbols = tuple(symbols)
        symbols_changed = symbols != self.symbols
        old = self.adapters
        kept = {
            name for name, adapter in adapters.items()
            if name in old and not symbols_changed and adapter == old[name]
        }
        self.adapters = {
            name: old[name] if name in kept else adapter for name, adapter in adapters.items()
        }
        self.symbols = symbols
        if self._nursery is None:
            return
        for name in old:
            if name not in self.adapters:
                log.info("%s: feed stopped (exchange no longer enabled)", name)
                self._stop(name)
                self.sink.on_feed_state(name, False, "disabled")
        for name in self.adapters:
            if name not in old:
                self._start(name)
            elif name not in kept:
                log.info("%s: restarting feed with the new configuration", name)
                self._stop(name)
                self.sink.on_feed_state(name, False, "feed restarting with the new configuration")
                self._start(name)

    def statuses(self) -> dict[str, FeedStatus]:
        """The status of each running feed. A feed counts as connected only while the
        sink (the engine) holds its market data usable, whatever the adapter says of its
        socket."""
        statuses = {}
        for name, adapter in self.adapters.items():
            status = adapter.feed_status()
            if status.connected and not self.sink.is_usable(name):
                status = attrs.evolve(status, connected=False)
            statuses[name] = status
        return statuses

    def _start(self, name: str) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._scopes[name] = scope
        previous = self._ended.get(name)
        ended = self._ended[name] = trio.Event()
        self._nursery.start_soon(
            self._keep_running, self.adapters[name], scope, previous, ended, name=name
        )

    def _stop(self, name: str) -> None:
        scope = self._scopes.pop(name, None)
        if scope is not None:
            scope.cancel()

    async def _keep_running(
        self,
        adapter: ExchangeAdapter,
        scope: trio.CancelScope,
        previous: trio.Event | None,
        ended: trio.Event,
    ) -> None:
        backoff = _BACKOFF_START
        try:
            with scope:
                if previous is not None:
                    # The venue's cancelled task may still be unwinding (closing its
                    # sockets): one adapter object never runs twice at once.
                    await previous.wait()
                while True:
                    started = trio.current_time()
                    try:
                        await adapter.stream_quotes(
                            self.symbols, self.sink, task_status=trio.TASK_STATUS_IGNORED
                        )
                        log.warning("%s: feed ended by itself; restarting", adapter.name)
                    except Exception as err:
                        log.error("%s: feed failed: %s: %s",
                                  adapter.name, type(err).__name__, err)
                    self.sink.on_feed_state(adapter.name, False, "feed restarting")
                    if trio.current_time() - started >= _HEALTHY_RUN:
                        backoff = _BACKOFF_START
                    delay = backoff * (0.5 + random.random())
                    log.info("%s: restarting feed in %.1f s", adapter.name, delay)
                    await trio.sleep(delay)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
        finally:
            ended.set()
