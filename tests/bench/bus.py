"""Cost of Bus.publish_price, in ns per call, beside an empty Python function call.

Run: ``.venv/bin/python tests/bench/bus.py``. Not collected by pytest (no ``test_`` prefix).

Two regimes with subscribers:

- *coalesced*: the subscribers are behind, so every quote replaces a pending one (one dict
  lookup and store per subscriber) — the steady state under load;
- *new key*: each quote is of a key the subscribers are not holding (dict store + deque
  append per subscriber); timed in batches of distinct keys, drained between batches
  outside the timing.
"""

from __future__ import annotations

import time
import timeit

import trio

from arbotd._bus import Bus, Subscription
from arbotd._model import Quote

N = 200_000
REPEAT = 5


def quote(symbol: str = "BTCUSDT", exchange: str = "binance") -> Quote:
    return Quote(exchange, symbol, 100.0, 100.1, 1.0, 1.0, 0.0, 0.0)


def best_ns(stmt: str, namespace: dict[str, object]) -> float:
    times = timeit.repeat(stmt, globals=namespace, number=N, repeat=REPEAT)
    return min(times) / N * 1e9


def empty(q: Quote) -> None:
    pass


def drain(subs: list[Subscription]) -> None:
    for sub in subs:
        while True:
            try:
                sub.receive_nowait()
            except trio.WouldBlock:
                break


def new_key_ns(n_subscribers: int) -> float:
    bus = Bus()
    subs = [bus.subscribe() for _ in range(n_subscribers)]
    quotes = [quote(f"C{i}USDT", ex) for i in range(100) for ex in ("binance", "bybit", "okx")]
    publish = bus.publish_price
    best = float("inf")
    for _ in range(REPEAT):
        total = 0
        for _ in range(N // len(quotes)):
            start = time.perf_counter_ns()
            for q in quotes:
                publish(q)
            total += time.perf_counter_ns() - start
            drain(subs)
        best = min(best, total / (N // len(quotes) * len(quotes)))
    # The loop itself, to subtract.
    start = time.perf_counter_ns()
    for _ in range(N // len(quotes)):
        for q in quotes:
            empty(q)
    loop = (time.perf_counter_ns() - start) / (N // len(quotes) * len(quotes))
    return best - loop + best_ns("empty(q)", {"empty": empty, "q": quotes[0]})


def main() -> None:
    q = quote()
    rows: list[tuple[str, float]] = [
        ("empty function call (baseline)", best_ns("f(q)", {"f": empty, "q": q})),
    ]
    bus = Bus()
    rows.append(("publish_price, 0 subscribers", best_ns("p(q)", {"p": bus.publish_price, "q": q})))
    rows.append((
        "engine guard `if bus.subscriber_count`, 0 subscribers",
        best_ns("if bus.subscriber_count: bus.publish_price(q)", {"bus": bus, "q": q}),
    ))
    for n in (1, 10):
        bus = Bus()
        subs = [bus.subscribe() for _ in range(n)]
        bus.publish_price(q)
        rows.append((
            f"publish_price, {n} subscriber(s), coalesced",
            best_ns("p(q)", {"p": bus.publish_price, "q": q}),
        ))
        drain(subs)
        rows.append((f"publish_price, {n} subscriber(s), new key", new_key_ns(n)))
    width = max(len(name) for name, _ in rows)
    for name, ns in rows:
        print(f"{name:<{width}}  {ns:8.1f} ns")


if __name__ == "__main__":
    main()
