"""The notifier: a daemon service that watches and tells.

It learns of trades and emergency stops from the bus (a subscription to ``trade`` and
``status`` events, read by its own task: publishing never waits for it), and looks at the
feeds' states and the risk limits every ``check_interval_seconds``:

* a venue whose market data is not usable (as ``/status`` reports it) for
  ``venue_down_seconds`` is reported down, once, and back when it is usable again;
* a risk limit whose state (normal, warning at 80 % used, critical once reached) changes
  is reported, back to normal included;
* the first look after 00:00 UTC sends the summary of the day that ended: from the
  storage's ``/performance`` figures when it keeps history (so a restart during the day
  loses nothing), else from the trades this run saw.

Every notification passes the per-kind rate limit, then goes into each enabled
destination's outbox (:mod:`arbotd_notify.outbox`), whose own task sends it.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import trio

from arbotd import (
    ConfigError,
    ConfigProblem,
    HistoryStore,
    Runtime,
    SubscriptionClosed,
    Trade,
    secret_from_env,
    split_symbol,
)
from arbotd.figures import trade_figures, utc_day
from arbotd_notify import messages
from arbotd_notify.channels import TelegramChannel, WebhookChannel
from arbotd_notify.config import NotifyConfig
from arbotd_notify.messages import DailySummary, Notification
from arbotd_notify.outbox import KindLimit, Outbox

__all__ = ["NotifyService"]

log = logging.getLogger(__name__)

_TRADES_REMEMBERED = 1000
# At shutdown, what is queued gets this long to go out (within the daemon's own timeout).
_SHUTDOWN_GRACE = 2.0
# The summary waits at most this long for the storage to write the day's last trades.
_FLUSH_TIMEOUT = 30.0


def check_secrets(settings: NotifyConfig, config_path: str) -> None:
    """Raise :class:`arbotd.ConfigError` naming the variable (never a value) when an
    enabled destination's secret is not set."""
    problems = []
    if settings.webhook.enabled and secret_from_env(settings.webhook.secret_env) is None:
        problems.append(ConfigProblem(config_path, "notify.webhook.secret_env",
                                      f"${settings.webhook.secret_env} is not set: the "
                                      "webhook's notifications are signed with it "
                                      "(openssl rand -hex 32)"))
    if settings.telegram.enabled and secret_from_env(settings.telegram.token_env) is None:
        problems.append(ConfigProblem(config_path, "notify.telegram.token_env",
                                      f"${settings.telegram.token_env} is not set: the "
                                      "bot's token (from @BotFather)"))
    if problems:
        raise ConfigError(problems)


