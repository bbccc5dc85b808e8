"""Log output on stderr: text for people, journald's priority prefixes under systemd, JSON
lines for machines."""

from __future__ import annotations

import json
import logging
import os
import re
import sys

import pytest

from arbotd._logging import setup_logging

pytestmark = pytest.mark.usefixtures("isolated_logging")

log = logging.getLogger("arbotd.test")


def _log_an_error() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("trade 7 failed")


def test_text_lines_carry_utc_time_level_and_logger(capsys):
    setup_logging("info", "text")

    log.info("started")
    log.debug("not shown at info level")

    [line] = capsys.readouterr().err.splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO    arbotd\.test: started", line
    )


def test_debug_level(capsys):
    setup_logging("debug", "text")

    log.debug("details")

    assert "DEBUG   arbotd.test: details" in capsys.readouterr().err


def test_json_lines(capsys):
    setup_logging("info", "json")

    log.warning("feed %s reconnecting", "binance")
    _log_an_error()

    warning, error = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert warning.keys() == {"time", "level", "logger", "message"}
    assert (warning["level"], warning["logger"], warning["message"]) == (
        "warning",
        "arbotd.test",
        "feed binance reconnecting",
    )
    assert error["message"] == "trade 7 failed"
    assert error["exception"].endswith("ValueError: boom")


def test_journald_gets_priority_prefixes_on_every_line(capfd, monkeypatch):
    # systemd sets JOURNAL_STREAM to the device and inode of the stream it gave as stderr.
    st = os.fstat(sys.stderr.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    setup_logging("info", "text")

    log.info("started")
    _log_an_error()

    lines = capfd.readouterr().err.splitlines()
    assert lines[:2] == ["<6>arbotd.test: started", "<3>arbotd.test: trade 7 failed"]
    assert lines[-1] == "<3>ValueError: boom"
    assert all(line.startswith("<3>") for line in lines[1:])


def test_a_journal_stream_that_is_not_stderr_is_ignored(capfd, monkeypatch):
    # A child of a systemd service inherits JOURNAL_STREAM, but its stderr may be elsewhere.
    monkeypatch.setenv("JOURNAL_STREAM", "1:1")
    setup_logging("info", "text")

    log.info("started")

    assert capfd.readouterr().err.endswith("INFO    arbotd.test: started\n")
