"""The audit trail on a running daemon: each state-changing call leaves exactly its entry,
readable through ``GET /api/v1/audit`` (the daemon's sql storage on SQLite)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
from typing import Any

import orjson
import pytest
import trio
from apitools import API_KEY, READ_KEY, assert_error, is_iso, server_factory

from arbotd import hash_password
from arbotd_api.plugin import service_for
from arbotd_sql import SqlStorage, StorageConfig

AUTH = "auth_required = true\n"
TRADING = {"X-API-Key": API_KEY}
READ = {"X-API-Key": READ_KEY}
TRADER = f"key:{hashlib.sha256(API_KEY.encode()).hexdigest()[:16]}"
READER = f"key:{hashlib.sha256(READ_KEY.encode()).hexdigest()[:16]}"
NEEDS_TRADING = "This endpoint needs the trading scope"


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


async def read_audit(api, client, **params: Any) -> dict[str, Any]:
    """``GET /audit`` once everything recorded so far is written."""
    assert await api.runtime.storage.flush(10)
    response = await client.get("/api/v1/audit", params=params, headers=TRADING)
    assert response.status_code == 200, response.text
    return response.json()


def shown(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without what differs from run to run (its id and times)."""
    assert set(entry) == {"id", "timestamp", "recorded_at", "actor", "method", "source",
                          "action", "outcome", "status", "details"}
    assert is_iso(entry["recorded_at"])
    return {k: v for k, v in entry.items() if k not in ("id", "timestamp", "recorded_at")}


def entry(actor: str, action: str, outcome: str, status: int | None, details: dict,
          *, method: str = "api_key", source: str = "127.0.0.1") -> dict[str, Any]:
    return {"actor": actor, "method": method, "source": source, "action": action,
            "outcome": outcome, "status": status, "details": details}


def refused(action: str) -> dict[str, Any]:
    """The entry of a write refused to the read-scope key."""
    return entry(READER, action, "FORBIDDEN", 403, {"error": NEEDS_TRADING})


async def wait_for_entry(api, client, **params: Any) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            entries = (await read_audit(api, client, **params))["entries"]
            if entries:
                return entries[0]
            await trio.sleep(0.05)


async def test_each_write_route_leaves_its_entry_done_and_refused(serve_api):
    recording = "\n[storage]\nrecord_quotes = true\nflush_interval_seconds = 0.1\n"
    async with serve_api(AUTH + recording) as api, api.client() as client:
        began = api.runtime.clock()
        expected = []

        async def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
            """The call by the trading key (answered 2xx), then by the read-only key."""
            response = await client.request(method, path, json=body, headers=TRADING)
            assert response.status_code == 200, response.text
            assert_error(await client.request(method, path, json=body, headers=READ),
                         403, "FORBIDDEN")
            return response.json()

        action = "POST /api/v1/trading/start"
        started = await call("POST", "/api/v1/trading/start",
                             {"mode": "simulation", "symbols": ["BTCUSDT"]})
        expected += [entry(TRADER, action, "success", 200, {
            "mode": "simulation", "symbols": ["BTCUSDT"], "symbols_count": 1,
            "exchanges_count": started["exchanges_count"]}), refused(action)]

        action = "PUT /api/v1/trading/config"
        await call("PUT", "/api/v1/trading/config",
                   {"arbitrage": {"min_profit_threshold": 0.003}})
        expected += [entry(TRADER, action, "success", 200, {
            "requested": {"arbitrage.min_profit_threshold": 0.003},
            "changes": {"arbitrage.min_profit_threshold": {"old": 0.002, "new": 0.003}}}),
            refused(action)]

        action = "POST /api/v1/batch/trades"
        operations = [{"type": "cancel_trade", "trade_id": 987654}]
        batch = await call("POST", "/api/v1/batch/trades", {"operations": operations})
        expected += [entry(TRADER, action, "success", 200, {
            "operations": operations, "results": batch["results"]}), refused(action)]

        action = "POST /api/v1/risk/emergency-stop"
        stop = await call("POST", "/api/v1/risk/emergency-stop")
        expected += [entry(TRADER, action, "success", 200, {
            "trades_cancelled": stop["trades_cancelled"],
            "positions_closed": stop["positions_closed"]}), refused(action)]

        action = "POST /api/v1/trading/stop"
        stopped = await call("POST", "/api/v1/trading/stop")
        expected += [entry(TRADER, action, "success", 200, {
            "trades_completed": stopped["trades_completed"],
            "pending_trades": stopped["pending_trades"]}), refused(action)]

        # A backtest's start, over the quotes recorded since the daemon started.
        action = "POST /api/v1/trading/start"
        assert await api.runtime.storage.flush(10)
        window = {"mode": "backtest", "start_time": began - 60,
                  "end_time": api.runtime.clock() + 60}
        backtest = await call("POST", "/api/v1/trading/start", window)
        expected += [entry(TRADER, action, "success", 200, {
            **window, "symbols_count": backtest["symbols_count"],
            "exchanges_count": backtest["exchanges_count"],
            "backtest_id": backtest["backtest_id"]}), refused(action)]

        answer = await read_audit(api, client)
        assert [shown(e) for e in reversed(answer["entries"])] == expected
        assert answer["total_count"] == len(expected)
        times = [e["timestamp"] for e in reversed(answer["entries"])]
        assert times == sorted(times) and began <= times[0] and times[-1] <= api.runtime.clock()


