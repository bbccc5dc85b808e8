"""``GET /metrics`` on a real daemon: the figures it reports are the daemon's own, requests
and WebSocket clients are counted, failed storage writes show, and it is protected like
the API (or by its scrape token) without sharing a rate-limit bucket with the reads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from apitools import API_KEY, READ_KEY, assert_error, server_factory
from prometheus_client.parser import text_string_to_metric_families
from support import WriteFault
from trio_websocket import open_websocket_url

from arbotd import Signal

SCRAPE_TOKEN = "scrape-token-0123456789abcdef"
TRADING = """
[risk_management]
max_concurrent_trades = 5

[storage]
flush_interval_seconds = 0.05

[simulation.paper]
fill_delay_seconds = 0.05
reject_rate = 0.2
"""


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    """``{label value: sample value}`` of the samples of ``name``."""
    return {dict(labels)[label]: v for (found, labels), v in samples.items() if found == name}


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_a_scrape_reports_the_daemons_own_figures(serve_api: Any) -> None:
    async with serve_api(TRADING, arbitrage="cooldown_seconds = 0.2",
                         simulation="dislocation_per_hour = 3600.0") as api, \
            api.client() as client:
        runtime = api.runtime
        control, engine = runtime.control, runtime.engine
        assert (await client.post("/api/v1/trading/start", json={
            "mode": "simulation"})).status_code == 200
        with trio.fail_after(60):
            while control.stats.trades_closed < 3:
                await trio.sleep(0.05)
        assert (await client.post("/api/v1/trading/stop")).status_code == 200
        with trio.fail_after(30):
            await control.wait_idle()
            # One quote in 64 is timed: three trades can close before the 64th quote.
            while engine.quotes_processed < 128:
                await trio.sleep(0.05)
        samples = await scrape(client)

        stats = control.stats
        closed = labelled(samples, "arbotd_trades_total", "state")
        assert set(closed) == {"completed", "unwound", "failed", "cancelled"}
        assert sum(closed.values()) == stats.trades_closed >= 3
        assert closed["completed"] == stats.trades_completed
        assert closed["unwound"] == stats.positions_unwound
        assert set(labelled(samples, "arbotd_trades_active", "state").values()) == {0.0}
        assert value(samples, "arbotd_open_exposure") == 0.0
        assert value(samples, "arbotd_trades_today") == stats.trades_today
        assert value(samples, "arbotd_realized_pnl") == pytest.approx(
            float(stats.realized_total), abs=1e-9)
        assert value(samples, "arbotd_realized_pnl_today") == pytest.approx(
            float(stats.realized_today), abs=1e-9)
        fees = value(samples, "arbotd_fees_paid_total")
        assert fees == pytest.approx(float(stats.fees_total), abs=1e-9) and fees > 0
        assert value(samples, "arbotd_trading_enabled") == 0.0
        assert value(samples, "arbotd_emergency_stop") == 0.0
        assert value(samples, "arbotd_info", mode="simulation",
                     version=__import__("arbotd").__version__) == 1.0
        assert value(samples, "arbotd_equity_usd") > 0

        venues = ["sim_alpha", "sim_beta", "sim_gamma"]
        quotes = labelled(samples, "arbotd_quotes_total", "exchange")
        assert sorted(quotes) == venues
        for venue in venues:
            assert 0 < quotes[venue] <= engine.quote_counts[venue]
        assert labelled(samples, "arbotd_feed_connected", "exchange") == dict.fromkeys(
            venues, 1.0)
        assert all(0 <= age < 30 for age in labelled(
            samples, "arbotd_feed_last_update_age_seconds", "exchange").values())
        assert value(samples, "arbotd_signals_total") >= stats.trades_closed
        assert labelled(samples, "arbotd_signal_rejections_total", "reason")
        timed = value(samples, "arbotd_decision_latency_seconds_count")
        assert timed is not None and 0 < timed <= engine.quotes_processed / 64
        assert value(samples, "arbotd_decision_latency_seconds_bucket", le="+Inf") == timed

        limits = labelled(samples, "arbotd_risk_limit", "limit")
        assert limits["max_concurrent_trades"] == 5.0
        assert set(labelled(samples, "arbotd_risk_limit_state", "limit")) == set(limits)
        assert value(samples, "arbotd_storage_healthy") == 1.0
        assert value(samples, "arbotd_storage_write_errors_total") == 0.0
        assert value(samples, "arbotd_storage_backlog") >= 0
        assert value(samples, "process_resident_memory_bytes") > 0


async def test_answers_are_counted_by_route_template_method_and_status(serve_api: Any
                                                                       ) -> None:
    async with serve_api() as api, api.client() as client:
        for _ in range(3):
            assert (await client.get("/api/v1/status")).status_code == 200
        assert (await client.get("/api/v1/trades/12345")).status_code == 404
        assert_error(await client.get("/no/such/route/1"), 404, "NOT_FOUND")
        assert_error(await client.get("/no/such/route/2"), 404, "NOT_FOUND")
        assert_error(await client.delete("/api/v1/status"), 405, "METHOD_NOT_ALLOWED")
        samples = await scrape(client)
        requests = "arbotd_api_requests_total"
        assert value(samples, requests, route="/api/v1/status", method="GET",
                     status="200") == 3
        # The route's template, not the path asked for: no series per trade id.
        assert value(samples, requests, route="/api/v1/trades/<trade_id>", method="GET",
                     status="404") == 1
        assert value(samples, requests, route="unmatched", method="GET", status="404") == 2
        # No route takes a method it does not allow.
        assert value(samples, requests, route="unmatched", method="DELETE",
                     status="405") == 1


async def test_websocket_clients_are_counted_while_connected(serve_api: Any) -> None:
    async with serve_api() as api, api.client() as client:
        url = api.url.replace("http", "ws", 1) + "/api/v1/ws"

        async def clients() -> float | None:
            return value(await scrape(client), "arbotd_websocket_clients")

        assert await clients() == 0
        async with open_websocket_url(url), open_websocket_url(url):
            with trio.fail_after(20):
                while await clients() != 2:
                    await trio.sleep(0.05)
        with trio.fail_after(20):
            while await clients() != 0:
                await trio.sleep(0.05)


def _signal(signal_id: int) -> Signal:
    return Signal(id=signal_id, symbol="BTCUSDT", buy_exchange="sim_alpha",
                  sell_exchange="sim_beta", buy_price=65_000.0, sell_price=65_100.0,
                  buy_size=0.5, sell_size=0.5, quantity=0.01, profit=0.8,
                  profit_percent=0.12, spread_percent=0.15, fees=0.13, confidence=0.9,
                  timestamp=1_700_000_000.0 + signal_id)


async def test_failed_storage_writes_show_until_writes_succeed_again(
    serve_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = WriteFault()
    fault.install(monkeypatch)
    async with serve_api() as api, api.client() as client:
        storage = api.runtime.storage
        fault.on = True
        for signal_id in range(1, 21):
            storage.record_signal(_signal(signal_id))
        with trio.fail_after(30):
            while value(samples := await scrape(client), "arbotd_storage_healthy") != 0:
                await trio.sleep(0.05)
        assert value(samples, "arbotd_storage_write_errors_total") >= 1
        assert value(samples, "arbotd_storage_backlog") >= 20

        fault.on = False
        with trio.fail_after(30):
            while value(samples := await scrape(client), "arbotd_storage_healthy") != 1:
                await trio.sleep(0.05)
        assert value(samples, "arbotd_storage_write_errors_total") == fault.failures


AUTH = "auth_required = true\n"


async def test_with_auth_a_scrape_needs_credentials_or_the_scrape_token(
    serve_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_METRICS_TOKEN", SCRAPE_TOKEN)
    async with serve_api(AUTH) as api, api.client() as client:
        assert_error(await client.get("/metrics"), 401, "UNAUTHORIZED")
        assert_error(await client.get("/metrics", headers={
            "Authorization": f"Bearer {SCRAPE_TOKEN}x"}), 401, "UNAUTHORIZED")
        # The read scope is enough, like any read.
        await scrape(client, **{"X-API-Key": READ_KEY})
        await scrape(client, **{"X-API-Key": API_KEY})
        samples = await scrape(client, Authorization=f"Bearer {SCRAPE_TOKEN}")
        assert value(samples, "arbotd_api_requests_total", route="/metrics", method="GET",
                     status="401") == 2
        # The scrape token opens /metrics and nothing else, in no other header.
        assert_error(await client.get("/api/v1/status", headers={
            "Authorization": f"Bearer {SCRAPE_TOKEN}"}), 401, "UNAUTHORIZED")
        assert_error(await client.get("/metrics", headers={"X-API-Key": SCRAPE_TOKEN}),
                     401, "UNAUTHORIZED")


async def test_without_a_scrape_token_a_scrape_needs_the_apis_credentials(
    serve_api: Any
) -> None:
    async with serve_api(AUTH) as api, api.client() as client:
        error = assert_error(await client.get("/metrics", headers={
            "Authorization": f"Bearer {SCRAPE_TOKEN}"}), 401, "UNAUTHORIZED")
        assert error["message"] == "Invalid token"  # checked as a JWT, like elsewhere
        await scrape(client, **{"X-API-Key": READ_KEY})


async def test_reads_that_use_up_their_bucket_do_not_stop_a_scrape(serve_api: Any) -> None:
    async with serve_api("read_per_minute = 1\nread_burst = 2\n") as api, \
            api.client() as client:
        for _ in range(2):
            assert (await client.get("/api/v1/status")).status_code == 200
        assert_error(await client.get("/api/v1/status"), 429, "RATE_LIMIT_EXCEEDED")
        response = await client.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Remaining"] == "1"


async def test_openmetrics_when_the_scraper_asks_for_it(serve_api: Any) -> None:
    async with serve_api() as api, api.client() as client:
        response = await client.get("/metrics", headers={
            "Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        assert response.text.endswith("# EOF\n")
        assert "arbotd_quotes_total{" in response.text
