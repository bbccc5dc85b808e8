"""``GET /metrics``: the daemon's figures for Prometheus.

Each daemon has a registry of its own, not prometheus_client's process-wide default one:
several daemons may run in one process (the tests do), and none may report another's
figures. Almost everything is read from the daemon's state when Prometheus scrapes
(:class:`DaemonCollector`), so that measuring adds nothing to the paths that trade: the
engine only counts quotes per venue and times one quote in 64 from its receipt to its
decision. The API counts two things as they happen: requests by route, method and status
(after every answer, refusals included) and the WebSocket clients connected.

Every family is written at every scrape, with no sample where there is nothing to say
(no storage, no feed that counts its reconnects), so a dashboard's queries always name
metrics that exist. Money is in the quote currency of the symbols (USD for USDT pairs),
as in :mod:`arbotd.figures`; times are in seconds.

======================================  =========  ==========================================
metric                                  type       what
======================================  =========  ==========================================
arbotd_info{version,mode}               info       the version and the trading mode
arbotd_trading_enabled                  gauge      1 while trading is on
arbotd_emergency_stop                   gauge      1 while an emergency stop is in force
arbotd_quotes_total{exchange}           counter    quotes the engine received per venue
arbotd_feed_connected{exchange}         gauge      1 while the venue's market data is usable
arbotd_feed_last_update_age_seconds     gauge      time since the venue's latest quote
arbotd_feed_latency_seconds{exchange}   gauge      exchange event time to receipt, latest
arbotd_feed_reconnects_total{exchange}  counter    connections that ended and were reopened
arbotd_decision_latency_seconds         histogram  receipt of a quote to the decision on it
                                                   (one quote in 64)
arbotd_signals_total                    counter    opportunities found (signals)
arbotd_signal_rejections_total{reason}  counter    opportunities turned down, by reason
arbotd_trades_total{state}              counter    trades closed since the start, by state
arbotd_trades_active{state}             gauge      trades in flight, by state
arbotd_trades_today                     gauge      trades closed since 00:00 UTC
arbotd_realized_pnl                     gauge      realised net profit since the start
arbotd_realized_pnl_today               gauge      realised net profit since 00:00 UTC
arbotd_fees_paid_total                  counter    fees of the trades closed since the start
arbotd_open_exposure                    gauge      notional of the trades in flight
arbotd_equity_usd                       gauge      every balance at current prices (USD)
arbotd_risk_limit{limit}                gauge      each risk limit
arbotd_risk_limit_used{limit}           gauge      how much of it is used
arbotd_risk_limit_ratio{limit}          gauge      used / limit
arbotd_risk_limit_state{limit}          gauge      0 normal, 1 warning, 2 critical
arbotd_storage_backlog                  gauge      records waiting to be written
arbotd_storage_healthy                  gauge      0 from a failed write until one succeeds
arbotd_storage_write_errors_total       counter    failed writes since the start
arbotd_storage_dropped_total{kind}      counter    bars and quotes a full backlog shed
arbotd_api_requests_total{route,        counter    API answers; ``route`` is the route's
  method,status}                                   template (``unmatched``: no route took
                                                   the request, a 404 or 405)
arbotd_websocket_clients                gauge      WebSocket clients connected
process_*                               various    CPU, memory, open files of the process
======================================  =========  ==========================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from arbotd import FINAL_STATES, Runtime, TradeState, __version__
from arbotd.exchange import ProblemLog
from arbotd_api.routes.system import storage_status

__all__ = ["ApiMetrics", "DaemonCollector", "route_label"]

log = logging.getLogger(__name__)

_LIMIT_STATES = {"normal": 0, "warning": 1, "critical": 2}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OPEN_STATES = [state for state in TradeState if state not in FINAL_STATES]


def route_label(rule: str | None) -> str:
    """A request's ``route`` label: its route's template, never the path asked for (a
    client must not be able to make a new time series per request)."""
    return rule if rule is not None else "unmatched"


def method_label(method: str) -> str:
    """A request's ``method`` label: a method of HTTP's, or ``other`` (anything may come
    in the request line)."""
    return method if method in _METHODS else "other"


class ApiMetrics:
    """The registry of one daemon, and the two counts the API keeps as they happen.
    Lives as long as the daemon (a new listener after a reload keeps it)."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "arbotd_api_requests", "API answers, by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )
        self.websocket_clients = Gauge(
            "arbotd_websocket_clients", "WebSocket clients connected",
            registry=self.registry,
        )
        self.registry.register(DaemonCollector(runtime))
        ProcessCollector(registry=self.registry)

    def count_request(self, rule: str | None, method: str, status: int) -> None:
        self.requests.labels(route_label(rule), method_label(method), str(status)).inc()


