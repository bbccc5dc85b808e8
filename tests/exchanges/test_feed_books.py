"""What the shared feed does for feeds that keep order books: each symbol's sync runs on
its own, a symbol that keeps falling out of sync waits longer each time, a failed sync is
retried after a backoff, and a sync may ask for the connection to be reopened.

Timers run on trio's autojump clock, so the waits are exact and cost no real time."""

from __future__ import annotations

from typing import Any

import trio
from feedtools import RecordingSink

from arbotd import Quote, TemporaryExchangeError
from arbotd.exchange import Backoff, Connection, Resync, WebSocketFeed
from arbotd.exchange.feed import _BookSyncs

BACKOFF = Backoff(first=1.0, maximum=8.0, healthy_after=60.0)
QUOTE = Quote("scripted", "A", 1.0, 2.0, 1.0, 1.0, 0.0, 0.0)


class ScriptedFeed(WebSocketFeed):
    """A feed whose syncs do what the test says: each call takes the next outcome (an
    exception to raise, or a quote to return)."""

    name = "scripted"
    keeps_books = True

    def __init__(self, *outcomes: object) -> None:
        super().__init__(None, taker_fee=0.001, sync_backoff=BACKOFF)
        self.outcomes = list(outcomes)
        self.calls: list[float] = []

    async def sync_book(self, symbol: str, connection: Connection, state: dict[str, Any],
                        ws: Any) -> Quote | None:
        self.calls.append(trio.current_time())
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]


async def synced(feed: ScriptedFeed, count: int) -> None:
    while len(feed.calls) < count:
        await trio.sleep(0.1)  # virtual time: the waits measured are the feed's own


async def test_a_flapping_symbol_waits_longer_each_time(autojump_clock: Any) -> None:
    feed = ScriptedFeed()
    async with trio.open_nursery() as nursery:
        syncs = _BookSyncs(feed, Connection("ws://x", {"A": "A"}), {}, None,  # type: ignore[arg-type]
                           RecordingSink(), nursery)
        syncs.request("A", resync=False)  # the connection opened: at once
        await synced(feed, 1)
        asked = []
        for count in range(2, 7):  # out of sync again right after each sync
            await trio.sleep(0.01)
            asked.append(trio.current_time())
            syncs.request("A", resync=True)
            await synced(feed, count)
        waits = [call - at for call, at in zip(feed.calls[1:], asked, strict=True)]
        # Nominal 1, 2, 4, 8, 8 s, each drawn from [0.5, 1.5) of it.
        for wait, nominal in zip(waits, (1, 2, 4, 8, 8), strict=True):
            assert 0.5 * nominal <= wait < 1.5 * nominal
        # After a quiet spell, a one-off gap is synced at once.
        await trio.sleep(BACKOFF.healthy_after)
        at = trio.current_time()
        syncs.request("A", resync=True)
        await synced(feed, 7)
        assert feed.calls[-1] == at
        nursery.cancel_scope.cancel()


async def test_a_symbol_being_synced_is_not_synced_twice_at_once(autojump_clock: Any) -> None:
    feed = ScriptedFeed(TemporaryExchangeError("x", "HTTP 500"))
    async with trio.open_nursery() as nursery:
        syncs = _BookSyncs(feed, Connection("ws://x", {"A": "A"}), {}, None,  # type: ignore[arg-type]
                           RecordingSink(), nursery)
        syncs.request("A", resync=False)
        syncs.request("A", resync=True)
        syncs.request("A", resync=False)
        await trio.sleep(30)
        assert len(feed.calls) == 2  # the first failed, its retry synced
        nursery.cancel_scope.cancel()


async def test_a_failed_sync_is_retried_after_a_backoff_then_delivers(
    autojump_clock: Any,
) -> None:
    feed = ScriptedFeed(TemporaryExchangeError("x", "HTTP 500"), OSError("refused"),
                        ValueError("not a snapshot"), QUOTE)
    sink = RecordingSink()
    async with trio.open_nursery() as nursery:
        syncs = _BookSyncs(feed, Connection("ws://x", {"A": "A"}), {}, None,  # type: ignore[arg-type]
                           sink, nursery)
        syncs.request("A", resync=False)
        await synced(feed, 4)
        await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    waits = [b - a for a, b in zip(feed.calls, feed.calls[1:], strict=False)]
    for wait, nominal in zip(waits, (1, 2, 4), strict=True):
        assert 0.5 * nominal <= wait < 1.5 * nominal
    assert feed.sync_failures == 3
    assert sink.quotes == [QUOTE]
    assert feed.feed_status().last_update == QUOTE.received_ts


async def test_a_sync_may_ask_for_the_connection_to_be_reopened(autojump_clock: Any) -> None:
    feed = ScriptedFeed(Resync("the channel refused the resubscription"))
    async with trio.open_nursery() as nursery:
        syncs = _BookSyncs(feed, Connection("ws://x", {"A": "A"}), {}, None,  # type: ignore[arg-type]
                           RecordingSink(), nursery)
        syncs.request("A", resync=False)
        await trio.sleep_forever()  # cancelled by the sync
    assert syncs.ended == "resynchronising: the channel refused the resubscription"
    assert feed.resyncs == 1