class NotifyService:
    name = "notify"

    def __init__(self, settings: NotifyConfig, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        # The time venue outages and the UTC day are measured in (tests move it).
        self.clock = runtime.clock
        self.limit = KindLimit(settings.rate_limit_count, settings.rate_limit_seconds)
        self.outboxes: dict[str, Outbox] = {}
        self._channels: list[WebhookChannel | TelegramChannel] = []
        self._told_trades: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._down_since: dict[str, float] = {}
        self._reported_down: set[str] = set()
        self._feed_reasons: dict[str, str] = {}
        self._limit_states: dict[str, str] = {}
        self._day = utc_day(self.clock())
        # Counted trades (net, fees) by the UTC day they ended, for a summary without a
        # storage that keeps history: the current day's, and the last one's until its
        # summary is made.
        self._trades_by_day: dict[dt.date, list[tuple[Decimal, Decimal]]] = {}

    # --- configuration ------------------------------------------------------------------

    def apply(self, settings: NotifyConfig) -> None:
        """A reload: switches, limits, queue sizes and retries apply at once."""
        self.settings = settings
        self.limit.configure(settings.rate_limit_count, settings.rate_limit_seconds)
        for outbox in self.outboxes.values():
            outbox.configure(settings.max_queue, settings.retry)
        for channel in self._channels:
            channel.configure(settings)

    def _destinations(self) -> Iterator[Outbox]:
        for channel in self._channels:
            if channel.enabled:
                yield self.outboxes[channel.name]

    # --- the service --------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        settings = self.settings
        async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
            self._channels = [WebhookChannel(settings, client),
                              TelegramChannel(settings, client)]
            for channel in self._channels:
                outbox = Outbox(channel.name, channel.send, max_queue=settings.max_queue,
                                retry=settings.retry)
                self.outboxes[channel.name] = outbox
                nursery.start_soon(outbox.run)
            nursery.start_soon(self._read_bus)
            nursery.start_soon(self._keep_checking, nursery)
            log.info("notifications on: %s", ", ".join(
                outbox.name for outbox in self._destinations()))
            task_status.started()
            await self.runtime.shutdown_requested.wait()
            with trio.move_on_after(_SHUTDOWN_GRACE):
                while not all(outbox.idle for outbox in self.outboxes.values()):
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    def notify(self, note: Notification) -> None:
        """Queue ``note`` for every enabled destination, if its kind is switched on and
        the rate limit lets it through. Never waits."""
        if not self.settings.events.enabled(note.kind):
            return
        admitted = self.limit.admit(note, self.clock())
        if admitted is None:
            return
        for outbox in self._destinations():
            outbox.put(admitted)

    # --- events from the bus ------------------------------------------------------------

    async def _read_bus(self) -> None:
        while True:
            with self.runtime.bus.subscribe(kinds=("trade", "status")) as subscription:
                try:
                    async for event in subscription:
                        if event.kind == "trade":
                            self._on_trade(event.payload)  # type: ignore[arg-type]
                        else:
                            self._on_status(event.payload)  # type: ignore[arg-type]
                except SubscriptionClosed as closed:
                    if closed.reason == "shutting down":
                        return
                    log.warning("notify: %s; subscribing again (events in between are "
                                "not notified)", closed.reason)

    def _on_trade(self, trade: Trade) -> None:
        if not trade.is_final or trade.id in self._told_trades:
            return
        self._told_trades[trade.id] = None
        if len(self._told_trades) > _TRADES_REMEMBERED:
            self._told_trades.popitem(last=False)
        now = self.clock()
        if DailySummary.counts(trade):
            figures = trade_figures(trade)
            day = utc_day(trade.completed_at if trade.completed_at is not None else now)
            self._trades_by_day.setdefault(day, []).append((figures.net, figures.fees))
        note = messages.trade_notification(trade, now)
        if note is not None:
            self.notify(note)

    def _on_status(self, status: dict[str, Any]) -> None:
        event = status.get("event")
        if event == "emergency_stop":
            self.notify(messages.emergency_stop(self.clock()))
        elif event == "inventory_drift":
            self.notify(messages.inventory_drift(status, self.clock()))
        elif event == "feed" and not status.get("usable") and status.get("reason"):
            self._feed_reasons[str(status.get("exchange"))] = str(status["reason"])

    # --- what is looked at now and then ---------------------------------------------------

    async def _keep_checking(self, nursery: trio.Nursery) -> None:
        while True:
            await trio.sleep(self.settings.check_interval_seconds)
            now = self.clock()
            for check in (self._check_venues, self._check_limits):
                try:
                    check(now)
                except Exception:
                    log.exception("notify: %s failed", check.__name__)
            today = utc_day(now)
            if today != self._day:
                ended, self._day = self._day, today
                trades = self._trades_by_day.pop(ended, [])
                for day in [d for d in self._trades_by_day if d < today]:
                    del self._trades_by_day[day]
                if self.settings.events.daily_summary:
                    nursery.start_soon(self._send_summary, ended, trades)

    def _check_venues(self, now: float) -> None:
        feeds = self.runtime.feeds
        statuses = feeds.statuses() if feeds is not None else {}
        for name in [n for n in self._down_since if n not in statuses]:
            del self._down_since[name]  # no longer enabled: nothing to tell
            self._reported_down.discard(name)
        for name, status in statuses.items():
            if status.connected:
                since = self._down_since.pop(name, None)
                if name in self._reported_down:
                    self._reported_down.discard(name)
                    self.notify(messages.venue_back(name, since or now, now))
                continue
            since = self._down_since.setdefault(name, now)
            if name not in self._reported_down and now - since >= \
                    self.settings.venue_down_seconds:
                self._reported_down.add(name)
                self.notify(messages.venue_down(name, since, now,
                                                self._feed_reasons.pop(name, None)))

    def _check_limits(self, now: float) -> None:
        control = self.runtime.control
        if control is None or not self.settings.events.risk_limit:
            return
        for check in control.risk_checks:
            for use in check.limits():
                previous = self._limit_states.get(use.name, "normal")
                if use.status != previous:
                    self._limit_states[use.name] = use.status
                    self.notify(messages.risk_limit(use, previous, now))

    # --- the daily summary ----------------------------------------------------------------

    async def _send_summary(self, day: dt.date, trades: list[tuple[Decimal, Decimal]]
                            ) -> None:
        try:
            summary = await self._summary(day, trades)
        except Exception:
            log.exception("notify: the daily summary of %s could not be made", day)
            return
        self.notify(messages.daily_summary(summary, self._currency(), self.clock()))

    async def _summary(self, day: dt.date, trades: list[tuple[Decimal, Decimal]]
                       ) -> DailySummary:
        """From the storage's figures when it keeps history, else from ``trades``."""
        storage = self.runtime.storage
        if not isinstance(storage, HistoryStore):
            return DailySummary.of(day, trades)
        with trio.move_on_after(_FLUSH_TIMEOUT):
            await storage.flush()  # the day's last trades may still wait for the writer
        control = self.runtime.control
        mode = (control.mode if control is not None else None) or \
            self.runtime.config.daemon.mode
        metrics = (await storage.performance(start=day, end=day, mode=mode))["metrics"]
        return DailySummary(day, int(metrics["total_trades"]),
                            int(metrics["successful_trades"]),
                            Decimal(str(metrics["net_profit"] or 0)),
                            Decimal(str(metrics["total_fees"] or 0)))

    def _currency(self) -> str:
        """The quote currency of the traded symbols (the figures' unit) when they share
        one."""
        control = self.runtime.control
        currencies = set()
        for symbol in control.symbols if control is not None else ():
            try:
                currencies.add(split_symbol(symbol)[1])
            except ValueError:
                continue
        return currencies.pop() if len(currencies) == 1 else "(quote currency)"