async def test_a_config_edit_records_the_old_and_new_values(serve_api):
    async with serve_api() as api, api.client() as client:
        edit = {"arbitrage": {"min_profit_threshold": 0.004, "use_trend_filter":
                              api.runtime.config["arbitrage"].use_trend_filter},
                "risk_management": {"max_concurrent_trades": 7}}
        old_concurrent = api.runtime.config["risk_management"].max_concurrent_trades
        response = await client.put("/api/v1/trading/config", json=edit)
        assert response.status_code == 200, response.text
        invalid = {"arbitrage": {"min_profit_threshold": -1}}
        error = assert_error(await client.put("/api/v1/trading/config", json=invalid),
                             400, "VALIDATION_ERROR")

        done, refused_edit = reversed((await read_audit(api, client))["entries"])
        action = "PUT /api/v1/trading/config"
        assert shown(done) == entry("anonymous", action, "success", 200, {
            "requested": {"arbitrage.min_profit_threshold": 0.004,
                          "arbitrage.use_trend_filter": edit["arbitrage"]["use_trend_filter"],
                          "risk_management.max_concurrent_trades": 7},
            "changes": {
                "arbitrage.min_profit_threshold": {"old": 0.002, "new": 0.004},
                "risk_management.max_concurrent_trades": {"old": old_concurrent, "new": 7},
            }}, method="anonymous")
        assert shown(refused_edit) == entry("anonymous", action, "VALIDATION_ERROR", 400, {
            "requested": {"arbitrage.min_profit_threshold": -1}, "changes": {},
            "error": error["message"]}, method="anonymous")