def _gauge(name: str, documentation: str, value: float | None = None,
           labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """A gauge family with ``labels``, holding ``value`` (unlabelled) when given."""
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    if value is not None:
        family.add_metric([], value)
    return family


def _counter(name: str, documentation: str, value: float | None = None,
             labels: Iterable[str] = ()) -> CounterMetricFamily:
    """A counter family with ``labels``, holding ``value`` (unlabelled) when given."""
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    if value is not None:
        family.add_metric([], value)
    return family


class DaemonCollector:
    """Reads the running daemon's state at each scrape: engine, feeds, trading, risk
    limits and storage. A part that fails is left out of that scrape (and logged, at
    most once a minute), so that the others still reach Prometheus."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._problems = ProblemLog("metrics", log)

    def collect(self) -> Iterator[Metric]:
        parts: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("daemon", self._daemon),
            ("engine", self._engine),
            ("feeds", self._feeds),
            ("trades", self._trades),
            ("risk", self._risk),
            ("storage", self._storage),
        ]
        for name, part in parts:
            try:
                families = part()
            except Exception as err:
                self._problems.warning(name, "the %s figures could not be read: %s: %s",
                                       name, type(err).__name__, err)
                continue
            yield from families

    def _daemon(self) -> list[Metric]:
        runtime, control = self.runtime, self.runtime.control
        mode = (control.mode if control is not None else None) or runtime.config.daemon.mode
        info = InfoMetricFamily("arbotd", "The daemon's version and trading mode")
        info.add_metric([], {"version": __version__, "mode": mode})
        trading = control is not None and control.trading
        emergency = control is not None and control.emergency
        return [
            info,
            _gauge("arbotd_trading_enabled", "1 while trading is on", float(trading)),
            _gauge("arbotd_emergency_stop", "1 while an emergency stop is in force",
                   float(emergency)),
        ]

    def _engine(self) -> list[Metric]:
        engine = self.runtime.engine
        feeds = self.runtime.feeds
        quotes = _counter("arbotd_quotes", "Quotes the engine received, per venue",
                          labels=["exchange"])
        signals = _counter("arbotd_signals", "Opportunities found (signals)")
        rejections = _counter("arbotd_signal_rejections",
                              "Opportunities turned down, by reason", labels=["reason"])
        latency = HistogramMetricFamily(
            "arbotd_decision_latency_seconds",
            "Time from the receipt of a quote to the engine's decision on it (one quote "
            "in 64 is timed)")
        if engine is not None:
            counts = dict.fromkeys(feeds.adapters if feeds is not None else (), 0)
            counts.update(engine.quote_counts)
            for exchange, count in sorted(counts.items()):
                quotes.add_metric([exchange], count)
            signals.add_metric([], engine.signals_detected)
            for reason, count in sorted(engine.rejection_counts().items()):
                rejections.add_metric([reason], count)
            histogram = engine.decision_latency
            latency.add_metric(
                [], [(floatToGoString(bound), count)
                     for bound, count in histogram.cumulative()],
                sum_value=histogram.sum)
        return [quotes, signals, rejections, latency]

    def _feeds(self) -> list[Metric]:
        feeds = self.runtime.feeds
        connected = _gauge("arbotd_feed_connected",
                           "1 while the venue's market data is usable (connected, and "
                           "quotes arrived since)", labels=["exchange"])
        age = _gauge("arbotd_feed_last_update_age_seconds",
                     "Time since the venue's latest quote arrived", labels=["exchange"])
        latency = _gauge("arbotd_feed_latency_seconds",
                         "Exchange event time to local receipt, of the latest quote",
                         labels=["exchange"])
        reconnects = _counter("arbotd_feed_reconnects",
                              "Market data connections that ended and were opened again",
                              labels=["exchange"])
        if feeds is not None:
            now = self.runtime.clock()
            for name, status in sorted(feeds.statuses().items()):
                connected.add_metric([name], float(status.connected))
                if status.last_update is not None:
                    age.add_metric([name], max(0.0, now - status.last_update))
                if status.latency_ms is not None:
                    latency.add_metric([name], status.latency_ms / 1000.0)
                count = getattr(feeds.adapters.get(name), "reconnects", None)
                if isinstance(count, int):
                    reconnects.add_metric([name], count)
        return [connected, age, latency, reconnects]

    def _trades(self) -> list[Metric]:
        control = self.runtime.control
        closed = _counter("arbotd_trades", "Trades closed since the daemon started, by "
                          "final state", labels=["state"])
        active = _gauge("arbotd_trades_active", "Trades in flight, by state",
                        labels=["state"])
        families: list[Metric] = [closed, active]
        if control is None:
            return families
        stats = control.stats
        stats.roll(control.clock())
        for state in sorted(FINAL_STATES):
            closed.add_metric([str(state)], stats.closed_by_state.get(str(state), 0))
        in_flight = list(control.active.values())
        for state in _OPEN_STATES:
            active.add_metric([str(state)], sum(1 for t in in_flight if t.state is state))
        exposure = sum(float(t.quantity * t.planned_buy_price) for t in in_flight)
        families += [
            _gauge("arbotd_trades_today", "Trades closed since 00:00 UTC",
                   stats.trades_today),
            _gauge("arbotd_realized_pnl", "Realised net profit of the trades closed since "
                   "the daemon started (quote currency)", float(stats.realized_total)),
            _gauge("arbotd_realized_pnl_today", "Realised net profit of the trades closed "
                   "since 00:00 UTC (quote currency)", float(stats.realized_today)),
            _counter("arbotd_fees_paid", "Fees of the trades closed since the daemon "
                     "started (quote currency)", float(stats.fees_total)),
            _gauge("arbotd_open_exposure", "Notional of the trades in flight at their "
                   "planned buy price (quote currency)", exposure),
        ]
        equity = _gauge("arbotd_equity_usd", "Every balance at current prices (USD); "
                        "absent while a held asset has no price")
        engine = self.runtime.engine
        ledger = self.runtime.ledger
        if engine is not None and any(True for _ in ledger.balances()):
            value = ledger.full_value_usd(engine.price_usd)
            if value is not None:
                equity.add_metric([], value)
        families.append(equity)
        return families

    def _risk(self) -> list[Metric]:
        control = self.runtime.control
        limit = _gauge("arbotd_risk_limit", "Each risk limit", labels=["limit"])
        used = _gauge("arbotd_risk_limit_used", "How much of each risk limit is used",
                      labels=["limit"])
        ratio = _gauge("arbotd_risk_limit_ratio", "Use of each risk limit over the limit",
                       labels=["limit"])
        state = _gauge("arbotd_risk_limit_state",
                       "Each risk limit's state: 0 normal, 1 warning (80 % used), 2 "
                       "critical (reached)", labels=["limit"])
        if control is not None:
            for check in control.risk_checks:
                for use in check.limits():
                    limit.add_metric([use.name], use.limit)
                    used.add_metric([use.name], use.current)
                    ratio.add_metric([use.name], use.ratio)
                    state.add_metric([use.name], _LIMIT_STATES[use.status])
        return [limit, used, ratio, state]

    def _storage(self) -> list[Metric]:
        storage = self.runtime.storage
        backlog = _gauge("arbotd_storage_backlog", "Records waiting to be written")
        healthy = _gauge("arbotd_storage_healthy",
                         "0 from a failed write until a write succeeds again, else 1")
        errors = _counter("arbotd_storage_write_errors",
                          "Writes to the database that failed since the daemon started")
        dropped = _counter("arbotd_storage_dropped", "Price bars and raw quotes shed "
                           "because the backlog was full", labels=["kind"])
        if storage is not None:
            backlog.add_metric([], storage.backlog())
            status = storage_status(storage) or {}
            if "healthy" in status:
                healthy.add_metric([], float(bool(status["healthy"])))
            if isinstance(status.get("write_errors"), int):
                errors.add_metric([], status["write_errors"])
            for kind in ("bars", "quotes"):
                count = status.get(f"dropped_{kind}")
                if isinstance(count, int):
                    dropped.add_metric([kind], count)
        return [backlog, healthy, errors, dropped]

