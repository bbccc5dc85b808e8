"""``arbotd sweep`` through the command line, on a Dask LocalCluster shared by the module
(``--scheduler``) where a test does not need its own: each run equals the single
``arbotd backtest`` of its configuration byte for byte, keys and values are checked
before any run, walk-forward splits, a worker killed mid-sweep, and resuming an
interrupted sweep. The Dask tests are marked slow: a cluster and its worker processes
take seconds to start on a loaded machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from arbotd import update_config_file
from arbotd._cli import main
from arbotd_replay import DataProblems, QuoteFileReader, QuoteFileWriter

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "contrib" / "data" / "sample-quotes.csv.gz"
SHIPPED_CONFIG = ROOT / "etc" / "arbot.toml"
QUOTES = 10_000
GRID = ["--grid", "arbitrage.min_profit_threshold=0.001,0.003",
        "--grid", "arbitrage.cooldown_seconds=5,30"]

pytestmark = pytest.mark.usefixtures("isolated_logging")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sample's first quotes: a few seconds of three venues."""
    path = tmp_path_factory.mktemp("sweep-data") / "quotes.csv.gz"
    writer = QuoteFileWriter(path, reorder_seconds=0.0)
    written = 0
    for batch in QuoteFileReader(SAMPLE, DataProblems()).batches():
        for quote in batch[:QUOTES - written]:
            writer.write(quote)
        written = min(QUOTES, written + len(batch))
        if written >= QUOTES:
            break
    writer.close()
    return path


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def sweep(capsys: pytest.CaptureFixture[str], *args: str, config: Path = SHIPPED_CONFIG
          ) -> tuple[int, str, str]:
    status = main(["-c", str(config), "sweep", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def backtest_report(capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path,
                    params: dict[str, Any], name: str, *args: str) -> Path:
    """The single ``arbotd backtest`` of the shipped configuration with ``params`` written
    into it, its report in a directory of its own."""
    config = tmp_path / f"{name}.toml"
    config.write_text(SHIPPED_CONFIG.read_text())
    update_config_file(config, params)
    report = tmp_path / name
    status = main(["-c", str(config), "backtest", "--data", str(data), "--report",
                   str(report), *args])
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()
    return report


def results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def logged_keys(out: Path) -> list[str]:
    return [json.loads(line)["key"] for line in
            (out / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_each_run_equals_its_single_backtest_byte_for_byte(
        tmp_path: Path, data: Path, scheduler: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    status, printed, err = sweep(capsys, "--data", str(data), *GRID, "--scheduler",
                                 scheduler, "--reports", "--out", str(out))
    assert status == 0, err
    assert "[4/4]" in err  # a line per finished run
    found = results(out)
    assert found["keys"] == ["arbitrage.min_profit_threshold", "arbitrage.cooldown_seconds"]
    runs = found["runs"]
    assert [r["rank"] for r in runs] == [1, 2, 3, 4]
    assert sorted(tuple(r["params"].values()) for r in runs) == [
        (0.001, 5.0), (0.001, 30.0), (0.003, 5.0), (0.003, 30.0)]
    nets = [r["all"]["metrics"]["net_profit"] for r in runs]
    assert nets == sorted(nets, reverse=True)
    assert len(set(nets)) > 1  # the parameters matter on this data
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "results.csv").read_text().count("\n") == 5
    assert "rank" in printed and "min_profit_threshold" in printed
    for place, run in enumerate(runs):
        single = backtest_report(capsys, tmp_path, data, run["params"], f"single{place}")
        swept = out / "runs" / run["all"]["key"]
        names = sorted(p.name for p in single.iterdir())
        assert names == sorted(p.name for p in swept.iterdir())
        for name in names:
            assert (swept / name).read_bytes() == (single / name).read_bytes(), name
        assert json.loads((single / "metrics.json").read_text()) == run["all"]["metrics"]


def test_keys_and_values_are_checked_before_any_run(
        tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    status, _, err = sweep(capsys, "--data", str(data), "--grid",
                           "arbitrage.min_profit_treshold=0.001,0.002", "--out", str(out))
    assert status == 1
    assert "arbitrage.min_profit_treshold: unknown configuration key (did you mean " \
           "'arbitrage.min_profit_threshold'?)" in err
    status, _, err = sweep(capsys, "--data", str(data), "--grid",
                           "arbitrage.min_profit_threshold=0.5:1.5:0.5", "--out", str(out))
    assert status == 1
    assert "arbitrage.min_profit_threshold" in err and "1.5" in err
    status, _, err = sweep(capsys, "--data", str(data), "--grid",
                           "arbitrage.max_trades_per_hour=1.5", "--out", str(out))
    assert status == 1
    assert "arbitrage.max_trades_per_hour: expected a whole number, got '1.5'" in err
    params = tmp_path / "params.toml"
    params.write_text("[grid]\narbitrage.trend_filter_mode = ['both', 'sideways']\n")
    status, _, err = sweep(capsys, "--data", str(data), "--params", str(params),
                           "--out", str(out))
    assert status == 1
    assert "arbitrage.trend_filter_mode" in err and "sideways" in err
    assert not out.exists()  # nothing ran


@pytest.mark.slow
def test_walk_forward_chooses_in_sample_and_reports_out_of_sample(
        tmp_path: Path, data: Path, scheduler: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    quotes = [q for batch in QuoteFileReader(data, DataProblems()).batches() for q in batch]
    split = quotes[len(quotes) // 2].received_ts
    out = tmp_path / "sweep"
    params = tmp_path / "params.toml"
    params.write_text("[grid]\narbitrage.cooldown_seconds = [1, 30]\n")
    status, printed, err = sweep(capsys, "--data", str(data), "--params", str(params),
                                 "--split", str(split), "--scheduler", scheduler,
                                 "--out", str(out))
    assert status == 0, err
    found = results(out)
    assert found["ranked_on"] == "in"
    runs = found["runs"]
    assert len(runs) == 2 and all({"in", "out"} <= set(r) for r in runs)
    ins = [r["in"]["objective"] for r in runs]
    assert ins == sorted(ins, reverse=True)
    assert "chosen in sample: arbitrage.cooldown_seconds=" in printed
    for place, run in enumerate(runs):
        single_in = backtest_report(capsys, tmp_path, data, run["params"], f"in{place}",
                                    "--end", repr(split))
        single_out = backtest_report(capsys, tmp_path, data, run["params"], f"out{place}",
                                     "--start", repr(split))
        assert json.loads((single_in / "metrics.json").read_text()) == run["in"]["metrics"]
        assert json.loads((single_out / "metrics.json").read_text()) == run["out"]["metrics"]
    # A fraction of the data's period: the split falls at its middle.
    out2 = tmp_path / "sweep2"
    status, _, err = sweep(capsys, "--data", str(data), "--params", str(params),
                           "--walk-forward", "0.5", "--scheduler", scheduler,
                           "--out", str(out2))
    assert status == 0, err
    middle = (quotes[0].received_ts + quotes[-1].received_ts) / 2
    in_sample = results(out2)["runs"][0]["in"]["metrics"]
    out_sample = results(out2)["runs"][0]["out"]["metrics"]
    assert in_sample["quotes"] + out_sample["quotes"] == len(quotes)
    assert in_sample["quotes"] == sum(1 for q in quotes if q.received_ts < middle)


@pytest.mark.slow
def test_the_local_cluster_spends_no_cpu_on_what_a_sweep_does_not_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a worker process per core, what Dask does beside the runs is taken from them:
    the sweep's own cluster has no stack profiler sampling its runs every 10 ms, and its
    servers time their event loops once a second, not fifty times; and its workers keep
    the memory a run frees for the next instead of handing it back to the system at once
    (a page fault for every page of every batch allocated again)."""
    from distributed import Client

    # A nanny sets its worker's variables in its own process's environment, which its
    # later workers inherit: a plain LocalCluster of another test in this process left
    # Dask's MALLOC_TRIM_THRESHOLD_ here. (`arbotd sweep` starts no other cluster; a
    # variable its user exports is theirs to keep.)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)

    from arbotd_replay.sweep import local_cluster

    def worker_callbacks(dask_worker: Any) -> dict[str, float]:
        return {name: pc.callback_time for name, pc in dask_worker.periodic_callbacks.items()}

    def page_faults_of_churn() -> int:
        """Page faults of allocating, touching and freeing 1 MiB 200 times: some 51,000
        where freed memory goes straight back to the system."""
        import resource

        import numpy
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(200):
            block = numpy.ones(1 << 17)
            del block
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    cluster = local_cluster(1)
    try:
        with Client(cluster) as client:
            [callbacks] = client.run(worker_callbacks).values()
            [environ] = client.run(lambda: dict(os.environ)).values()
            [faults] = client.run(page_faults_of_churn).values()
        assert "MALLOC_TRIM_THRESHOLD_" not in environ
        assert environ.get("OMP_NUM_THREADS") == "1"   # Dask's other settings kept
        assert faults < 5_000, faults
        assert "profile" not in callbacks and "profile-cycle" not in callbacks
        assert callbacks["tick"] >= 1000  # ms
        assert cluster.scheduler.periodic_callbacks["tick"].callback_time >= 1000
        assert all(nanny.periodic_callbacks["tick"].callback_time >= 1000
                   for nanny in cluster.workers.values())
    finally:
        cluster.close()


def test_the_readme_gives_cluster_workers_the_local_clusters_settings() -> None:
    """The Dask settings README tells an existing cluster's workers to use are the ones
    the sweep's own cluster runs with."""
    import dask
    import distributed  # noqa: F401 (its defaults, into dask.config)
    import yaml

    from arbotd_replay.sweep import QUIET_CLUSTER, TRIM_VARIABLE

    readme = (ROOT / "README.md").read_text()
    opening = "cat > ~/.config/dask/arbotd.yaml <<'EOF'\n"
    assert opening in readme
    text = readme.split(opening, 1)[1].split("\nEOF\n", 1)[0]
    # As Dask reads a file of its configuration directory: merged into the defaults.
    config = dask.config.merge(dask.config.config, yaml.safe_load(text))
    for key, value in QUIET_CLUSTER.items():
        assert dask.config.get(key, config=config) == value, key
    environ = dask.config.get("distributed.nanny.pre-spawn-environ", config=config)
    assert environ[TRIM_VARIABLE] is None   # a nanny leaves a None variable unset
    assert environ["OMP_NUM_THREADS"] == 1


def sweep_process(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "arbotd", "-c", str(config), "sweep", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_has_its_run_done_elsewhere(
        tmp_path: Path, data: Path, scheduler: str) -> None:
    from distributed import Client

    out = tmp_path / "sweep"
    process = sweep_process(SHIPPED_CONFIG, "--data", str(data), *GRID, "--scheduler",
                            scheduler, "--out", str(out))
    try:
        with Client(scheduler) as client:
            busy: list[str] = []

            def running() -> bool:
                busy[:] = [w for w, keys in client.processing().items()
                           if any("arbotd-run-" in str(k) for k in keys)]
                return bool(busy)

            wait_for(running, "a run to start")
            pids = client.run(os.getpid, workers=busy[:1])
            os.kill(pids[busy[0]], signal.SIGKILL)
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr
            wait_for(lambda: len(client.scheduler_info()["workers"]) == 2,
                     "the nanny to restart the worker")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    keys = logged_keys(out)
    assert len(keys) == len(set(keys)) == 4
    assert sorted(r["all"]["key"] for r in results(out)["runs"]) == sorted(keys)
    assert all(r["all"]["metrics"] is not None for r in results(out)["runs"])


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_where_it_stopped(
        tmp_path: Path, data: Path, scheduler: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    grid = ["--grid", "arbitrage.cooldown_seconds=1,2,3,4,5,6"]
    process = sweep_process(SHIPPED_CONFIG, "--data", str(data), *grid, "--workers", "1",
                            "--out", str(out))
    log = out / "results.jsonl"
    children: set[psutil.Process] = set()
    try:
        def started_some() -> bool:
            children.update(psutil.Process(process.pid).children(recursive=True))
            return log.exists() and log.read_text().count("\n") >= 1

        wait_for(started_some, "a first run to finish")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "--resume runs the rest" in stderr
    assert children  # the local cluster's worker process ...
    wait_for(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE
                             for c in children), "the workers to end", timeout=30)
    done_before = logged_keys(out)
    assert 1 <= len(done_before) < 6
    # The same command again refuses to overwrite; --resume runs the rest only.
    status, _, err = sweep(capsys, "--data", str(data), *grid, "--scheduler", scheduler,
                           "--out", str(out))
    assert status == 1 and "--resume" in err
    status, _, err = sweep(capsys, "--data", str(data), *grid, "--scheduler", scheduler,
                           "--out", str(out), "--resume")
    assert status == 0, err
    assert f"{6 - len(done_before)} runs to do ({len(done_before)} already done)" in err
    keys = logged_keys(out)
    assert keys[:len(done_before)] == done_before
    assert len(keys) == len(set(keys)) == 6
    assert len(results(out)["runs"]) == 6
