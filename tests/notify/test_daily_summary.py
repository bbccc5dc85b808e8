"""The daily summary: at the first look after 00:00 UTC, the day that ended, its trades,
wins, net and fees, from the storage's figures or, without a storage that keeps history,
from the trades the notifier saw. The notifier's clock is moved to just before midnight
(the daemon's own time is left alone)."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
import trio
from notifytools import (
    FakeTelegram,
    FakeWebhook,
    daemon_factory,
    open_endpoint,
    telegram_table,
    webhook_table,
)

from arbotd import TradeState
from arbotd.figures import trade_figures

COUNTED = (TradeState.COMPLETED, TradeState.UNWOUND, TradeState.FAILED)


@pytest.fixture
def run_daemon(tmp_path, monkeypatch):
    return daemon_factory(tmp_path, monkeypatch)


@pytest.mark.parametrize("storage", ["sql", "none"])
async def test_the_day_that_ended_is_summed_up_after_midnight_utc(run_daemon: Any,
                                                                  storage: str) -> None:
    webhook, telegram = FakeWebhook(), FakeTelegram()
    extra = '\n[plugins]\ndisable = ["sql"]\n' if storage == "none" else ""
    async with open_endpoint(webhook) as hook_url, open_endpoint(telegram) as bot_url, \
            run_daemon(webhook_table(hook_url) + telegram_table(bot_url), autostart=True,
                       dislocations=3600.0, extra=extra) as running:
        runtime, service = running.runtime, running.service
        assert (runtime.storage is None) == (storage == "none")
        control = runtime.control
        with trio.fail_after(60):
            while control.stats.trades_closed < 4:
                await trio.sleep(0.05)
        control.stop()
        with trio.fail_after(30):
            await control.wait_idle()
        today = dt.datetime.now(dt.UTC).date()
        counted = [trade_figures(t) for t in control.recent_trades.values()
                   if t.state in COUNTED and t.fills and t.completed_at is not None
                   and dt.datetime.fromtimestamp(t.completed_at, dt.UTC).date() == today]
        assert counted
        # Half a second before the next midnight UTC, in the notifier's time only.
        now = time.time()
        offset = (now // 86400 + 1) * 86400 - 0.5 - now
        service.clock = lambda: time.time() + offset
        await webhook.wait_for(lambda: webhook.events("daily_summary"), timeout=30)
        await telegram.wait_for(lambda: any("daily summary" in text
                                            for text in telegram.texts()))
    summary = webhook.events("daily_summary")[0]["data"]
    assert summary["date"] == today.isoformat()
    assert summary["trades"] == len(counted)
    assert summary["wins"] == sum(1 for figures in counted if figures.net > 0)
    assert summary["net"] == pytest.approx(float(sum(f.net for f in counted)), abs=1e-6)
    assert summary["fees"] == pytest.approx(float(sum(f.fees for f in counted)), abs=1e-6)
    assert summary["fees"] > 0 and summary["currency"] == "USDT"
    text = next(t for t in telegram.texts() if "daily summary" in t)
    assert text.startswith(f"test-daemon: daily summary {today.isoformat()} (UTC): "
                           f"{len(counted)} trades, {summary['wins']} won")
    fees = Decimal(str(summary["fees"])).normalize()
    assert f"fees {fees:f} USDT" in text