async def test_logins_record_the_name_tried_and_never_the_password(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        password = "a password never to be seen again"
        await api.runtime.storage.add_user("alice", hash_password(password), "trading")
        response = await client.post("/api/v1/auth/login",
                                     json={"username": "alice", "password": password})
        assert response.status_code == 200
        token = response.json()["access_token"]
        for tried in ("alice", "mallory"):
            assert_error(await client.post("/api/v1/auth/login", json={
                "username": tried, "password": password + " (wrong)"}), 401, "UNAUTHORIZED")
        # And a call made with the token names the user.
        response = await client.post("/api/v1/trading/stop",
                                     headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200

        assert await api.runtime.storage.flush(10)
        response = await client.get("/api/v1/audit", headers=TRADING)
        assert password not in response.text and token not in response.text
        login = "POST /api/v1/auth/login"
        wrong = "Invalid username or password"
        assert [shown(e) for e in reversed(response.json()["entries"])] == [
            entry("alice", login, "success", 200, {"username": "alice"}, method="password"),
            entry("alice", login, "UNAUTHORIZED", 401, {"username": "alice", "error": wrong},
                  method="password"),
            entry("mallory", login, "UNAUTHORIZED", 401,
                  {"username": "mallory", "error": wrong}, method="password"),
            entry("alice", "POST /api/v1/trading/stop", "success", 200,
                  {"trades_completed": 0, "pending_trades": 0}, method="jwt"),
        ]


async def test_refusals_of_missing_or_wrong_credentials(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        assert_error(await client.post("/api/v1/risk/emergency-stop"), 401, "UNAUTHORIZED")
        assert_error(await client.post("/api/v1/risk/emergency-stop",
                                       headers={"X-API-Key": API_KEY + "x"}),
                     401, "UNAUTHORIZED")
        assert_error(await client.post("/api/v1/risk/emergency-stop",
                                       headers={"Authorization": "Bearer a.b.c"}),
                     401, "UNAUTHORIZED")
        response = await client.get("/api/v1/audit", headers=TRADING)
        assert API_KEY not in response.text
        action = "POST /api/v1/risk/emergency-stop"
        assert [shown(e) for e in reversed((await read_audit(api, client))["entries"])] == [
            entry("unauthenticated", action, "UNAUTHORIZED", 401,
                  {"error": "Invalid or missing authentication"}, method="none"),
            entry("unauthenticated", action, "UNAUTHORIZED", 401,
                  {"error": "Invalid API key"}, method="api_key"),
            entry("unauthenticated", action, "UNAUTHORIZED", 401,
                  {"error": "Invalid token"}, method="jwt"),
        ]
        assert not api.runtime.control.emergency


async def test_reads_are_not_audited(serve_api):
    async with serve_api() as api, api.client() as client:
        for method, path, body in (
                ("GET", "/api/v1/status", None), ("GET", "/api/v1/trading/config", None),
                ("POST", "/api/v1/analytics/query", {"query_type": "symbol_performance"}),
                ("GET", "/api/v1/nowhere", None), ("DELETE", "/api/v1/trading/start", None)):
            await client.request(method, path, json=body)
        assert (await read_audit(api, client))["total_count"] == 0


async def test_the_audit_needs_the_trading_scope(serve_api):
    async with serve_api(AUTH) as api, api.client() as client:
        assert_error(await client.get("/api/v1/audit", headers=READ), 403, "FORBIDDEN")
        assert_error(await client.get("/api/v1/audit"), 401, "UNAUTHORIZED")
        assert (await client.get("/api/v1/audit", headers=TRADING)).status_code == 200


async def test_without_a_storage_that_keeps_it(serve_api):
    async with serve_api('\n[plugins]\ndisable = ["sql"]\n') as api, api.client() as client:
        assert_error(await client.get("/api/v1/audit"), 503, "STORAGE_NOT_AVAILABLE")
        # The calls themselves still work (their entries go to the log only).
        assert (await client.post("/api/v1/trading/stop")).status_code == 200


def _record(storage, timestamp: float, actor: str, action: str, outcome: str) -> None:
    storage.record_audit(actor=actor, method="api_key", source="10.0.0.1", action=action,
                         outcome=outcome, status=200 if outcome == "success" else 403,
                         details={"n": timestamp}, timestamp=timestamp)


async def test_paging_and_filters(serve_api):
    async with serve_api() as api, api.client() as client:
        t0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z
        storage = api.runtime.storage
        for minute in range(10):
            _record(storage, t0 + 60 * minute, "alice" if minute % 2 else "bob",
                    "POST /api/v1/trading/stop" if minute < 5 else "POST /api/v1/trading/start",
                    "success" if minute % 3 else "FORBIDDEN")

        async def times(**params: Any) -> list[float]:
            return [e["timestamp"] - t0 for e in (await read_audit(api, client,
                                                                   **params))["entries"]]

        page = await read_audit(api, client, limit=3, offset=2)
        assert [e["timestamp"] - t0 for e in page["entries"]] == [420, 360, 300]
        assert page["total_count"] == 10
        assert page["pagination"] == {"limit": 3, "offset": 2, "has_more": True}
        last = await read_audit(api, client, limit=3, offset=9)
        assert last["pagination"]["has_more"] is False and len(last["entries"]) == 1
        assert await times(start_time=t0 + 120, end_time=t0 + 240) == [240, 180, 120]
        assert await times(start_time="2024-01-01T00:07:00Z") == [540, 480, 420]
        assert await times(end_time="2024-01-01T01:01:00+01:00") == [60, 0]
        assert await times(actor="alice", action="POST /api/v1/trading/stop") == [180, 60]
        assert await times(outcome="FORBIDDEN") == [540, 360, 180, 0]
        assert await times(actor="nobody") == []
        assert (await read_audit(api, client, actor=""))["total_count"] == 10

        for params, field in (({"start_time": "yesterday"}, "start_time"),
                              ({"end_time": "-5"}, "end_time"),
                              ({"end_time": "2024-13-01T00:00:00Z"}, "end_time"),
                              ({"start_time": "2024-01-01T00:00:00"}, "start_time"),
                              ({"start_time": 2, "end_time": 1}, "start_time"),
                              ({"limit": 0}, "limit"), ({"offset": -1}, "offset")):
            response = await client.get("/api/v1/audit", params=params)
            assert assert_error(response, 400, "VALIDATION_ERROR")["details"]["field"] == field


async def test_a_flood_of_refusals_is_recorded_bounded_with_a_count(serve_api):
    async with serve_api(AUTH + 'trusted_proxies = ["127.0.0.1"]\n') as api, \
            api.client() as client:
        trail = service_for(api.runtime).state.audit
        now = [1_800_000_000.0]  # a minute's start: the flood stays in one minute
        trail.clock = lambda: now[0]
        for number in range(30):
            source = "203.0.113.1" if number % 2 else "203.0.113.2"
            response = await client.post("/api/v1/trading/stop", headers={
                "X-API-Key": "wrong", "X-Forwarded-For": source})
            assert response.status_code in (401, 429)
        recorded = (await read_audit(api, client))["entries"]
        assert len(recorded) == 20  # ten of each source
        assert {e["source"] for e in recorded} == {"203.0.113.1", "203.0.113.2"}

        # The minute is over: the next entry brings the count of the others with it.
        now[0] += 60
        assert (await client.post("/api/v1/trading/stop", headers=TRADING)).status_code == 200
        summary, = (await read_audit(api, client,
                                     action="refused requests (summary)"))["entries"]
        details = summary["details"]
        assert shown(summary)["actor"] == "unauthenticated"
        assert (summary["source"], summary["outcome"], summary["status"]) == \
            ("various", "suppressed", None)
        assert details["count"] == 10
        assert details["by_source"] == {"203.0.113.1": 5, "203.0.113.2": 5}
        assert details["by_action"] == {"POST /api/v1/trading/stop": 10}
        assert set(details["by_outcome"]) <= {"UNAUTHORIZED", "RATE_LIMIT_EXCEEDED"}
        assert sum(details["by_outcome"].values()) == 10
        assert (await read_audit(api, client))["total_count"] == 22


async def test_refusals_held_back_are_counted_at_shutdown(serve_api, tmp_path):
    async with serve_api(AUTH) as api, api.client() as client:
        service_for(api.runtime).state.audit.clock = lambda: 1_800_000_000.0
        for _ in range(15):
            await client.post("/api/v1/trading/start", headers={"X-API-Key": "wrong"})
    # The daemon has stopped: what it wrote is in its database.
    settings = StorageConfig(url="")
    storage = SqlStorage(settings, state_dir=tmp_path / "state")
    await storage.open()
    try:
        entries = (await storage.audit_entries())["entries"]
    finally:
        await storage.close()
    assert len(entries) == 11
    assert entries[0]["action"] == "refused requests (summary)"
    assert entries[0]["details"]["count"] == 5


async def test_the_source_behind_a_trusted_proxy(serve_api):
    async with serve_api('trusted_proxies = ["127.0.0.0/8", "10.1.0.0/16"]\n') as api, \
            api.client() as client:
        for forwarded in ("198.51.100.7", "198.51.100.9, 203.0.113.5, 10.1.2.3",
                          "not-an-address, 10.1.2.3", ""):
            headers = {"X-Forwarded-For": forwarded} if forwarded else {}
            assert (await client.post("/api/v1/trading/stop",
                                      headers=headers)).status_code == 200
        sources = [e["source"] for e in (await read_audit(api, client))["entries"]]
        assert sources == ["127.0.0.1", "10.1.2.3", "203.0.113.5", "198.51.100.7"]


async def test_forwarded_for_is_ignored_without_trusted_proxies(serve_api):
    async with serve_api() as api, api.client() as client:
        await client.post("/api/v1/trading/stop", headers={"X-Forwarded-For": "198.51.100.7"})
        assert (await read_audit(api, client))["entries"][0]["source"] == "127.0.0.1"


def _send_and_leave(url: str, request: bytes) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request)


async def test_a_call_cut_off_before_its_answer_is_recorded(serve_api):
    async with serve_api() as api, api.client() as client:
        # Headers in, the body only begun, then the client leaves: the handler waiting
        # for the body is cancelled.
        request = (b"PUT /api/v1/trading/config HTTP/1.1\r\nHost: arbotd\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                   b'{"arbitrage": ')
        await trio.to_thread.run_sync(_send_and_leave, api.url, request)
        found = await wait_for_entry(api, client, outcome="ABORTED")
        assert shown(found) == entry("anonymous", "PUT /api/v1/trading/config", "ABORTED",
                                     None, {"error": "the call ended before it was answered "
                                            "(the client went away); it may have changed "
                                            "something"}, method="anonymous")


async def test_a_reload_by_sighup_is_recorded(serve_api):
    async with serve_api() as api, api.client() as client:
        os.kill(os.getpid(), signal.SIGHUP)
        applied = await wait_for_entry(api, client, action="SIGHUP reload")
        assert shown(applied) == entry("signal", "SIGHUP reload", "applied", None,
                                       {"changed": []}, method="signal", source="local")

        text = api.config_path.read_text()
        api.config_path.write_text(text.replace("min_profit_threshold = 0.002",
                                                'min_profit_threshold = "high"'))
        os.kill(os.getpid(), signal.SIGHUP)
        found = await wait_for_entry(api, client, outcome="refused")
        assert (found["actor"], found["method"]) == ("signal", "signal")
        problem, = found["details"]["problems"]
        assert problem["field"] == "arbitrage.min_profit_threshold"
        assert "min_profit_threshold" in found["details"]["reason"]


async def test_details_are_bounded_and_json(serve_api):
    async with serve_api() as api, api.client() as client:
        long = "x" * 5000
        operations = [{"type": "cancel_trade", "trade_id": n + 1} for n in range(100)]
        await client.post("/api/v1/batch/trades", json={"operations": operations})
        await client.put("/api/v1/trading/config", json={"arbitrage": {long: long}})
        config_edit, batch = (await read_audit(api, client))["entries"]
        assert len(batch["details"]["operations"]) == 100
        assert len(orjson.dumps(config_edit["details"])) < 2000
