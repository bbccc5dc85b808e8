"""The event bus: delivery, filters, coalescing, ordering and slow subscribers."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from arbotd._bus import Bus, Event, Subscription, SubscriptionClosed
from arbotd._model import Quote


def quote(symbol: str = "BTCUSDT", exchange: str = "binance", bid: float = 100.0) -> Quote:
    return Quote(exchange, symbol, bid, bid + 1, 1.0, 1.0, 0.0, 0.0)


def drain(sub: Subscription) -> list[Event]:
    events = []
    while True:
        try:
            events.append(sub.receive_nowait())
        except trio.WouldBlock:
            return events


async def test_delivers_each_kind() -> None:
    bus = Bus()
    with bus.subscribe() as sub:
        q = quote()
        bus.publish_price(q)
        bus.publish("signal", "a signal")
        bus.publish("trade", "a trade")
        bus.publish("status", {"event": "feed"})
        received = [await sub.receive() for _ in range(4)]
    assert received == [
        Event("price", q),
        Event("signal", "a signal"),
        Event("trade", "a trade"),
        Event("status", {"event": "feed"}),
    ]


async def test_publish_price_through_publish() -> None:
    bus = Bus()
    with bus.subscribe(kinds=["price"]) as sub:
        bus.publish("price", quote())
        assert (await sub.receive()).payload == quote()


async def test_receive_waits_for_an_event() -> None:
    bus = Bus()
    received: list[Event] = []
    with bus.subscribe() as sub:

        async def reader() -> None:
            received.append(await sub.receive())
            received.append(await sub.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            bus.publish_price(quote())
            await trio.testing.wait_all_tasks_blocked()
            bus.publish("signal", 1)
    assert [e.kind for e in received] == ["price", "signal"]


async def test_no_subscribers_is_a_no_op() -> None:
    bus = Bus()
    assert bus.subscriber_count == 0
    bus.publish_price(quote())
    bus.publish("signal", 1)
    with bus.subscribe() as sub:
        assert bus.subscriber_count == 1
        assert drain(sub) == []


async def test_kinds_filter_and_change() -> None:
    bus = Bus()
    with bus.subscribe(kinds=["signal", "trade"]) as sub:
        bus.publish_price(quote())
        bus.publish("status", {})
        bus.publish("signal", 1)
        assert drain(sub) == [Event("signal", 1)]

        sub.set_kinds(["price"])
        bus.publish("signal", 2)
        bus.publish_price(quote())
        assert drain(sub) == [Event("price", quote())]

        # An event already pending when its kind is dropped is skipped.
        sub.set_kinds(["price", "trade"])
        bus.publish("trade", 3)
        sub.set_kinds(["price"])
        assert drain(sub) == []


async def test_symbols_filter_applies_to_prices_only() -> None:
    bus = Bus()
    with bus.subscribe(symbols=["ETHUSDT"]) as sub:
        bus.publish_price(quote("BTCUSDT"))
        bus.publish_price(quote("ETHUSDT"))
        bus.publish("signal", "BTCUSDT signal")
        assert drain(sub) == [Event("price", quote("ETHUSDT")), Event("signal", "BTCUSDT signal")]

        sub.set_symbols(["BTCUSDT"])
        bus.publish_price(quote("ETHUSDT"))
        bus.publish_price(quote("BTCUSDT"))
        assert drain(sub) == [Event("price", quote("BTCUSDT"))]

        # Unsubscribing from a symbol also drops its pending price.
        bus.publish_price(quote("BTCUSDT"))
        sub.set_symbols([])
        assert drain(sub) == []

        sub.set_symbols(None)
        bus.publish_price(quote("SOLUSDT"))
        assert drain(sub) == [Event("price", quote("SOLUSDT"))]


async def test_filters_reject_strings_and_unknown_kinds() -> None:
    bus = Bus()
    with pytest.raises(TypeError, match="not the string"):
        bus.subscribe(symbols="BTCUSDT")
    with pytest.raises(ValueError, match="unknown event kinds"):
        bus.subscribe(kinds=["prices"])
    with pytest.raises(ValueError, match="max_pending"):
        bus.subscribe(max_pending=0)
    assert bus.subscriber_count == 0


async def test_prices_coalesce_per_key() -> None:
    bus = Bus()
    with bus.subscribe(kinds=["price"]) as sub:
        for i in range(1000):
            bus.publish_price(quote(bid=float(i)))
        await trio.sleep(0)
        event = await sub.receive()
        assert event.payload == quote(bid=999.0)
        assert sub.coalesced == 999
        assert drain(sub) == []


async def test_coalescing_keeps_keys_apart_and_the_first_position() -> None:
    bus = Bus()
    with bus.subscribe() as sub:
        bus.publish_price(quote("BTCUSDT", "binance", 1.0))
        bus.publish_price(quote("BTCUSDT", "okx", 2.0))
        bus.publish("signal", "s")
        bus.publish_price(quote("BTCUSDT", "binance", 3.0))
        assert drain(sub) == [
            Event("price", quote("BTCUSDT", "binance", 3.0)),
            Event("price", quote("BTCUSDT", "okx", 2.0)),
            Event("signal", "s"),
        ]
        assert sub.coalesced == 1
        # Once read, the next quote of a key takes a new slot at the end.
        bus.publish("signal", "t")
        bus.publish_price(quote("BTCUSDT", "binance", 4.0))
        assert [e.payload for e in drain(sub)] == ["t", quote("BTCUSDT", "binance", 4.0)]


async def test_non_price_events_keep_publish_order() -> None:
    bus = Bus()
    with bus.subscribe(kinds=["signal", "trade", "status"]) as sub:
        published = [(("signal", "trade", "status")[i % 3], i) for i in range(500)]
        for kind, payload in published:
            bus.publish(kind, payload)
        assert [(e.kind, e.payload) for e in drain(sub)] == published


async def test_slow_subscriber_is_closed_and_publisher_keeps_going() -> None:
    bus = Bus()
    sub = bus.subscribe(max_pending=10)
    for i in range(10):
        bus.publish("signal", i)
    assert sub.closed_reason is None
    bus.publish("signal", 10)
    assert sub.closed_reason == "subscriber too slow: 11 events behind"
    assert bus.subscriber_count == 0
    for i in range(100):  # nobody left to slow the publisher down
        bus.publish("signal", i)
        bus.publish_price(quote(bid=float(i)))
    with pytest.raises(SubscriptionClosed) as info:
        await sub.receive()
    assert info.value.reason == "subscriber too slow: 11 events behind"


async def test_prices_do_not_count_towards_max_pending() -> None:
    bus = Bus()
    with bus.subscribe(max_pending=2) as sub:
        for i in range(100):
            bus.publish_price(quote(f"C{i}USDT"))
        bus.publish("signal", 1)
        bus.publish("signal", 2)
        assert sub.closed_reason is None
        assert len(drain(sub)) == 102


async def test_waiting_reader_sees_the_close() -> None:
    bus = Bus()
    sub = bus.subscribe()
    reasons: list[str] = []

    async def reader() -> None:
        try:
            await sub.receive()
        except SubscriptionClosed as exc:
            reasons.append(exc.reason)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        bus.close()
    assert reasons == ["shutting down"]
    assert bus.subscriber_count == 0
    late = bus.subscribe()
    assert late.closed_reason == "shutting down"


async def test_stalled_subscriber_does_not_affect_another() -> None:
    bus = Bus()
    stalled = bus.subscribe(max_pending=5)
    received: list[object] = []
    with bus.subscribe(max_pending=5) as live:

        async def reader() -> None:
            async for event in live:
                received.append(event.payload)
                if len(received) == 20:
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            for i in range(20):
                await trio.testing.wait_all_tasks_blocked()
                bus.publish("trade", i)
        assert received == list(range(20))
        assert live.closed_reason is None
    assert stalled.closed_reason == "subscriber too slow: 6 events behind"


async def test_iteration_raises_when_closed() -> None:
    bus = Bus()
    sub = bus.subscribe()
    bus.publish("status", {"n": 1})
    seen = []
    with pytest.raises(SubscriptionClosed, match="bye"):
        async for event in sub:
            seen.append(event)
            sub.close("bye")
    assert seen == [Event("status", {"n": 1})]


async def test_context_manager_unsubscribes() -> None:
    bus = Bus()
    with bus.subscribe() as sub:
        assert bus.subscriber_count == 1
        bus.publish("signal", 1)
    assert bus.subscriber_count == 0
    assert sub.closed_reason == "closed"
    with pytest.raises(SubscriptionClosed):
        sub.receive_nowait()  # pending events are discarded on close
    bus.publish_price(quote())  # no longer delivered, nothing breaks


async def test_close_keeps_the_first_reason() -> None:
    bus = Bus()
    sub = bus.subscribe()
    sub.close("client went away")
    sub.close()
    bus.close()
    assert sub.closed_reason == "client went away"


async def test_one_receiver_at_a_time() -> None:
    bus = Bus()
    with bus.subscribe() as sub:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sub.receive)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await sub.receive()
            nursery.cancel_scope.cancel()
        # A cancelled receive leaves nothing behind: the next one works.
        bus.publish("signal", 1)
        assert await sub.receive() == Event("signal", 1)


async def test_receive_is_a_checkpoint() -> None:
    bus = Bus()
    with bus.subscribe() as sub:
        bus.publish("signal", 1)
        with trio.CancelScope() as scope:
            scope.cancel()
            await sub.receive()
        assert scope.cancelled_caught
        assert await sub.receive() == Event("signal", 1)  # not lost to the cancellation
