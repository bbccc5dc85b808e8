"""Market data is valid only once it arrives after a (re)connect, as the API shows it.

A venue whose socket stays open but goes silent, reconnects and still sends nothing is
never traded on, never prices an order and is never shown connected; reloads of every
kind keep ``/health`` and ``/status`` on the feeds that deliver the quotes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from apitools import server_factory
from exchanges.fake_binance import FakeBinance, open_fake_binance
from support import free_port

from arbotd import Signal

TIMEOUT = 20.0  # seconds; generous, for a loaded two-core machine


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


async def exchanges(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/status")
    assert response.status_code == 200, response.text
    return response.json()["exchanges"]


# --- a venue that goes silent with its socket open --------------------------------------

# A Binance bid 2 % above the simulated venues' BTCUSDT (65000): every simulated quote
# opens an opportunity with it while it is usable.
DEAR_BINANCE = {"b": "66300.00", "B": "5.0", "a": "66310.00", "A": "5.0"}


def dear_quote(fake: FakeBinance) -> bytes:
    return fake.book_ticker("BTCUSDT", **DEAR_BINANCE)


def involves_binance(signal: Signal) -> bool:
    return "binance" in (signal.buy_exchange, signal.sell_exchange)


@pytest.mark.slow
async def test_a_silent_venue_is_not_used_nor_shown_connected_until_fresh_data_arrives(
    serve_api, monkeypatch
):
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    async with open_fake_binance() as fake:
        # The fake sends only what the test injects: from the start, the socket is open
        # and silent unless told otherwise.
        fake.stalled = True
        # (/status is polled often: more reads than the default rate limit allows.)
        binance = f"""
            rate_limit = 10000

            [exchanges.binance]
            enabled = true
            ws_url = "{fake.url}"
            depth = 1
            stale_after_seconds = 1.0
            """
        # Quotes may be 30 s old for a signal, far more than Binance's silence allows: only
        # the validity of the data can keep the old bid out.
        arbitrage = """
            symbols = ["BTCUSDT"]
            max_spread_age_seconds = 30.0
            cooldown_seconds = 0.0
            max_trades_per_hour = 100000
            """
        async with serve_api(binance, arbitrage=arbitrage, wait_feeds=False) as api, \
                api.client() as client:
            engine = api.runtime.engine
            events = api.runtime.bus.subscribe(kinds=["signal", "status"], max_pending=10**6)
            sims = {"sim_alpha", "sim_beta", "sim_gamma"}

            async def sims_connected() -> bool:
                feeds = await exchanges(client)
                return all(feeds[name]["connected"] for name in sims)

            with trio.fail_after(TIMEOUT):
                while not await sims_connected():
                    await trio.sleep(0.05)
            # Connected, subscribed, silent: not usable, not shown connected.
            await wait_until(lambda: bool(fake.open_connections))
            feed = (await exchanges(client))["binance"]
            assert feed == {"connected": False, "last_update": None, "latency_ms": None}

            # Quotes every 0.1 s (the socket is not stale) until Binance shows connected
            # and one of its quotes made a signal.
            with trio.fail_after(TIMEOUT):
                while not ((feed := (await exchanges(client))["binance"])["connected"]
                           and any(map(involves_binance, engine.last_signals))):
                    fake.inject(dear_quote(fake))
                    await trio.sleep(0.1)
            last_update = feed["last_update"]
            assert last_update is not None
            first = len(fake.connections)

            # The silence: the watchdog closes the socket, the feed reconnects, and the new
            # socket brings nothing either. Poll /status all along, until a reconnected
            # socket has been silent long enough to be replaced in its turn.
            with trio.fail_after(TIMEOUT):
                while (await exchanges(client))["binance"]["connected"]:
                    await trio.sleep(0.05)
            polls = []
            with trio.fail_after(TIMEOUT):
                while len(fake.connections) < first + 2:
                    polls.append((await exchanges(client))["binance"])
                    await trio.sleep(0.05)
            assert len(polls) > 10
            assert [p for p in polls if p["connected"]] == []
            # last_update stays the time of the latest quote.
            silent_since = polls[0]["last_update"]
            assert silent_since >= last_update
            assert {p["last_update"] for p in polls} == {silent_since}
            assert engine.fresh_quote("binance", "BTCUSDT", 3600.0) is None
            assert engine.price_usd("BTC") is not None  # the simulated venues still price it

            # No signal took Binance's old bid after it went silent.
            seen = []
            while True:
                try:
                    seen.append(events.receive_nowait().payload)
                except trio.WouldBlock:
                    break
            # (The last time Binance went unusable is the silence: a slow machine may have
            # had a gap earlier, while quotes were still being sent.)
            down = max(
                index for index, event in enumerate(seen)
                if isinstance(event, dict) and event.get("exchange") == "binance"
                and event.get("usable") is False
            )
            assert any(isinstance(e, Signal) and involves_binance(e) for e in seen[:down])
            late = [e for e in seen[down:] if isinstance(e, Signal) and involves_binance(e)]
            assert late == []
            assert all(
                e.get("usable") is False for e in seen[down:]
                if isinstance(e, dict) and e.get("exchange") == "binance"
            )

            # Fresh data after a reconnect makes it usable and connected again.
            with trio.fail_after(TIMEOUT):
                while not (feed := (await exchanges(client))["binance"])["connected"]:
                    fake.inject(dear_quote(fake))
                    await trio.sleep(0.1)
            assert feed["last_update"] > silent_since
            assert engine.fresh_quote("binance", "BTCUSDT", 3600.0) is not None


# --- reloads ----------------------------------------------------------------------------


async def assert_live(client: httpx.AsyncClient, venues: set[str]) -> None:
    """``/health`` answers 200 and ``/status`` shows ``venues`` connected, now."""
    response = await client.get("/api/v1/health")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["exchanges"] == {
        "status": "pass", "connected_count": len(venues), "total_count": len(venues)}
    feeds = await exchanges(client)
    assert set(feeds) == venues and all(f["connected"] for f in feeds.values())


async def assert_live_soon(client: httpx.AsyncClient, venues: set[str]) -> None:
    """After a reload that restarts feeds: healthy once the restarted feeds deliver, and
    ``last_update`` keeps moving (the status is read from the feeds that run)."""
    with trio.fail_after(TIMEOUT):
        while True:
            health = await client.get("/api/v1/health")
            feeds = await exchanges(client)
            if health.status_code == 200 and set(feeds) == venues:
                break
            await trio.sleep(0.05)
    await assert_live(client, venues)
    before = {name: feed["last_update"] for name, feed in (await exchanges(client)).items()}
    with trio.fail_after(TIMEOUT):
        while True:
            feeds = await exchanges(client)
            if all(feeds[name]["last_update"] > before[name] for name in venues):
                break
            await trio.sleep(0.05)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


async def test_reloads_of_every_kind_keep_health_and_status_on_the_running_feeds(serve_api):
    three = {"sim_alpha", "sim_beta", "sim_gamma"}
    arbitrage = 'symbols = ["BTCUSDT", "ETHUSDT"]\n'
    async with serve_api(arbitrage=arbitrage) as api, api.client() as client:
        await assert_live(client, three)

        # The file unchanged (what SIGHUP or systemctl reload does).
        assert (await api.runtime.reload()).ok
        await assert_live(client, three)
        await assert_live_soon(client, three)

        # Trading parameters through the API: the exchanges' settings are unchanged.
        response = await client.put("/api/v1/trading/config",
                                    json={"arbitrage": {"min_profit_threshold": 0.003}})
        assert response.status_code == 200, response.text
        await assert_live(client, three)
        await assert_live_soon(client, three)

        # A symbol added restarts the feeds with it.
        edit(api.config_path, arbitrage, 'symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]\n')
        assert (await api.runtime.reload()).ok
        await assert_live_soon(client, three)
        assert set((await client.get("/api/v1/prices/current",
                                     params={"symbol": "SOLUSDT"})).json()["prices"]["SOLUSDT"]
                   ) == three

        # An exchange disabled, then enabled again.
        edit(api.config_path, "[simulation]\n",
             '[simulation]\nvenues = ["sim_alpha", "sim_beta"]\n')
        assert (await api.runtime.reload()).ok
        await assert_live_soon(client, {"sim_alpha", "sim_beta"})
        edit(api.config_path, 'venues = ["sim_alpha", "sim_beta"]\n',
             'venues = ["sim_alpha", "sim_beta", "sim_gamma"]\n')
        assert (await api.runtime.reload()).ok
        await assert_live_soon(client, three)

        # And once more unchanged, after all that.
        assert (await api.runtime.reload()).ok
        await assert_live(client, three)


# --- the same through a real daemon and a real SIGHUP -----------------------------------


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


def _wait_for(condition: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen; the daemon's log:\n"
                        f"{log.read_text(errors='replace')}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sighup_with_the_file_unchanged_keeps_the_daemon_healthy(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "arbot.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n\n[api]\nport = {port}\n'
                      '\n[simulation]\nupdates_per_second = 10.0\n')
    log = tmp_path / "daemon.log"
    url = f"http://127.0.0.1:{port}/api/v1"
    env = {key: value for key, value in os.environ.items() if key != "NOTIFY_SOCKET"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "arbotd", "run", "-c", str(config), "--log-level", "info"],
            env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            response = _get(f"{url}/health")
            return response is not None and response.status_code == 200

        _wait_for(healthy, "/health 200 after the start", log)
        for count in (1, 2):
            process.send_signal(signal.SIGHUP)
            _wait_for(lambda c=count: log.read_text().count(  # type: ignore[misc]
                "configuration reloaded; nothing changed") >= c, "the reload", log)
            response = httpx.get(f"{url}/health", timeout=5)
            assert response.status_code == 200, response.text
            status = httpx.get(f"{url}/status", timeout=5).json()
            assert all(feed["connected"] for feed in status["exchanges"].values())
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
