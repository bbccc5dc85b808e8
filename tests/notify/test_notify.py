"""The notifier in a real daemon, against a fake webhook receiver (which checks the
signature) and a fake Telegram Bot API on loopback: what is sent for trades, emergency
stops, venues and risk limits, retries and the rate limit, and that a dead or stalled
destination neither grows memory nor holds up trading."""

from __future__ import annotations

import itertools
import sys
from decimal import Decimal
from types import ModuleType
from typing import Any

import attrs
import pytest
import trio
from notifytools import (
    BOT_TOKEN,
    CHAT_ID,
    FakeTelegram,
    FakeWebhook,
    daemon_factory,
    open_endpoint,
    telegram_table,
    webhook_table,
)
from support import free_port

from arbotd import ConfigError, LimitUse, Trade, TradeState, hookimpl
from arbotd.figures import money, trade_figures


@pytest.fixture
def run_daemon(tmp_path, monkeypatch):
    return daemon_factory(tmp_path, monkeypatch)


async def test_the_webhook_gets_each_finished_trade_signed(run_daemon: Any) -> None:
    webhook = FakeWebhook()
    async with open_endpoint(webhook) as url, run_daemon(
            webhook_table(url), autostart=True, dislocations=3600.0) as running:
        def told() -> list[dict[str, Any]]:
            return [body for body in webhook.events() if body["event"].startswith("trade_")]

        await webhook.wait_for(lambda: len(told()) >= 3, timeout=60)
        trades = running.runtime.control.recent_trades
        for body in told():
            assert body["source"] == "test-daemon"
            assert body["event"] in ("trade_completed", "trade_failed", "trade_unwound")
            trade = trades[body["data"]["trade_id"]]
            assert body["event"] == f"trade_{trade.state}"
            figures = trade_figures(trade)
            assert body["data"]["net"] == money(figures.net)
            assert body["data"]["fees"] == money(figures.fees)
            assert body["data"]["symbol"] == trade.symbol
            assert body["text"].startswith(f"trade {trade.id} {trade.symbol} {trade.state}")
        for received in webhook.accepted:
            request = received.request
            assert request.method == "POST" and request.path == "/hook"
            assert request.headers["content-type"] == "application/json"
            assert request.headers["x-arbotd-event"] == received.json["event"]
        # No trade is told twice, whatever the trade's later reports.
        ids = [body["data"]["trade_id"] for body in told()]
        assert len(ids) == len(set(ids))


async def test_a_trade_unwound_without_a_loss_and_a_cancelled_one_are_not_told(
    run_daemon: Any
) -> None:
    webhook = FakeWebhook()
    async with open_endpoint(webhook) as url, run_daemon(webhook_table(url)) as running:
        control = running.runtime.control
        states = (TradeState.CANCELLED, TradeState.UNWOUND, TradeState.FAILED)
        for trade, state in zip(_trades(3), states, strict=True):
            control.report(attrs.evolve(trade, state=state))  # unwound: no fill, no loss
        await webhook.wait_for(lambda: len(webhook.events()) >= 1)
        await running.runtime.control.emergency_stop()  # a marker: everything before is in
        await webhook.wait_for(lambda: webhook.events("emergency_stop"))
        assert [body["event"] for body in webhook.events()] == ["trade_failed",
                                                                  "emergency_stop"]


def _trades(count: int) -> list[Trade]:
    return [Trade(id=900_000 + index, signal_id=1, mode="simulation", symbol="BTCUSDT",
                  buy_exchange="sim_alpha", sell_exchange="sim_beta",
                  quantity=Decimal("0.01"), planned_buy_price=Decimal("65000"),
                  planned_sell_price=Decimal("65100"), planned_profit=Decimal("0.8"),
                  started_at=1_750_000_000.0) for index in range(count)]


async def test_telegram_gets_the_emergency_stop_from_the_bot(run_daemon: Any) -> None:
    telegram = FakeTelegram()
    async with open_endpoint(telegram) as url, run_daemon(telegram_table(url)) as running:
        await running.runtime.control.emergency_stop()
        await telegram.wait_for(lambda: telegram.accepted)
    request = telegram.accepted[0].request
    assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
    message = telegram.accepted[0].json
    assert message["chat_id"] == CHAT_ID
    assert message["text"].startswith("test-daemon: EMERGENCY STOP")


