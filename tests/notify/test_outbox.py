"""The outbox and the rate limit, on their own, in virtual time: back-off between tries,
no retry after a refusal, the oldest dropped from a full queue, and the count of what the
rate limit kept back carried by the next notification of its kind."""

from __future__ import annotations

import itertools

import pytest
import trio

from arbotd_notify.config import RetryPolicy
from arbotd_notify.messages import Notification
from arbotd_notify.outbox import DeliveryError, KindLimit, Outbox


def note(kind: str = "emergency_stop", text: str = "stop") -> Notification:
    return Notification(kind, text, 1_750_000_000.0)


async def test_a_failing_destination_is_tried_again_with_doubling_delays(autojump_clock
                                                                         ) -> None:
    tries: list[float] = []

    async def send(_: Notification) -> None:
        tries.append(trio.current_time())
        if len(tries) < 4:
            raise DeliveryError("the webhook answered HTTP 503", retry=True)

    outbox = Outbox("webhook", send, max_queue=10,
                    retry=RetryPolicy(attempts=5, first_delay=1.0, max_delay=3.0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run)
        outbox.put(note())
        while outbox.counts.sent < 1:
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    # 1 s, 2 s, then 4 s capped at 3 s, each within the +/-25 % jitter.
    for gap, nominal in zip(gaps, (1.0, 2.0, 3.0), strict=True):
        assert nominal * 0.75 <= gap <= nominal * 1.25 + 0.1, gaps
    assert outbox.counts.failed == 0


async def test_retry_after_is_waited_for_and_attempts_run_out(autojump_clock) -> None:
    tries: list[float] = []

    async def send(_: Notification) -> None:
        tries.append(trio.current_time())
        raise DeliveryError("Telegram answered HTTP 429", retry=True, retry_after=30.0)

    outbox = Outbox("telegram", send, max_queue=10,
                    retry=RetryPolicy(attempts=3, first_delay=1.0, max_delay=60.0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run)
        outbox.put(note())
        while outbox.counts.failed < 1:
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert len(tries) == 3
    assert all(later - earlier >= 30.0 for earlier, later in itertools.pairwise(tries))
    assert outbox.counts.sent == 0


async def test_a_refusal_is_not_tried_again(autojump_clock) -> None:
    tries = 0

    async def send(_: Notification) -> None:
        nonlocal tries
        tries += 1
        raise DeliveryError("Telegram answered HTTP 400: chat not found", retry=False)

    outbox = Outbox("telegram", send, max_queue=10,
                    retry=RetryPolicy(attempts=5, first_delay=1.0, max_delay=60.0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run)
        outbox.put(note())
        outbox.put(note(text="second"))
        while outbox.counts.failed < 2:
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert tries == 2


async def test_a_full_queue_drops_its_oldest_and_counts_it(autojump_clock) -> None:
    delivered: list[str] = []
    release = trio.Event()

    async def send(notification: Notification) -> None:
        await release.wait()
        delivered.append(notification.text)

    outbox = Outbox("webhook", send, max_queue=3,
                    retry=RetryPolicy(attempts=1, first_delay=1.0, max_delay=1.0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run)
        outbox.put(note(text="0"))
        await trio.sleep(1)  # "0" is being sent, and stays so
        for index in range(1, 11):
            outbox.put(note(text=str(index)))
            assert len(outbox) <= 3
        assert outbox.counts.dropped == 7
        release.set()
        while not outbox.idle:
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert delivered == ["0", "8", "9", "10"]


def test_the_rate_limit_holds_back_a_kind_and_says_so_in_its_next_notification() -> None:
    limit = KindLimit(count=2, seconds=60.0)
    assert limit.admit(note(), 0.0) is not None
    assert limit.admit(note(), 1.0) is not None
    assert limit.admit(note(), 2.0) is None
    assert limit.admit(note(), 3.0) is None
    # Another kind has a limit of its own.
    assert limit.admit(note("venue_down"), 3.0) is not None
    assert limit.suppressed == {"emergency_stop": 2}
    # The window has moved past the first one sent.
    released = limit.admit(note(), 60.5)
    assert released is not None and released.suppressed == 2
    assert "2 more emergency_stop notifications were not sent: rate limit" in \
        released.message("arbotd")
    assert limit.suppressed == {}


@pytest.mark.parametrize(("count", "more"), [(1, 0), (3, 1)])
def test_a_reload_changes_the_limit_and_keeps_what_was_sent(count: int, more: int) -> None:
    limit = KindLimit(count=2, seconds=60.0)
    for now in (0.0, 1.0):
        assert limit.admit(note(), now) is not None
    limit.configure(count, 60.0)
    # Within the same minute: as many more as the new limit leaves room for.
    assert sum(limit.admit(note(), 2.0 + i) is not None for i in range(3)) == more
