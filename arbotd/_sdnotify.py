"""The systemd notify protocol (``sd_notify(3)``), spoken over ``$NOTIFY_SOCKET``.

A unit with ``Type=notify`` waits for ``READY=1`` before it counts as started; during a
reload the daemon sends ``RELOADING=1`` with ``MONOTONIC_USEC`` (required by
``Type=notify-reload`` and harmless otherwise) and then ``READY=1`` again; ``STOPPING=1``
when it begins to stop; ``WATCHDOG=1`` keeps ``WatchdogSec=`` from restarting it. When the
daemon is not run by systemd (no ``$NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to the service manager. Datagrams to a local socket do not
    block in practice, so sending is synchronous and safe from the event loop."""

    def __init__(self, address: str | None = None, watchdog_usec: str | None = None) -> None:
        if address is None:
            address = os.environ.get("NOTIFY_SOCKET")
        if watchdog_usec is None:
            watchdog_usec = os.environ.get("WATCHDOG_USEC")
        self._address: str | None = None
        self._sock: socket.socket | None = None
        if address:
            # A leading "@" names a socket in the abstract namespace.
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval: float | None = None
        if watchdog_usec:
            try:
                usec = int(watchdog_usec)
            except ValueError:
                log.warning("ignoring WATCHDOG_USEC=%r: not a number", watchdog_usec)
            else:
                if usec > 0 and self._watchdog_is_ours():
                    self.watchdog_interval = usec / 1_000_000

    @staticmethod
    def _watchdog_is_ours() -> bool:
        pid = os.environ.get("WATCHDOG_PID")
        return not pid or pid == str(os.getpid())

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *fields: str) -> None:
        """Send one datagram made of ``KEY=value`` lines."""
        if self._sock is None or self._address is None:
            return
        message = "\n".join(fields).encode()
        try:
            self._sock.sendto(message, self._address)
        except OSError as err:
            log.warning("could not notify the service manager at %s: %s", self._address, err)

    def ready(self, status: str | None = None) -> None:
        self.notify("READY=1", *self._status(status))

    def reloading(self, status: str | None = None) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *self._status(status))

    def stopping(self, status: str | None = None) -> None:
        self.notify("STOPPING=1", *self._status(status))

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    @staticmethod
    def _status(status: str | None) -> tuple[str, ...]:
        return (f"STATUS={status}",) if status else ()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