async def test_a_failing_destination_is_tried_again_until_it_takes_the_notification(
    run_daemon: Any
) -> None:
    webhook, telegram = FakeWebhook(), FakeTelegram()
    webhook.statuses = [503, 500, 502]
    telegram.statuses = [429]
    async with open_endpoint(webhook) as hook_url, open_endpoint(telegram) as bot_url, \
            run_daemon(webhook_table(hook_url) + telegram_table(bot_url)) as running:
        await running.runtime.control.emergency_stop()
        await webhook.wait_for(lambda: webhook.events("emergency_stop"))
        await telegram.wait_for(lambda: telegram.texts())
    assert [r.status for r in webhook.answered] == [503, 500, 502, 200]
    arrived = [r.request.arrived for r in webhook.answered]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrived)]
    # Exponential back-off from 0.05 s, capped at 0.2 s, each within -25 % of jitter
    # (lower bounds only: a wait never ends early).
    for gap, nominal in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert gap >= nominal * 0.75, gaps
    # Telegram's 429 says to wait retry_after (1 s), longer than the back-off.
    assert [r.status for r in telegram.answered] == [429, 200]
    assert telegram.answered[1].request.arrived - telegram.answered[0].request.arrived >= 1


async def test_a_refusal_is_not_tried_again(run_daemon: Any) -> None:
    webhook = FakeWebhook()
    webhook.statuses = [400]
    async with open_endpoint(webhook) as url, run_daemon(webhook_table(url)) as running:
        control = running.runtime.control
        await control.emergency_stop()
        await webhook.wait_for(lambda: len(webhook.answered) == 1)
        await control.emergency_stop()
        outbox = running.service.outboxes["webhook"]
        with trio.fail_after(30):
            while outbox.counts.sent < 1:
                await trio.sleep(0.01)
        assert outbox.counts.failed == 1
    assert [r.status for r in webhook.answered] == [400, 200]


async def test_the_rate_limit_caps_each_kind(run_daemon: Any) -> None:
    webhook = FakeWebhook()
    async with open_endpoint(webhook) as url, run_daemon(
            "rate_limit_count = 2\nrate_limit_seconds = 3600\n" + webhook_table(url)
    ) as running:
        for _ in range(5):
            await running.runtime.control.emergency_stop()
        service = running.service
        with trio.fail_after(30):  # until the notifier has read the five from the bus
            while service.limit.suppressed["emergency_stop"] < 3 or \
                    not all(outbox.idle for outbox in service.outboxes.values()):
                await trio.sleep(0.01)
        assert service.limit.suppressed["emergency_stop"] == 3
    assert len(webhook.events()) == 2


async def test_a_dead_destination_keeps_at_most_max_queue_notifications(run_daemon: Any
                                                                        ) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with run_daemon("max_queue = 5\nmax_attempts = 100\nrate_limit_count = 1000\n"
                          + webhook_table(dead)) as running:
        outbox = running.service.outboxes["webhook"]
        for _ in range(50):
            await running.runtime.control.emergency_stop()
            assert len(outbox) <= 5
        with trio.fail_after(30):  # until the notifier has read the fifty from the bus
            while outbox.counts.dropped + len(outbox) < 50 - 1:  # one may be in hand
                await trio.sleep(0.01)
                assert len(outbox) <= 5
        assert outbox.counts.dropped >= 50 - 5 - 1
        assert outbox.counts.sent == 0 and outbox.counts.failed == 0  # still trying


async def test_a_stalled_destination_never_holds_up_trading(run_daemon: Any) -> None:
    webhook = FakeWebhook()
    webhook.stall = True
    async with open_endpoint(webhook) as url, run_daemon(
            "max_queue = 3\nrequest_timeout_seconds = 30\n" + webhook_table(url),
            autostart=True, dislocations=3600.0) as running:
        runtime = running.runtime
        await webhook.wait_for(lambda: webhook.requests)  # one notification in hand
        quotes, closed = runtime.engine.quotes_processed, runtime.control.stats.trades_closed
        with trio.fail_after(60):
            while runtime.control.stats.trades_closed < closed + 8 or \
                    runtime.engine.quotes_processed < quotes + 500:
                await trio.sleep(0.05)
        outbox = running.service.outboxes["webhook"]
        assert len(outbox) <= 3 and outbox.counts.dropped >= 1
        assert len(webhook.requests) == 1 and not webhook.answered


async def test_a_venue_down_longer_than_the_threshold_is_told_and_when_it_is_back(
    run_daemon: Any
) -> None:
    webhook = FakeWebhook()
    async with open_endpoint(webhook) as url, run_daemon(
            "venue_down_seconds = 0.3\n" + webhook_table(url)) as running:
        engine = running.runtime.engine
        engine.on_feed_state("sim_beta", False, "test outage")
        await webhook.wait_for(lambda: webhook.events("venue_down"))
        down = webhook.events("venue_down")[0]["data"]
        assert down["exchange"] == "sim_beta" and down["reason"] == "test outage"
        assert down["down_seconds"] >= 0.3
        engine.on_feed_state("sim_beta", True)  # usable again with its next quote
        await webhook.wait_for(lambda: webhook.events("venue_back"))
        back = webhook.events("venue_back")[0]
        assert back["data"]["exchange"] == "sim_beta"
        assert back["text"].startswith("sim_beta: market data back after")
    assert [body["event"] for body in webhook.events()] == ["venue_down", "venue_back"]


