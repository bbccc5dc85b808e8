"""A test plugin that implements every hook of ``arbotd.hookspecs`` and records each call.

``calls`` lists ``(hook name, keyword arguments)`` in the order the hooks were called;
``called(name)`` gives the arguments of each call of one hook. What it contributes is inert:
an exchange whose feed never sends a quote, a strategy that never signals, a risk check that
accepts everything, an executor that refuses to trade, a storage that keeps records in lists,
and a service that runs until the daemon stops.

The ``everything`` fixture loads a fresh copy for each test; ``installed_everything``
installs it as the distribution ``arbotd-test-everything`` with the entry point
``everything``.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

import arbotd

calls: list[tuple[str, dict[str, Any]]] = []
services: list[RecordingService] = []


def called(hook: str) -> list[dict[str, Any]]:
    """The keyword arguments of every call of ``hook`` so far."""
    return [arguments for name, arguments in calls if name == hook]


@attrs.frozen
class EverythingConfig:
    """``[everything]``"""

    greeting: str = arbotd.setting("hello")
    level: float = arbotd.setting(1.0, ge=0, le=10)


@attrs.frozen
class QuietExchange:
    name: str = "everywhere"
    taker_fee: float = 0.001
    premium_baseline: float = 0.0

    async def stream_quotes(
        self, symbols: Any, sink: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await trio.sleep_forever()

    def feed_status(self) -> arbotd.FeedStatus:
        return arbotd.FeedStatus(connected=True)


@attrs.frozen
class NeverStrategy:
    name: str = "never"
    symbols: tuple[str, ...] = ("BTCUSDT",)

    def evaluate(self, quote: Any, quotes: Any, market: Any) -> list[Any]:
        return []


@attrs.frozen
class AcceptEverything:
    name: str = "accept_everything"

    def check(self, signal: Any) -> str | None:
        return None

    def limits(self) -> list[arbotd.LimitUse]:
        return []


@attrs.frozen
class RefusingExecutor:
    mode: str = "simulation"

    async def place_order(self, order: Any) -> Any:
        raise arbotd.PermanentExchangeError("everywhere", "the test executor does not trade")

    async def query_order(self, order: Any) -> Any:
        raise arbotd.PermanentExchangeError("everywhere", "the test executor does not trade")

    def reference_price(self, exchange: str, symbol: str, side: str) -> float | None:
        return None


@attrs.define
class ListStorage:
    """A storage that keeps records in lists (the whole ``arbotd.Storage`` protocol)."""

    signals: list[Any] = attrs.field(factory=list)
    trades: list[Any] = attrs.field(factory=list)
    quotes: list[Any] = attrs.field(factory=list)
    funding: list[Any] = attrs.field(factory=list)
    equity: list[Any] = attrs.field(factory=list)
    state: str = "created"

    async def open(self) -> arbotd.StoredState:
        self.state = "open"
        return arbotd.StoredState()

    async def close(self) -> None:
        self.state = "closed"

    async def flush(self) -> None:
        pass

    def observe_quote(self, quote: Any) -> None:
        self.quotes.append(quote)

    def record_signal(self, signal: Any) -> None:
        self.signals.append(signal)

    def record_trade(self, trade: Any) -> None:
        self.trades.append(trade)

    def record_funding(self, exchange: str, asset: str, amount: Any, timestamp: float) -> None:
        self.funding.append((exchange, asset, amount, timestamp))

    def record_equity(self, timestamp: float, equity_usd: float, balances: Any) -> None:
        self.equity.append((timestamp, equity_usd, balances))

    def backlog(self) -> int:
        return 0


class RecordingService:
    """Runs from ``nursery.start`` until ``runtime.shutdown_requested``; ``state`` says
    where it is."""

    name = "everything-service"

    def __init__(self, runtime: arbotd.Runtime) -> None:
        self.runtime = runtime
        self.state = "created"

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.state = "running"
        task_status.started()
        await self.runtime.shutdown_requested.wait()
        self.state = "stopped"


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    calls.append(("register_config_sections", {}))
    return {"everything": EverythingConfig}


@arbotd.hookimpl
def configure(config: arbotd.Config, runtime: arbotd.Runtime) -> None:
    calls.append(("configure", {"config": config, "runtime": runtime}))


@arbotd.hookimpl
def provide_storage(config: arbotd.Config, runtime: arbotd.Runtime) -> ListStorage:
    calls.append(("provide_storage", {"config": config, "runtime": runtime}))
    return ListStorage()


@arbotd.hookimpl
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime) -> list[QuietExchange]:
    calls.append(("register_exchanges", {"config": config, "runtime": runtime}))
    return [QuietExchange()]


@arbotd.hookimpl
def register_accounts(config: arbotd.Config, runtime: arbotd.Runtime) -> list[object]:
    calls.append(("register_accounts", {"config": config, "runtime": runtime}))
    return []


@arbotd.hookimpl
def register_strategies(config: arbotd.Config) -> list[NeverStrategy]:
    calls.append(("register_strategies", {"config": config}))
    return [NeverStrategy()]


@arbotd.hookimpl
def register_risk_checks(
    config: arbotd.Config, runtime: arbotd.Runtime
) -> list[AcceptEverything]:
    calls.append(("register_risk_checks", {"config": config, "runtime": runtime}))
    return [AcceptEverything()]


@arbotd.hookimpl
def register_executors(config: arbotd.Config, runtime: arbotd.Runtime) -> list[RefusingExecutor]:
    calls.append(("register_executors", {"config": config, "runtime": runtime}))
    return [RefusingExecutor()]


@arbotd.hookimpl
def register_services(config: arbotd.Config, runtime: arbotd.Runtime) -> list[RecordingService]:
    calls.append(("register_services", {"config": config, "runtime": runtime}))
    service = RecordingService(runtime)
    services.append(service)
    return [service]


@arbotd.hookimpl
def on_reload(
    old: arbotd.Config, new: arbotd.Config, changed: frozenset[str], runtime: arbotd.Runtime
) -> None:
    calls.append(("on_reload", {"old": old, "new": new, "changed": changed, "runtime": runtime}))


@arbotd.hookimpl
def shutdown(runtime: arbotd.Runtime) -> None:
    calls.append(("shutdown", {"runtime": runtime}))
