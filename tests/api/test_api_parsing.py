"""Values that are well-formed but out of every range the code beneath can take (integers
of thousands of digits, times past the year 9999, JSON nested hundreds deep) answer 400
``VALIDATION_ERROR`` naming the field, never 500."""

from __future__ import annotations

import pytest
from apitools import API_KEY, assert_error, server_factory

HUGE = "9" * 5000  # Python's int() refuses strings of more than 4,300 digits

LIMITS = """
read_burst = 1000
write_burst = 1000
"""


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


def assert_invalid(response, field: str) -> None:
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"]["field"] == field, error
    assert len(response.text) < 2000  # a huge value is not echoed back whole


async def test_huge_integers(serve_api):
    async with serve_api(LIMITS) as api, api.client() as client:
        for path, field in [
            (f"/api/v1/trades/{HUGE}", "trade_id"),
            (f"/api/v1/trades?limit={HUGE}", "limit"),
            (f"/api/v1/trades?offset={HUGE}", "offset"),
            (f"/api/v1/signals?limit={HUGE}", "limit"),
            (f"/api/v1/signals?offset={HUGE}", "offset"),
            (f"/api/v1/backtests/{HUGE}", "backtest_id"),
            ("/api/v1/trades/0", "trade_id"),
            ("/api/v1/trades/9223372036854775808", "trade_id"),  # 2**63
            ("/api/v1/trades?limit=1.5", "limit"),
            ("/api/v1/trades?offset=-1", "offset"),
        ]:
            assert_invalid(await client.get(path), field)
        # Leading zeros are still the number they spell.
        page = (await client.get(f"/api/v1/trades?limit={'0' * 5000}5")).json()
        assert page["pagination"]["limit"] == 5


async def test_times_out_of_range(serve_api):
    history = "/api/v1/prices/history?symbol=BTCUSDT"
    async with serve_api(LIMITS) as api, api.client() as client:
        for path, field in [
            (f"{history}&start_time=1e20&end_time=1e20", "start_time"),
            (f"{history}&start_time=0&end_time=1e20", "end_time"),
            (f"{history}&start_time=0&end_time=1e300", "end_time"),
            (f"{history}&start_time=1e300&end_time=1e301", "start_time"),
            (f"{history}&start_time=0&end_time=inf", "end_time"),
            (f"{history}&start_time=nan&end_time=10", "start_time"),
            (f"{history}&start_time=-1&end_time=10", "start_time"),
            (f"{history}&start_time=0&end_time={HUGE}", "end_time"),
            ("/api/v1/signals?start_time=1e20", "start_time"),
            ("/api/v1/signals?end_time=253402300800", "end_time"),  # 10000-01-01
            ("/api/v1/trades?start_date=10000-01-01", "start_date"),
            ("/api/v1/trades?end_date=2024-02-30", "end_date"),
            ("/api/v1/performance?start_date=0000-01-01", "start_date"),
        ]:
            assert_invalid(await client.get(path), field)
        # The ends of the range are fine.
        assert (await client.get(f"{history}&start_time=253402300799"
                                 "&end_time=253402300799")).status_code == 200
        assert (await client.get("/api/v1/performance?start_date=0001-01-01"
                                 "&end_date=9999-12-31")).status_code == 200
        body = {"query_type": "symbol_performance",
                "parameters": {"start_date": "0001-01-01", "end_date": "9999-12-31"}}
        assert (await client.post("/api/v1/analytics/query", json=body)).status_code == 200


def nested(depth: int) -> bytes:
    """``{"arbitrage": {"a": {"a": ... 1}}}``, ``depth`` objects deep in all."""
    inner = depth - 1
    return b'{"arbitrage": ' + b'{"a": ' * inner + b"1" + b"}" * inner + b"}"


@pytest.mark.parametrize("depth", [33, 500, 1023])
async def test_deeply_nested_json(serve_api, depth):
    async with serve_api(LIMITS) as api, \
            api.client(headers={"X-API-Key": API_KEY}) as client:
        response = await client.put("/api/v1/trading/config", content=nested(depth))
        assert_invalid(response, "arbitrage")
        assert response.json()["error"]["details"]["max_depth"] == 32
        lists = b'{"operations": ' + b"[" * depth + b"]" * depth + b"}"
        assert_invalid(await client.post("/api/v1/batch/trades", content=lists),
                       "operations")
        query = (b'{"query_type": "symbol_performance", "parameters": '
                 + b'{"symbols": ' * depth + b"1" + b"}" * depth + b"}")
        assert_invalid(await client.post("/api/v1/analytics/query", content=query),
                       "parameters")
        # 32 levels is still JSON the API reads (this one names an unknown key).
        error = assert_error(await client.put("/api/v1/trading/config", content=nested(32)),
                             400, "VALIDATION_ERROR")
        assert error["details"]["field"] == "arbitrage.a"