class _Limit:
    """A risk check whose one limit the test moves."""

    name = "test_risk"
    stop_loss_fraction = None

    def __init__(self) -> None:
        self.used = 0.0

    def check(self, signal: Any) -> str | None:
        return None

    def limits(self) -> list[LimitUse]:
        return [LimitUse("test_limit", 100.0, self.used)]


def _risk_plugin(check: _Limit) -> ModuleType:
    module = ModuleType("arbotd_test_notify_risk")

    @hookimpl
    def register_risk_checks(config: Any, runtime: Any) -> list[Any]:
        return [check]

    module.register_risk_checks = register_risk_checks  # type: ignore[attr-defined]
    return module


async def test_a_risk_limit_is_told_at_warning_critical_and_back_to_normal(
    run_daemon: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook = FakeWebhook()
    check = _Limit()
    plugin = _risk_plugin(check)
    monkeypatch.setitem(sys.modules, plugin.__name__, plugin)
    async with open_endpoint(webhook) as url, run_daemon(
            webhook_table(url), plugins=(("test_risk", plugin),)):
        for used, count in ((85.0, 1), (100.0, 2), (90.0, 3), (10.0, 4)):
            check.used = used
            await webhook.wait_for(lambda n=count: len(webhook.events("risk_limit")) == n)
    told = [(body["data"]["state"], body["data"]["previous_state"])
            for body in webhook.events("risk_limit")]
    assert told == [("warning", "normal"), ("critical", "warning"),
                    ("warning", "critical"), ("normal", "warning")]
    texts = [body["text"] for body in webhook.events("risk_limit")]
    assert texts[0] == "risk limit test_limit at warning: 85 of 100 used (85 %)"
    assert texts[-1].startswith("risk limit test_limit back to normal")


async def test_a_switched_off_event_is_not_sent_and_a_reload_switches_it(
    run_daemon: Any
) -> None:
    webhook = FakeWebhook()
    async with open_endpoint(webhook) as url, run_daemon(
            webhook_table(url) + "\n[notify.events]\nemergency_stop = false\n") as running:
        runtime = running.runtime
        await runtime.control.emergency_stop()
        # A marker read from the bus after the stop: once it is sent, the stop was seen.
        runtime.control.report(attrs.evolve(_trades(1)[0], state=TradeState.FAILED))
        await webhook.wait_for(lambda: webhook.events("trade_failed"))
        text = running.config_path.read_text().replace("emergency_stop = false",
                                                       "emergency_stop = true")
        running.config_path.write_text(text)
        assert (await runtime.reload()).ok
        await runtime.control.emergency_stop()
        await webhook.wait_for(lambda: webhook.events("emergency_stop"))
        assert running.service.limit.suppressed == {}
    assert len(webhook.events("emergency_stop")) == 1


async def test_an_enabled_webhook_without_its_secret_stops_the_start(
    run_daemon: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARBOT_WEBHOOK_SECRET")
    with pytest.raises(ConfigError, match=r"notify\.webhook\.secret_env.*"
                                          r"\$ARBOT_WEBHOOK_SECRET is not set"):
        async with run_daemon(webhook_table("http://127.0.0.1:9")):
            pass


async def test_notifications_on_without_a_destination_is_a_configuration_error(
    run_daemon: Any
) -> None:
    with pytest.raises(ConfigError, match=r"notify\.enabled.*nowhere to send"):
        async with run_daemon(""):
            pass


async def test_inventory_drift_past_warn_drift_is_told(
    run_daemon: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import arbotd._runtime

    monkeypatch.setattr(arbotd._runtime, "INVENTORY_CHECK_INTERVAL", 0.05)
    webhook = FakeWebhook()
    async with open_endpoint(webhook) as url, run_daemon(webhook_table(url)) as running:
        ledger = running.runtime.ledger
        for venue, amount in (("sim_alpha", "9"), ("sim_beta", "1"), ("sim_gamma", "0")):
            ledger.set_balance(venue, "BTC", Decimal(amount))
        await webhook.wait_for(lambda: webhook.events("inventory_drift"))
    told = {(b["data"]["asset"], b["data"]["exchange"]): b for b in
            webhook.events("inventory_drift")}
    alpha = told[("BTC", "sim_alpha")]
    assert alpha["data"]["past"] is True
    assert alpha["data"]["drift"] == pytest.approx(0.9 - 1 / 3, abs=1e-6)
    assert alpha["text"].startswith("inventory: BTC on sim_alpha is +56.7 % from its target")
