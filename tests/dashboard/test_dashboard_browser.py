"""The dashboard in a real browser against a real daemon: headless Chromium, driven by
selenium through Debian's chromedriver, on a ``python -m arbotd run`` subprocess serving
the simulated venues on a loopback port.

Skipped, with the reason, where Chromium or chromedriver is not installed (``.ci/run``
installs them as root: ``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import time

import httpx
import pytest
from dashtools import Browser, DaemonProcess, browser, missing_browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing_browser() is not None, reason=missing_browser() or ""),
]


NO_FIGURE = "\N{EN DASH}"  # what the page shows in a cell without a figure yet


def _status(daemon: DaemonProcess, **headers: str) -> str:
    return httpx.get(f"{daemon.url}/api/v1/status", headers=headers, timeout=10).json()["status"]


def _cells(b: Browser, css: str) -> list[str]:
    return b.js("return [...document.querySelectorAll(arguments[0])].map(c => c.textContent);",
                css)


def _wait_for_live_prices(b: Browser, symbols: int) -> None:
    b.show("market")
    b.wait_for(lambda: b.count("#prices tbody tr") == symbols, f"a row for each of {symbols} "
               "symbols")
    b.wait_for(lambda: NO_FIGURE not in _cells(b, "#prices td.bid, #prices td.ask"),
               "a bid and an ask on every venue")
    first = _cells(b, "#prices td.bid, #prices td.ask")
    b.wait_for(lambda: _cells(b, "#prices td.bid, #prices td.ask") != first,
               "prices that move (the live stream)")


# The storage's writer commits every 4 s instead of every 0.25 s: a trade the list shows
# settled (from the live stream) is still in flight, without fills, in storage when its
# detail is first asked for, as it can be on a loaded machine.
LAGGING_STORAGE = """
[storage]
flush_interval_seconds = 4.0
"""


def test_live_data_a_trade_and_the_emergency_stop(tmp_path):
    with DaemonProcess(tmp_path, extra=LAGGING_STORAGE) as daemon, browser() as b:
        b.driver.get(daemon.url + "/")
        b.wait_for(lambda: b.count('#venues tr[data-state="up"]') == 3,
                   "three venues shown connected")
        assert b.text("#who") == "authentication off"
        assert not b.visible("#signin") and not b.visible("#sign-out")
        b.wait_for(lambda: b.count("#risk [data-limit]") >= 3, "the risk limits as gauges")
        b.wait_for(lambda: b.text("#risk-status") == "normal", "the overall risk status")

        _wait_for_live_prices(b, 5)
        b.wait_for(lambda: b.count('#prices tr[data-hot="true"]') >= 1,
                   "a route above the threshold, highlighted")
        assert b.count("#prices tr.hot td.route-buy") >= 1

        # Dislocations open routes above the threshold many times a minute: trades follow.
        b.show("activity")
        b.wait_for(lambda: b.count('#trades tr[data-status="completed"]') >= 1,
                   "a completed trade in the list")
        b.wait_for(lambda: b.count('#signals tr[data-executed="true"]') >= 1,
                   "an executed signal in the feed")
        b.click_row('#trades tr[data-status="completed"]')
        b.wait_for(lambda: b.count("[data-trade-detail] tr.leg") >= 2, "the trade's legs")
        b.wait_for(lambda: b.count("[data-trade-detail] tr.fill") >= 2, "the legs' fills")
        detail = b.text("[data-trade-detail]")
        assert "Fees" in detail and "Slippage" in detail and "entry" in detail

        b.show("config")
        b.wait_for(lambda: "min_profit_threshold" in (b.text("#config") or ""),
                   "the configuration")

        # The emergency stop asks first: cancelling leaves trading on.
        b.find("#emergency-stop").click()
        b.wait_for(lambda: b.js("return document.getElementById('confirm-emergency').open"),
                   "the confirmation")
        b.find("#emergency-cancel").click()
        assert not b.js("return document.getElementById('confirm-emergency').open")
        assert _status(daemon) == "running"
        b.find("#emergency-stop").click()
        b.wait_for(lambda: b.visible("#emergency-confirm"), "the confirmation again")
        b.find("#emergency-confirm").click()
        b.wait_for(lambda: b.js("return document.getElementById('daemon-status')"
                                ".dataset.status") == "emergency_stopped",
                   "the page to show the emergency stop")
        assert _status(daemon) == "emergency_stopped"
        assert "Emergency stop activated" in b.text("#toast")

        b.find("#start-trading").click()
        b.wait_for(lambda: _status(daemon) == "running", "trading started again")


def test_sign_in_scopes_and_revoked_credentials(tmp_path):
    with DaemonProcess(tmp_path, auth=True) as daemon, browser() as b:
        daemon.add_user("trader", "trader password 1", "trading")
        daemon.add_user("reader", "reader password 1", "read")
        b.driver.get(daemon.url + "/dashboard")
        b.wait_for(lambda: b.visible("#signin"), "the sign-in form")
        assert not b.visible("#app") and not b.visible("#controls")

        def sign_in(name: str, password: str) -> None:
            b.find("#username").clear()
            b.find("#username").send_keys(name)
            b.find("#password").clear()
            b.find("#password").send_keys(password)
            b.find("#signin-submit").click()

        sign_in("trader", "wrong password")
        b.wait_for(lambda: b.visible("#signin-error"), "the refusal")
        assert b.text("#signin-error") == "Wrong user name or password."

        sign_in("trader", "trader password 1")
        b.wait_for(lambda: b.visible("#app"), "the dashboard")
        assert b.text("#who") == "trader (trading)"
        assert b.visible("#emergency-stop") and b.visible("#start-trading")
        b.wait_for(lambda: b.count('#venues tr[data-state="up"]') == 3, "the venues")
        # The token stays in this tab only.
        assert b.js("return localStorage.length") == 0
        assert b.js("return sessionStorage.getItem('arbotd.token')")

        b.find("#sign-out").click()
        b.wait_for(lambda: b.visible("#signin"), "the sign-in form after signing out")
        assert b.js("return sessionStorage.getItem('arbotd.token')") is None

        sign_in("reader", "reader password 1")
        b.wait_for(lambda: b.visible("#app"), "the dashboard for the reader")
        assert b.text("#who") == "reader (read)"
        assert not b.visible("#controls")
        assert not any(button.is_displayed() for button in b.find_all("#controls button"))
        _wait_for_live_prices(b, 5)  # the live stream signs in with the token too

        # Credentials that stop working (revoked from the shell) send the page back to
        # sign-in at the next call.
        daemon.revoke("reader")
        b.wait_for(lambda: b.visible("#signin"), "the sign-in form after the revocation")
        assert "Sign in again" in b.text("#signin-error")
        assert not b.visible("#app")


def test_stale_data_is_flagged_and_the_stream_reconnects_by_itself(tmp_path):
    with DaemonProcess(tmp_path) as daemon, browser() as b:
        b.driver.get(daemon.url + "/#market")
        _wait_for_live_prices(b, 5)
        b.wait_for(lambda: b.js("return document.getElementById('live-state').dataset.state")
                   == "open", "the live stream")
        assert b.js("return document.body.dataset.stale") == "false"
        assert not b.visible("#stale-banner")

        daemon.stop()
        b.wait_for(lambda: b.js("return document.body.dataset.stale") == "true",
                   "the page to flag its data stale")
        assert b.visible("#stale-banner")
        assert "Data is stale" in b.text("#stale-banner")
        assert b.text("#live-state") == "disconnected"

        daemon.start()  # the same port, as after a restart of the service
        b.wait_for(lambda: b.stats()["connections"] >= 2, "the stream to reconnect by itself")
        b.wait_for(lambda: b.js("return document.body.dataset.stale") == "false",
                   "the stale flag to clear")
        assert not b.visible("#stale-banner")
        messages = b.stats()["messages"]
        b.wait_for(lambda: b.stats()["messages"] > messages + 10, "live data again")


RECORDING = """
[storage]
record_quotes = true
"""


def _run_backtest(daemon: DaemonProcess, start: float, end: float) -> int:
    started = httpx.post(f"{daemon.url}/api/v1/trading/start", timeout=30,
                         json={"mode": "backtest", "start_time": start, "end_time": end})
    assert started.status_code == 200, started.text
    return started.json()["backtest_id"]


def test_charts_the_stop_button_and_a_backtest_with_its_equity_chart(tmp_path):
    with DaemonProcess(tmp_path, extra=RECORDING) as daemon, browser() as b:
        recording_from = time.time()
        b.driver.get(daemon.url + "/")
        b.wait_for(lambda: b.count('#venues tr[data-state="up"]') == 3, "the venues")
        b.wait_for(lambda: b.count("#today .figure") >= 6, "today's figures")

        # Equity is sampled while the page is open; realised P&L follows finished trades.
        b.wait_for(lambda: int(b.js("return document.getElementById('equity-chart')"
                                    ".dataset.points || 0")) >= 2, "an equity curve")
        b.wait_for(lambda: int(b.js("return document.getElementById('pnl-chart')"
                                    ".dataset.points || 0")) >= 1,
                   "a realised P&L curve", timeout=60)

        b.find("#stop-trading").click()
        b.wait_for(lambda: _status(daemon) == "idle", "trading stopped by the button")
        b.wait_for(lambda: b.js("return document.getElementById('daemon-status')"
                                ".dataset.status") == "idle", "the page to show it")
        assert b.js("return document.getElementById('stop-trading').disabled")

        # Signals found while trading is off are in the feed, saying why they were not
        # executed.
        b.show("activity")
        not_executed = '#signals tr[data-executed="false"] td:last-child'
        b.wait_for(lambda: "trading off" in _cells(b, not_executed),
                   "a signal not executed because trading is off", timeout=60)
        assert all(outcome.strip() for outcome in _cells(b, not_executed))

        backtest_id = _run_backtest(daemon, recording_from, time.time())
        b.show("backtests")
        row = f'#backtests tr[data-backtest="{backtest_id}"][data-status="completed"]'
        b.wait_for(lambda: b.count(row) == 1, "the finished backtest in the list", timeout=90)
        b.click_row(row)
        b.wait_for(lambda: int(b.js(
            "const c = document.querySelector('[data-chart=\"backtest-equity\"]');"
            "return c ? c.dataset.points || 0 : 0;")) >= 2, "the backtest's equity chart")
        assert f"Backtest #{backtest_id}: equity" in b.text("#backtest-detail")
