"""The hooks of the builtin ``replay`` plugin: the ``[backtest]`` table, the backtest
runner (``runtime.plugin_state["backtest"]``), the service that runs the API's
backtests, and the wrappers that turn a runtime into a backtest's or a recorder's.

The wrappers (pluggy ``wrapper=True``) change nothing in the daemon. In a backtest's
runtime (``plugin_state["replay.session"]`` set) they put the replay venues in place of
every exchange the other plugins provide (learning the fees those would have had), a
:class:`~arbotd_replay.stores.ResultStore` in place of the configured storage, and add a
paper executor in ``backtest`` mode unless a plugin provides one. In the recorder's
runtime (``plugin_state["replay.recording"]``) the storage is the quote file.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import attrs
import trio

import arbotd
from arbotd_replay.backtest import SESSION_KEY
from arbotd_replay.config import BacktestConfig
from arbotd_replay.runner import RECORDING_KEY, RUNNER_KEY, BacktestRunner
from arbotd_sim.config import PaperConfig
from arbotd_sim.paper import PaperExecutor


@arbotd.hookimpl
def register_config_sections() -> dict[str, type]:
    return {"backtest": BacktestConfig}


@arbotd.hookimpl
def configure(runtime: arbotd.Runtime) -> None:
    runtime.plugin_state.setdefault(RUNNER_KEY, BacktestRunner(runtime))


@arbotd.hookimpl(wrapper=True)
def provide_storage(runtime: arbotd.Runtime) -> Generator[None, Any, Any]:
    storage = yield
    session = runtime.plugin_state.get(SESSION_KEY)
    if session is not None:
        return session.store
    return runtime.plugin_state.get(RECORDING_KEY, storage)


@arbotd.hookimpl(wrapper=True)
def register_exchanges(config: arbotd.Config, runtime: arbotd.Runtime
                       ) -> Generator[None, Any, Any]:
    batches = yield
    session = runtime.plugin_state.get(SESSION_KEY)
    if session is None:
        return batches
    others = [adapter for batch in batches for adapter in batch or ()]
    return [session.adapters(others, config)]


@arbotd.hookimpl(wrapper=True)
def register_executors(config: arbotd.Config, runtime: arbotd.Runtime
                       ) -> Generator[None, Any, Any]:
    batches = yield
    session = runtime.plugin_state.get(SESSION_KEY)
    if session is None:
        return batches
    if any(executor.mode == "backtest" for batch in batches for executor in batch or ()):
        return batches
    # Fills as in simulation mode ([simulation.paper]), on the backtest's accounts.
    paper = getattr(config.get("simulation"), "paper", None) or PaperConfig()
    symbols = list(dict.fromkeys(s for st in runtime.strategies for s in st.symbols))
    settings = attrs.evolve(paper, balances=session.quote_balances(symbols),
                            coin_balance_usd=session.coin_balance_usd)
    executor = PaperExecutor(settings, runtime, seed=session.seed,
                             reference_prices=session.first_prices, mode="backtest",
                             reference_rates=session.first_rates)
    return [*batches, [executor]]


@arbotd.hookimpl
def register_services(runtime: arbotd.Runtime) -> list[BacktestService]:
    runner = runtime.plugin_state.get(RUNNER_KEY)
    return [BacktestService(runner, runtime)] if isinstance(runner, BacktestRunner) else []


class BacktestService:
    """Owns the nursery the API's backtests run in. When the daemon stops, running
    backtests are cancelled (they stop within a batch of quotes) and waited for."""

    name = "backtests"

    def __init__(self, runner: BacktestRunner, runtime: arbotd.Runtime) -> None:
        self.runner = runner
        self.runtime = runtime

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.runner.attach(nursery)
            task_status.started()
            await self.runtime.shutdown_requested.wait()
            self.runner.attach(None)
            self.runner.cancel_all()
