"""GET /api/v1/inventory and POST /api/v1/inventory/transfers, from a running daemon: the
paper balances move, the transfer is kept across a restart, bad requests name what was
wrong, and the read scope cannot record transfers."""

from __future__ import annotations

import pytest
import trio
from apitools import API_KEY, READ_KEY, assert_error, server_factory

from arbotd.client import ArbotClient

AUTH = "auth_required = true\n"


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


async def _funded(client) -> dict:
    await client.post("/api/v1/trading/start", json={"mode": "simulation"})
    with trio.fail_after(20):
        while True:
            body = (await client.get("/api/v1/inventory")).json()
            if body["assets"] and all(a["total"] for a in body["assets"]):
                return body
            await trio.sleep(0.05)


async def test_inventory_and_a_recorded_transfer(serve_api):
    headers = {"X-API-Key": API_KEY}
    async with serve_api(AUTH + "[inventory]\nnetwork_fees = { BTC = 0.001 }\n",
                         arbitrage="inventory_skew = 0.5") as api, \
            api.client(headers=headers) as client:
        await client.post("/api/v1/trading/stop")
        body = await _funded(client)
        await client.post("/api/v1/trading/stop")
        assert body["inventory_skew"] == 0.5 and body["warn_drift"] == 0.25
        btc = next(a for a in body["assets"] if a["asset"] == "BTC")
        venues = [v["exchange"] for v in btc["exchanges"]]
        assert venues == ["sim_alpha", "sim_beta", "sim_gamma"]
        before = {v["exchange"]: v["amount"] for v in btc["exchanges"]}

        response = await client.post("/api/v1/inventory/transfers", json={
            "asset": "BTC", "from": "sim_alpha", "to": "sim_beta", "amount": 0.01})
        assert response.status_code == 201, response.text
        recorded = response.json()
        assert recorded["paper_balances_moved"] is True
        assert recorded["transfer"]["network_fee"] == "0.001"   # from [inventory]
        assert recorded["transfer"]["actor"].startswith("key:")  # as the audit trail says

        after = (await client.get("/api/v1/inventory")).json()
        btc = {v["exchange"]: v for v in
               next(a for a in after["assets"] if a["asset"] == "BTC")["exchanges"]}
        assert btc["sim_alpha"]["amount"] == pytest.approx(before["sim_alpha"] - 0.01)
        assert btc["sim_beta"]["amount"] == pytest.approx(before["sim_beta"] + 0.009)
        assert btc["sim_alpha"]["drift"] < 0 < btc["sim_beta"]["drift"]
        # The plan moves it back: from sim_beta, to sim_alpha and sim_gamma.
        plan = [m for m in after["plan"] if m["asset"] == "BTC"]
        assert max(plan, key=lambda m: m["amount"])["from"] == "sim_beta"
        assert after["transfers"][0]["from"] == "sim_alpha"
        balances = (await client.get("/api/v1/balances")).json()["balances"]
        assert balances["sim_beta"]["BTC"]["total"] == pytest.approx(before["sim_beta"] + 0.009)

    # A restart keeps the transfer and the paper balances it moved.
    async with serve_api(AUTH) as api, api.client(headers=headers) as client:
        again = (await client.get("/api/v1/inventory")).json()
        assert again["transfers"] == after["transfers"]
        btc = {v["exchange"]: v for v in
               next(a for a in again["assets"] if a["asset"] == "BTC")["exchanges"]}
        assert btc["sim_beta"]["amount"] == pytest.approx(before["sim_beta"] + 0.009)


async def test_bad_transfers_name_what_was_wrong(serve_api):
    async with serve_api(AUTH) as api, api.client(headers={"X-API-Key": API_KEY}) as client:
        await _funded(client)
        url = "/api/v1/inventory/transfers"
        good = {"asset": "BTC", "from": "sim_alpha", "to": "sim_beta", "amount": 0.01}
        cases = [
            ({**good, "asset": "DOGE"}, 400, "VALIDATION_ERROR", "asset"),
            ({**good, "from": "nowhere"}, 503, "EXCHANGE_NOT_AVAILABLE", "from"),
            ({**good, "to": "sim_alpha"}, 400, "VALIDATION_ERROR", "to"),
            ({**good, "amount": -1}, 400, "VALIDATION_ERROR", "amount"),
            ({**good, "amount": "lots"}, 400, "VALIDATION_ERROR", "amount"),
            ({**good, "amount": True}, 400, "VALIDATION_ERROR", "amount"),
            ({**good, "network_fee": 0.5}, 400, "VALIDATION_ERROR", "network_fee"),
            ({k: v for k, v in good.items() if k != "amount"}, 400, "VALIDATION_ERROR",
             "amount"),
        ]
        for body, status, code, field in cases:
            error = assert_error(await client.post(url, json=body), status, code)
            assert error["details"]["field"] == field, body
        error = assert_error(await client.post(url, json={**good, "amount": 1e9}), 400,
                             "INSUFFICIENT_BALANCE")
        assert "sim_alpha holds" in error["message"]
        assert (await client.get("/api/v1/inventory")).json()["transfers"] == []

    async with serve_api(AUTH) as api, api.client(headers={"X-API-Key": READ_KEY}) as client:
        assert (await client.get("/api/v1/inventory")).status_code == 200
        assert_error(await client.post(url, json=good), 403, "FORBIDDEN")


@pytest.mark.usefixtures("isolated_logging")
async def test_the_cli_prints_the_inventory(serve_api, capsys, monkeypatch):
    from arbotd._cli import main

    async with serve_api(AUTH) as api, api.client(headers={"X-API-Key": API_KEY}) as client:
        await _funded(client)
        monkeypatch.setenv("ARBOTD_API_KEY", API_KEY)
        code = await trio.to_thread.run_sync(
            main, ["inventory", "--url", api.url, "--config", str(api.config_path)])
        assert code == 0
        out = capsys.readouterr().out
        assert "BTC  total" in out and "sim_alpha" in out
        assert "Profit turned down for lack of balance" in out
        with ArbotClient(api.url, api_key=API_KEY) as sdk:
            report = await trio.to_thread.run_sync(sdk.get_inventory)
        assert {a["asset"] for a in report["assets"]} >= {"BTC", "USDT"}
        monkeypatch.delenv("ARBOTD_API_KEY")
        code = await trio.to_thread.run_sync(
            main, ["inventory", "--url", api.url, "--config", str(api.config_path)])
        assert code == 1
        assert f"arbotd inventory: {api.url}:" in capsys.readouterr().err
