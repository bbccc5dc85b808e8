"""Fill-to-knowledge latency on the fake exchanges: how long after an exchange matches an
order the trading account knows its outcome and fills, learning them from the private
order stream or from REST alone.

Setup: the fake Binance, Bybit and OKX servers of the test suite (REST and private
stream on loopback, signatures checked, one TCP connection per REST request as the fakes
answer), each account as live mode builds it, one order at a time:

- **IOC, filled at once**: an IOC buy that the fake matches on arrival across two levels.
  The clock starts when the fake matches it (before its answer leaves) and stops when
  ``place_order`` returns. Binance answers the placement with the fills
  (``newOrderRespType=FULL``), so both ways cost one round trip there; Bybit and OKX
  only acknowledge a placement, and REST must then ask for the order and its fills.
- **resting, filled later** (Binance): the order is accepted open and matched 20-120 ms
  later, as an order that meets liquidity a moment after it arrives. The clock starts at
  the match. REST polls the order every ``poll_interval`` (0.2 s, the account's
  default); the stream hears the match as it happens.

The fakes run in the benchmark's own process and event loop (as in the tests), so the
stream's messages cost CPU on both ends of the measured path: on Binance, where both ways
take one round trip, the stream can only look slower. The machine's load shows in every
figure; compare rows of one run.

Printed: p50 and p99 in milliseconds per venue, scenario and way, the REST requests that
asked about orders per order, and the ratio of REST's p50 to the stream's. Orders are
sent 0.1 s apart, so that no request budget makes one wait.

    .venv/bin/python tests/bench/fill_latency.py            # 100 orders per row
    .venv/bin/python tests/bench/fill_latency.py --quick    # 10 orders per row
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import trio
from _benchtools import percentile, print_table
from exchanges.fake_binance_private import open_fake_binance_user_data
from exchanges.fake_binance_rest import FakeBinanceRest, open_fake_binance_rest
from exchanges.fake_bybit import open_fake_bybit
from exchanges.fake_bybit_private import open_fake_bybit_private
from exchanges.fake_okx import open_fake_okx
from exchanges.fake_okx_private import open_fake_okx_private

from arbotd import Order, Side
from arbotd_binance import BinanceAccount, BinanceConfig
from arbotd_bybit import BybitAccount, BybitConfig
from arbotd_okx import OkxAccount, OkxConfig

D = Decimal
KEYS = {"BENCH_KEY": "bench-api-key", "BENCH_SECRET": "bench-api-secret",
        "BENCH_PASSPHRASE": "bench-passphrase"}
REST_POLL_INTERVAL = 0.2
# Between two orders: the accounts' request budgets (Bybit: 16 creates a second, OKX: 24)
# never make an order wait, so only the way of learning is measured.
PAUSE = 0.1

# One row of the table: the venue, the scenario, how the account learns, the latencies
# (seconds) and the REST requests that asked about orders.
Row = tuple[str, str, str, list[float], int]


class Clock:
    """When the fake last matched an order (its order listeners are told at once)."""

    def __init__(self) -> None:
        self.matched: float | None = None

    def mark(self, *_: Any) -> None:
        self.matched = time.perf_counter()


async def wait_for(condition: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.001)


async def run_stream(account: Any, nursery: trio.Nursery) -> None:
    nursery.start_soon(account.order_stream.run)
    await wait_for(lambda: account.orders.up)


async def timed_orders(count: int, place: Callable[[int], Awaitable[None]], clock: Clock
                       ) -> list[float]:
    latencies = []
    for number in range(count):
        await trio.sleep(PAUSE)
        clock.matched = None
        await place(number)
        done = time.perf_counter()
        assert clock.matched is not None, "the fake never matched the order"
        latencies.append(done - clock.matched)
    return latencies


# --- Binance --------------------------------------------------------------------------------


@asynccontextmanager
async def binance(streaming: bool) -> AsyncIterator[tuple[FakeBinanceRest, BinanceAccount]]:
    async with open_fake_binance_rest(KEYS["BENCH_KEY"], KEYS["BENCH_SECRET"]) as rest, \
            open_fake_binance_user_data(rest) as user_data:
        rest.balances["USDT"] = (D("1e12"), D(0))
        config = BinanceConfig(enabled=True, rest_url=rest.url, api_key_env="BENCH_KEY",
                               api_secret_env="BENCH_SECRET",
                               order_stream_url=user_data.url if streaming else "")
        account = BinanceAccount(config, symbols=lambda: ("BTCUSDT",),
                                 poll_interval=REST_POLL_INTERVAL, poll_attempts=100)
        await account.open()
        async with trio.open_nursery() as nursery:
            if streaming:
                await run_stream(account, nursery)
            yield rest, account
            nursery.cancel_scope.cancel()
        await account.close()


def binance_order(number: int) -> Order:
    return Order(f"bench{number}b", number, "binance", "BTCUSDT", Side.BUY, D("30002"),
                 D("0.01"))


async def binance_ioc(count: int, streaming: bool) -> Row:
    async with binance(streaming) as (rest, account):
        clock = Clock()
        rest.order_listeners.append(clock.mark)

        async def place(number: int) -> None:
            rest.set_book("BTCUSDT", bids=[("30000.00", "1")],
                          asks=[("30001.00", "0.004"), ("30002.00", "1")])
            await account.place_order(binance_order(number))

        latencies = await timed_orders(count, place, clock)
        return ("binance", "IOC, filled at once", way(streaming), latencies,
                order_queries(rest.requests, {"/api/v3/order", "/api/v3/myTrades"}))


async def binance_resting(count: int, streaming: bool, seed: int) -> Row:
    async with binance(streaming) as (rest, account):
        rest.order_fault, rest.settle_after_queries = "pending", 10**9
        draw = random.Random(seed)
        clock = Clock()

        async def place(number: int) -> None:
            rest.set_book("BTCUSDT", bids=[("30000.00", "1")],
                          asks=[("30001.00", "0.004"), ("30002.00", "1")])
            sent = binance_order(number)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(account.place_order, sent)
                await wait_for(lambda: rest.order(sent.client_order_id) is not None)
                await trio.sleep(draw.uniform(0.02, 0.12))
                clock.mark()
                rest.release_pending()

        latencies = await timed_orders(count, place, clock)
        how = way(streaming, polled=True)
        return ("binance", "resting, filled 20-120 ms later", how, latencies,
                order_queries(rest.requests, {"/api/v3/order", "/api/v3/myTrades"}))


# --- Bybit ----------------------------------------------------------------------------------


async def bybit_ioc(count: int, streaming: bool) -> Row:
    async with open_fake_bybit(KEYS["BENCH_KEY"], KEYS["BENCH_SECRET"], interval=60) as fake, \
            open_fake_bybit_private(fake) as private:
        fake.balances["USDT"] = [D("1e12"), D(0)]
        fake.uid_limits = dict.fromkeys(fake.uid_limits, 10**6)
        config = BybitConfig(enabled=True, rest_url=fake.rest_url, api_key_env="BENCH_KEY",
                             api_secret_env="BENCH_SECRET",
                             order_stream_url=private.url if streaming else "")
        account = BybitAccount(config, poll_interval=0.01)
        await account.open()
        clock = Clock()
        fake.order_listeners.append(clock.mark)

        async def place(number: int) -> None:
            fake.set_book("BTCUSDT", [("16610.0", "1")], [("16611.0", "0.004"),
                                                          ("16611.5", "1")])
            await account.place_order(Order(f"bench{number}b", number, "bybit", "BTCUSDT",
                                            Side.BUY, D("16612"), D("0.01")))

        async with trio.open_nursery() as nursery:
            if streaming:
                await run_stream(account, nursery)
            latencies = await timed_orders(count, place, clock)
            nursery.cancel_scope.cancel()
        await account.close()
        return ("bybit", "IOC, filled at once", way(streaming), latencies, order_queries(
            fake.requests, {"/v5/order/realtime", "/v5/order/history", "/v5/execution/list"}))


# --- OKX ------------------------------------------------------------------------------------


async def okx_ioc(count: int, streaming: bool) -> Row:
    async with open_fake_okx(KEYS["BENCH_KEY"], KEYS["BENCH_SECRET"], KEYS["BENCH_PASSPHRASE"],
                             interval=60) as fake, open_fake_okx_private(fake) as private:
        fake.balances["USDT"] = [D("1e12"), D(0)]
        fake.limit_window = 1e-6  # no rate limit: one order at a time is the point here
        settings = OkxConfig(enabled=True, rest_url=fake.rest_url, api_key_env="BENCH_KEY",
                             api_secret_env="BENCH_SECRET", passphrase_env="BENCH_PASSPHRASE",
                             order_stream_url=private.url if streaming else "")
        account = OkxAccount(settings, poll_interval=0.01)
        await account.open()
        clock = Clock()
        fake.order_listeners.append(clock.mark)

        async def place(number: int) -> None:
            fake.set_book("BTC-USDT", bids=[("99.9", "1")], asks=[("100", "0.2"), ("100.5", "2")])
            await account.place_order(Order(f"bench{number}b", number, "okx", "BTCUSDT",
                                            Side.BUY, D("100.5"), D("0.5")))

        async with trio.open_nursery() as nursery:
            if streaming:
                await run_stream(account, nursery)
            latencies = await timed_orders(count, place, clock)
            nursery.cancel_scope.cancel()
        await account.close()
        return ("okx", "IOC, filled at once", way(streaming), latencies, order_queries(
            fake.requests, {"/api/v5/trade/order", "/api/v5/trade/fills"}))


# --- the table ------------------------------------------------------------------------------


def way(streaming: bool, *, polled: bool = False) -> str:
    if streaming:
        return "private stream"
    return f"REST (polled every {REST_POLL_INTERVAL:g} s)" if polled else "REST"


def order_queries(requests: list[Any], paths: set[str]) -> int:
    return sum(1 for r in requests if r.method == "GET" and r.path in paths)


async def measure(count: int) -> None:
    os.environ.update(KEYS)
    rows: list[Row] = []
    for streaming in (True, False):
        rows.append(await binance_ioc(count, streaming))
        rows.append(await bybit_ioc(count, streaming))
        rows.append(await okx_ioc(count, streaming))
        rows.append(await binance_resting(count, streaming, seed=7))
    rows.sort(key=lambda r: (r[1], r[0], r[2] != "private stream"))
    print(f"fill_latency: fill-to-knowledge on the fake exchanges (loopback), {count} "
          "orders per row, one at a time")
    print_table(
        ["venue", "order", "learned from", "p50 ms", "p99 ms", "order queries/order"],
        [[venue, scenario, how, f"{percentile(lat, 0.5) * 1e3:.2f}",
          f"{percentile(lat, 0.99) * 1e3:.2f}", f"{queries / count:.1f}"]
         for venue, scenario, how, lat, queries in rows],
    )
    by_key = {(r[0], r[1], r[2] == "private stream"): r[3] for r in rows}
    ratios = []
    for venue, scenario, _, _, _ in rows:
        stream, rest = by_key.get((venue, scenario, True)), by_key.get((venue, scenario, False))
        label = f"{venue} {scenario.split(',')[0]}"
        if stream and rest and not any(label in r for r in ratios):
            ratios.append(f"{label} x{percentile(rest, 0.5) / percentile(stream, 0.5):.1f}")
    print(f"  REST p50 / stream p50: {', '.join(ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 orders per row")
    parser.add_argument("--orders", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    trio.run(measure, args.orders or (10 if args.quick else 100))


if __name__ == "__main__":
    main()
