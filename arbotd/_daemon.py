"""``arbotd run``: the daemon's lifecycle.

The daemon owns the root nursery. Plugin services are started in it with
``nursery.start``; signals are handled by one task:

- SIGHUP reloads the configuration and the secrets file, ``[daemon] secrets_file`` (an
  invalid file changes nothing);
- SIGTERM or SIGINT set ``runtime.shutdown_requested``, after which services have
  ``[daemon] shutdown_timeout_seconds`` to end before they are cancelled; a second signal
  cancels them at once.

systemd is kept informed over ``$NOTIFY_SOCKET`` (see ``_sdnotify``).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import trio

from arbotd._audit import record_reload
from arbotd._errors import ArbotError
from arbotd._interfaces import Service
from arbotd._plugins import make_plugin_manager
from arbotd._runtime import Runtime, load_with_plugins, peek_disabled
from arbotd._sdnotify import Notifier
from arbotd._secrets import clear_secrets, install_secrets, read_secrets
from arbotd._version import __version__

__all__ = ["Daemon", "run_daemon"]

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How often the daemon logs a summary and refreshes systemd's status line.
STATUS_INTERVAL = 60.0


class Daemon:
    """One run of the daemon. :meth:`prepare` loads plugins and configuration (raising
    :class:`ArbotError` on a problem); :meth:`serve` runs until stopped."""

    def __init__(
        self,
        config_path: Path,
        *,
        plugins: Iterable[tuple[str, Any]] = (),
        entry_points: bool = True,
        notifier: Notifier | None = None,
    ) -> None:
        self.config_path = config_path
        self._plugins = list(plugins)
        self._entry_points = entry_points
        self.notifier = notifier if notifier is not None else Notifier()
        self.runtime: Runtime | None = None
        self._services_scope: trio.CancelScope | None = None

    def prepare(self) -> Runtime:
        pm = make_plugin_manager(
            disabled=peek_disabled(self.config_path),
            plugins=self._plugins,
            entry_points=self._entry_points,
        )
        config = load_with_plugins(self.config_path, pm)
        secrets = read_secrets(config.daemon.secrets_file)
        clear_secrets()  # what an earlier daemon of this process read counts no more
        install_secrets(secrets)
        self.runtime = Runtime(config, pm)
        return self.runtime

    async def serve(self) -> None:
        runtime = self.runtime if self.runtime is not None else self.prepare()
        try:
            await self._serve(runtime)
        finally:
            clear_secrets()

    async def _serve(self, runtime: Runtime) -> None:
        config = runtime.config
        pm = runtime.pm
        pm.hook.configure.call_historic(kwargs={"config": config, "runtime": runtime})
        runtime.assemble()
        services: list[Service] = [
            service
            for batch in pm.hook.register_services(config=config, runtime=runtime)
            for service in batch or ()
        ]
        with trio.open_signal_receiver(signal.SIGHUP, *_STOP_SIGNALS) as signals:
            async with trio.open_nursery() as daemon_tasks:
                daemon_tasks.start_soon(self._handle_signals, signals)
                daemon_tasks.start_soon(self._stop_when_requested)
                if self.notifier.watchdog_interval:
                    daemon_tasks.start_soon(self._keep_watchdog_fed)
                daemon_tasks.start_soon(self._report_status)
                with trio.CancelScope() as self._services_scope:
                    async with trio.open_nursery() as service_tasks:
                        # Keeps the nursery open when no plugin runs a service.
                        service_tasks.start_soon(runtime.shutdown_requested.wait)
                        await service_tasks.start(runtime.run_core)
                        for service in services:
                            log.info("starting service %s", service.name)
                            await service_tasks.start(_run_service, service)
                        log.info(
                            "arbotd %s running: %s mode, configuration %s",
                            __version__,
                            config.daemon.mode,
                            config.path,
                        )
                        runtime.start_trading_if_configured()
                        self.notifier.ready(self.status_line())
                if self._services_scope.cancelled_caught:
                    log.warning("services did not stop in time and were cancelled")
                daemon_tasks.cancel_scope.cancel()
        log.info("arbotd stopped")

    def status_line(self) -> str:
        """One line for ``systemctl status``: mode, trading, feeds, and today's trades."""
        runtime = self.runtime
        assert runtime is not None
        line = f"running, {runtime.config.daemon.mode} mode"
        control, feeds = runtime.control, runtime.feeds
        if control is not None and feeds is not None:
            status = control.status()
            up = sum(1 for s in feeds.statuses().values() if s.connected)
            line += (
                f", trading {'on' if status['trading'] else 'off'}"
                f"{' (emergency stop)' if status['emergency_stopped'] else ''}"
                f", feeds {up}/{len(feeds.adapters)} up, {status['signals_last_hour']} "
                f"signals in the last hour, {status['trades_today']} trades today"
            )
        if runtime.last_config_error is not None:
            first = runtime.last_config_error.problems[0]
            line += f"; reload failed, previous configuration kept: {first}"
        return line

    async def _handle_signals(self, signals: Any) -> None:
        runtime = self.runtime
        assert runtime is not None
        async for signum in signals:
            if signum == signal.SIGHUP:
                if runtime.shutdown_requested.is_set():
                    continue
                log.info("SIGHUP: reloading %s", runtime.config.path)
                self.notifier.reloading("reloading configuration")
                outcome = await runtime.reload()
                record_reload(runtime.storage, outcome)  # the audit trail
                self.notifier.ready(self.status_line())
            elif not runtime.shutdown_requested.is_set():
                log.info("%s: stopping", signal.Signals(signum).name)
                runtime.shutdown_requested.set()
            else:
                log.warning("%s again: stopping now", signal.Signals(signum).name)
                if self._services_scope is not None:
                    self._services_scope.cancel()

    async def _stop_when_requested(self) -> None:
        runtime = self.runtime
        assert runtime is not None
        await runtime.shutdown_requested.wait()
        timeout = runtime.config.daemon.shutdown_timeout_seconds
        self.notifier.stopping("stopping")
        try:
            runtime.pm.hook.shutdown(runtime=runtime)
        except Exception:
            log.exception("a plugin failed in its shutdown hook")
        if self._services_scope is not None:
            self._services_scope.deadline = trio.current_time() + timeout

    async def _report_status(self) -> None:
        runtime = self.runtime
        assert runtime is not None
        while True:
            await trio.sleep(STATUS_INTERVAL)
            if runtime.shutdown_requested.is_set():
                return  # stopping: STOPPING=1 says what matters
            line = self.status_line()
            self.notifier.status(line)
            if runtime.engine is not None and runtime.control is not None:
                rejected = sorted(runtime.engine.rejection_counts().items(),
                                  key=lambda item: -item[1])
                log.info(
                    "%s; %d quotes processed; realised today %+.4f; rejected: %s",
                    line,
                    runtime.engine.quotes_processed,
                    runtime.control.status()["realized_today"],
                    ", ".join(f"{reason} {count}" for reason, count in rejected) or "none",
                )

    async def _keep_watchdog_fed(self) -> None:
        interval = self.notifier.watchdog_interval
        assert interval
        while True:
            self.notifier.watchdog()
            await trio.sleep(interval / 2)


async def _run_service(service: Service, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    try:
        await service.run(task_status=task_status)
    except Exception:
        log.exception("service %s failed", service.name)
        raise


def _innermost(err: BaseException) -> BaseException:
    """The first real error inside the exception groups trio's nurseries wrap it in."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return err


def run_daemon(config_path: Path, **kwargs: Any) -> int:
    """Run the daemon to completion and return the process exit status: 0 after a
    requested stop, 1 when it could not start or a service failed."""
    daemon = Daemon(config_path, **kwargs)
    try:
        daemon.prepare()
    except ArbotError as err:
        for line in str(err).splitlines():
            log.error("cannot start: %s", line)
        daemon.notifier.status(f"cannot start: {err}".splitlines()[0])
        return 1
    try:
        trio.run(daemon.serve)
    except Exception as err:
        cause = _innermost(err)
        message = f"{type(cause).__name__}: {cause}"
        log.error("arbotd stopped on an error: %s", message)
        daemon.notifier.stopping(f"failed: {message}")
        return 1
    finally:
        daemon.notifier.close()
    return 0
