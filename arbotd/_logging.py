"""Log output: to stderr, readable in journald, or JSON lines for machines."""

from __future__ import annotations

import logging
import os
import sys
import time

import orjson

__all__ = ["setup_logging"]

# sd-daemon(3) priority prefixes: journald reads "<3>message" as an error line.
_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def _stderr_is_journal() -> bool:
    """True when stderr is connected to journald (systemd sets ``$JOURNAL_STREAM`` to the
    device and inode of that stream)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        device, inode = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


class _JournalFormatter(logging.Formatter):
    """No timestamp (journald adds one), a priority prefix so levels survive."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class _TextFormatter(logging.Formatter):
    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s",
                         "%Y-%m-%dT%H:%M:%S")


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Send log records to stderr: ``text`` (journald-aware) or ``json`` (one object per
    line with ``time``, ``level``, ``logger``, ``message``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    elif _stderr_is_journal():
        handler.setFormatter(_JournalFormatter())
    else:
        handler.setFormatter(_TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party libraries are loud at debug level; keep them at info unless asked.
    for noisy in ("hpack", "hypercorn.access", "httpcore", "peewee"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
