"""Shared by the dashboard's browser tests, its screenshot command and its benchmark: a
real daemon as a subprocess on a loopback port, and headless Chromium through selenium
and Debian's chromedriver.

Not a test module and not a ``conftest.py`` (the suite imports the top-level one by
name): the tests import from here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

JWT_SECRET = "dashboard-test-secret-" + "x" * 20
TIMEOUT = 30.0  # seconds: generous, for a loaded two-core machine running a browser too

# Chromium as root, on a machine without a display or a network: no sandbox (it refuses
# to run as root with one), no GPU, /tmp instead of a small /dev/shm, and none of the
# background connections (updates, sync, metrics) that a closed network refuses many at
# a time.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
_BINARIES = ("chromium", "chromium-browser", "google-chrome")
_DRIVERS = ("chromedriver",)


def _find(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((path for path in extra if os.access(path, os.X_OK)), None)


def chromium_paths() -> tuple[str, str] | None:
    """Chromium and its driver, or ``None``."""
    binary = _find(_BINARIES, ("/usr/lib/chromium/chromium",))
    driver = _find(_DRIVERS, ("/usr/lib/chromium/chromedriver",))
    return (binary, driver) if binary and driver else None


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if chromium_paths() is None:
        return ("Chromium and chromedriver are not installed "
                "(apt-get install chromium chromium-driver; .ci/run does it as root)")
    return None


class Browser:
    """A headless Chromium session with its own fresh profile, removed at :meth:`quit`."""

    def __init__(self, width: int = 1400, height: int = 900) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        paths = chromium_paths()
        assert paths is not None, missing_browser()
        binary, driver = paths
        self.profile = tempfile.mkdtemp(prefix="arbotd-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                     f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(driver))
        self.driver.set_page_load_timeout(TIMEOUT)

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- reading the page ------------------------------------------------------------------

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def click_row(self, css: str) -> None:
        """Click the first row matching ``css`` of a table that live data keeps
        re-rendering: a row can move between being found and being clicked (the click
        then lands on another element, or the element is gone), so it is found again
        and clicked again until a click lands on a matching row."""
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            StaleElementReferenceException,
        )

        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                self.find(css).click()
                return
            except (ElementClickInterceptedException, StaleElementReferenceException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.js("const n = document.querySelector(arguments[0]);"
                       "return n ? n.textContent : null;", css)

    def count(self, css: str) -> int:
        return self.js("return document.querySelectorAll(arguments[0]).length;", css)

    def visible(self, css: str) -> bool:
        found = self.find_all(css)
        return bool(found) and found[0].is_displayed()

    def wait_for(self, predicate: Callable[[], Any], what: str,
                 timeout: float = TIMEOUT) -> Any:
        """Poll ``predicate`` until it returns something true; fail naming ``what`` and
        the page's console."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; "
                                     f"console:\n{self.console()}")
            time.sleep(0.1)

    def console(self) -> str:
        try:
            entries = self.driver.get_log("browser")
        except Exception:
            return "(no console log)"
        return "\n".join(f"{e['level']}: {e['message']}" for e in entries[-30:])

    def stats(self) -> dict[str, Any]:
        return self.js("return window.arbotdDashboard ? window.arbotdDashboard.stats() : {};")

    def show(self, view: str) -> None:
        self.js("window.scrollTo(0, 0);")  # the tabs are at the top of the page
        self.find(f'[data-tab="{view}"]').click()
        self.wait_for(lambda: self.visible(f'[data-view="{view}"]'), f"the {view} view")


@contextlib.contextmanager
def browser(width: int = 1400, height: int = 900) -> Iterator[Browser]:
    session = Browser(width, height)
    try:
        yield session
    finally:
        session.quit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONFIG = """\
[daemon]
autostart = true
state_dir = "{state_dir}"
shutdown_timeout_seconds = 5

[arbitrage]
symbols = {symbols}
min_profit_threshold = 0.002
cooldown_seconds = {cooldown}

[simulation]
updates_per_second = {updates}
dislocation_per_hour = {dislocations}
start_prices = {{ {start_prices} }}

[simulation.paper]
fill_delay_seconds = 0.05
partial_fill_rate = 0.0
reject_rate = 0.0

[api]
port = {port}
auth_required = {auth}
read_per_minute = 100000
read_burst = 10000
write_per_minute = 10000
write_burst = 1000
ws_per_minute = 1000
ws_burst = 100
"""
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT")


def many_symbols(count: int) -> dict[str, float]:
    """``count`` symbols with start prices across the magnitudes real ones have."""
    return {f"S{i:03d}USDT": round(0.05 * 10 ** (i % 7) * (1 + i / count), 6)
            for i in range(count)}


class DaemonProcess:
    """``python -m arbotd run`` on a configuration written into ``directory``, serving
    the API (and the dashboard) on a loopback port that stays the same across
    :meth:`restart`. Its stderr goes to a file, read when something fails."""

    def __init__(self, directory: Path, *, auth: bool = False,
                 symbols: dict[str, float] | None = None, updates_per_second: float = 4.0,
                 dislocations_per_hour: float = 2000.0, cooldown_seconds: float = 5.0,
                 extra: str = "") -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prices = symbols or {}
        names = list(prices) if prices else list(DEFAULT_SYMBOLS)
        self.config = directory / "arbot.toml"
        self.config.write_text(CONFIG.format(
            state_dir=directory / "state", symbols="[" + ", ".join(
                f'"{s}"' for s in names) + "]",
            cooldown=cooldown_seconds, updates=updates_per_second,
            dislocations=dislocations_per_hour,
            start_prices=", ".join(f"{s} = {p}" for s, p in prices.items()),
            port=self.port, auth="true" if auth else "false",
        ) + textwrap.dedent(extra), encoding="utf-8")
        self.env = {**os.environ, "ARBOT_JWT_SECRET": JWT_SECRET}
        for name in ("ARBOTD_CONFIG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _arbotd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "arbotd", *args, "-c", str(self.config)]

    def add_user(self, name: str, password: str, scope: str) -> None:
        subprocess.run([*self._arbotd("user", "add", name, "--scope", scope)],
                       input=password + "\n", text=True, check=True, capture_output=True,
                       env=self.env, timeout=TIMEOUT)

    def revoke(self, name: str) -> None:
        subprocess.run(self._arbotd("user", "revoke", name), check=True, capture_output=True,
                       env=self.env, timeout=TIMEOUT)

    def start(self) -> DaemonProcess:
        self.starts += 1
        log = self.directory / f"daemon-{self.starts}.log"
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                self._arbotd("run"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=stderr, env=self.env)
        self.log_path = log
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon exited:\n{self.log()}")
            with contextlib.suppress(httpx.TransportError):
                health = httpx.get(f"{self.url}/api/v1/health", timeout=2)
                if health.status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise AssertionError(f"the daemon did not become healthy:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
