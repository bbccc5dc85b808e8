"""The feed supervisor: one task per venue, restarted with backoff when it fails, and on
reload only the feeds whose settings or symbols changed are restarted; statuses come from
the adapters that run."""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing

from arbotd import FeedStatus
from arbotd._feeds import FeedSupervisor


@attrs.define(eq=False)
class FakeAdapter:
    name: str
    setting: int = 0
    fail: bool = False
    taker_fee: float = 0.001
    premium_baseline: float = 0.0
    starts: list[tuple[str, ...]] = attrs.field(factory=list)
    running: int = 0
    most_at_once: int = 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeAdapter) and (self.name, self.setting) == (
            other.name, other.setting)

    async def stream_quotes(self, symbols: Any, sink: Any, *, task_status: Any) -> None:
        self.starts.append(tuple(symbols))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            sink.on_feed_state(self.name, True)
            if self.fail:
                raise ConnectionError("connection reset by peer")
            await trio.sleep_forever()
        finally:
            # Unwinding takes a while, like closing a socket politely.
            with trio.CancelScope(shield=True):
                await trio.sleep(0)
                await trio.sleep(0)
            self.running -= 1

    def feed_status(self) -> FeedStatus:
        return FeedStatus(connected=self.running > 0)


class Sink:
    """Stands in for the engine: every venue said connected counts as usable."""

    def __init__(self) -> None:
        self.states: list[tuple[str, bool, str]] = []

    def on_quote(self, quote: object) -> None:
        pass

    def on_feed_state(self, exchange: str, usable: bool, reason: str = "") -> None:
        self.states.append((exchange, usable, reason))

    def is_usable(self, exchange: str) -> bool:
        latest = [usable for name, usable, _ in self.states if name == exchange]
        return bool(latest) and latest[-1]


async def test_reload_restarts_only_what_changed(nursery: trio.Nursery) -> None:
    a, b = FakeAdapter("a"), FakeAdapter("b")
    feeds = FeedSupervisor(Sink())
    feeds.configure({"a": a, "b": b}, ["BTCUSDT"])
    await nursery.start(feeds.run)
    await trio.testing.wait_all_tasks_blocked()
    assert a.starts == [("BTCUSDT",)] and b.starts == [("BTCUSDT",)]

    # Equal adapters, same symbols: nothing restarts.
    feeds.configure({"a": FakeAdapter("a"), "b": FakeAdapter("b")}, ["BTCUSDT"])
    await trio.testing.wait_all_tasks_blocked()
    assert len(a.starts) == 1 and len(b.starts) == 1

    # b's settings changed: only b restarts, as its new adapter.
    new_b = FakeAdapter("b", setting=1)
    feeds.configure({"a": a, "b": new_b}, ["BTCUSDT"])
    await trio.testing.wait_all_tasks_blocked()
    assert len(a.starts) == 1 and new_b.starts == [("BTCUSDT",)]

    # The symbol set changed: every feed restarts with it.
    feeds.configure({"a": a, "b": new_b}, ["BTCUSDT", "ETHUSDT"])
    await trio.testing.wait_all_tasks_blocked()
    assert a.starts[-1] == new_b.starts[-1] == ("BTCUSDT", "ETHUSDT")
    nursery.cancel_scope.cancel()


async def test_statuses_come_from_the_adapters_that_run(nursery: trio.Nursery) -> None:
    running = FakeAdapter("a")
    feeds = FeedSupervisor(Sink())
    feeds.configure({"a": running}, ["BTCUSDT"])
    await nursery.start(feeds.run)
    await trio.testing.wait_all_tasks_blocked()
    assert feeds.statuses()["a"].connected

    # A reload hands over a fresh, equal adapter that never runs: the running one stays.
    feeds.configure({"a": FakeAdapter("a")}, ["BTCUSDT"])
    await trio.testing.wait_all_tasks_blocked()
    assert feeds.adapters["a"] is running and feeds.statuses()["a"].connected

    # A symbol added restarts the feed as the new adapter, which then reports.
    fresh = FakeAdapter("a")
    feeds.configure({"a": fresh}, ["BTCUSDT", "ETHUSDT"])
    await trio.testing.wait_all_tasks_blocked()
    assert feeds.adapters["a"] is fresh and fresh.starts == [("BTCUSDT", "ETHUSDT")]
    assert running.running == 0 and feeds.statuses()["a"].connected
    nursery.cancel_scope.cancel()


async def test_a_restarted_feed_is_marked_unusable_and_never_runs_twice_at_once(
    nursery: trio.Nursery,
) -> None:
    sink = Sink()
    adapter = FakeAdapter("a")
    feeds = FeedSupervisor(sink)
    feeds.configure({"a": adapter}, ["BTCUSDT"])
    await nursery.start(feeds.run)
    await trio.testing.wait_all_tasks_blocked()
    # The same object again with another symbol set (as a backtest session may do).
    feeds.configure({"a": adapter}, ["BTCUSDT", "ETHUSDT"])
    assert sink.states[-1][:2] == ("a", False)
    assert not feeds.statuses()["a"].connected
    await trio.testing.wait_all_tasks_blocked()
    assert len(adapter.starts) == 2 and adapter.most_at_once == 1
    assert sink.states[-1][:2] == ("a", True) and feeds.statuses()["a"].connected
    nursery.cancel_scope.cancel()


async def test_a_feed_counts_as_connected_only_while_the_sink_holds_it_usable(
    nursery: trio.Nursery,
) -> None:
    sink = Sink()
    feeds = FeedSupervisor(sink)
    feeds.configure({"a": FakeAdapter("a")}, ["BTCUSDT"])
    await nursery.start(feeds.run)
    await trio.testing.wait_all_tasks_blocked()
    assert feeds.statuses()["a"].connected
    sink.on_feed_state("a", False, "stale")  # the adapter still says connected
    assert not feeds.statuses()["a"].connected
    nursery.cancel_scope.cancel()


async def test_a_venue_no_longer_enabled_is_stopped_and_marked(nursery: trio.Nursery) -> None:
    sink = Sink()
    feeds = FeedSupervisor(sink)
    feeds.configure({"a": FakeAdapter("a"), "b": FakeAdapter("b")}, ["BTCUSDT"])
    await nursery.start(feeds.run)
    feeds.configure({"a": FakeAdapter("a")}, ["BTCUSDT"])
    assert ("b", False, "disabled") in sink.states
    assert list(feeds.statuses()) == ["a"]
    nursery.cancel_scope.cancel()


async def test_a_failing_feed_is_marked_unusable_and_retried_with_backoff(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sink = Sink()
    broken = FakeAdapter("a", fail=True)
    feeds = FeedSupervisor(sink)
    feeds.configure({"a": broken}, ["BTCUSDT"])
    await nursery.start(feeds.run)
    start = trio.current_time()
    await trio.sleep(20)
    # Backoff doubles from 1 s (with jitter): a handful of attempts, not hundreds.
    assert 3 <= len(broken.starts) <= 7
    assert ("a", False, "feed restarting") in sink.states
    assert trio.current_time() - start >= 20
    nursery.cancel_scope.cancel()
