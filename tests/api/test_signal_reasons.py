"""A signal that was not executed says why, in ``GET /signals`` and in the WebSocket's
``signal`` messages: the reason the risk checks or the control gave
(``reject_reason``), ``None`` for an executed one."""

from __future__ import annotations

import orjson
import pytest
import trio
from apitools import server_factory
from trio_websocket import open_websocket_url

from arbotd import Signal


@pytest.fixture
def serve_api(tmp_path, monkeypatch):
    return server_factory(tmp_path, monkeypatch)


def _signal(number: int, *, executed: bool = False, reason: str | None = None) -> Signal:
    return Signal(id=number, symbol="BTCUSDT", buy_exchange="sim_alpha",
                  sell_exchange="sim_beta", buy_price=100.0, sell_price=101.0, buy_size=1.0,
                  sell_size=1.0, quantity=0.1, profit=0.05, profit_percent=0.5,
                  spread_percent=1.0, fees=0.05, confidence=0.9, timestamp=1_700_000_000.0,
                  executed=executed, reject_reason=reason)


async def test_the_websocket_and_the_history_say_why_a_signal_was_not_executed(serve_api):
    async with serve_api() as api:
        url = api.url.replace("http://", "ws://") + "/api/v1/ws"
        runtime = api.runtime
        async with open_websocket_url(url) as ws:
            await ws.send_message('{"type": "subscribe", "channel": "signals"}')
            while orjson.loads(await ws.get_message())["type"] != "subscribed":
                pass
            for signal in (_signal(10**9 + 1, reason="max_concurrent_trades"),
                           _signal(10**9 + 2, executed=True)):
                runtime.bus.publish("signal", signal)
                runtime.storage.record_signal(signal)
            received = {}
            with trio.fail_after(10):
                while len(received) < 2:
                    message = orjson.loads(await ws.get_message())
                    if message["type"] == "signal":
                        received[message["data"]["id"]] = message["data"]
        assert received[10**9 + 1]["reject_reason"] == "max_concurrent_trades"
        assert received[10**9 + 1]["executed"] is False
        assert received[10**9 + 2]["reject_reason"] is None

        async with api.client() as client:
            with trio.fail_after(10):
                while True:
                    listed = (await client.get("/api/v1/signals")).json()["signals"]
                    by_id = {s["id"]: s for s in listed}
                    if 10**9 + 2 in by_id:
                        break
                    await trio.sleep(0.05)
        assert by_id[10**9 + 1]["reject_reason"] == "max_concurrent_trades"
        assert by_id[10**9 + 2]["reject_reason"] is None
