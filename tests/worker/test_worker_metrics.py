"""Worker metrics: a worker serves its own Prometheus figures on ``/metrics``."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

import durable
from durable.worker._metrics import ATTEMPT_BUCKETS

pytestmark = pytest.mark.anyio

HERE = Path(__file__).parent


@durable.activity(name="metrics.add")
async def add(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return x + 1


@durable.workflow(name="metrics.steps")
async def steps(ctx: durable.Context, x: int) -> int:
    total = await add(await add(x))
    with contextlib.suppress(durable.ActivityError):  # two failed attempts: retry, error
        await ctx.run(add, -1, retry=durable.RetryPolicy(max_attempts=2, initial_interval=0.01))
    return total


@durable.workflow(name="metrics.fails")
async def fails(ctx: durable.Context) -> int:
    raise RuntimeError("no")


def scrape(port: int) -> dict[str, Any]:
    """The families served on ``port``, by name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any, suffix: str = "") -> dict[tuple[tuple[str, str], ...], float]:
    wanted = family.name + suffix
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == wanted}


async def test_a_worker_serves_attempt_latency_and_run_counts(app: durable.App):
    metrics = durable.WorkerMetrics(port=0)
    async with app.worker(poll_interval=0.05, metrics=metrics):
        port = metrics.port
        assert port is not None and port > 0
        handles = [await app.start(steps, n) for n in (1, 2)]
        failing = await app.start(fails)
        assert [await h.result(timeout=15) for h in handles] == [3, 4]
        with pytest.raises(durable.WorkflowFailed):
            await failing.result(timeout=15)
        with anyio.fail_after(10):  # a run is counted once its worker has let it go
            while sum(samples(scrape(port)["durable_worker_runs_finished"], "_total").values()) < 3:
                await anyio.sleep(0.02)
        families = scrape(port)

    attempts = families["durable_worker_activity_attempt_seconds"]
    assert attempts.type == "histogram"
    counts = samples(attempts, "_count")
    base = (("activity", "metrics.add"), ("workflow", "metrics.steps"))
    assert counts == {
        (*base[:1], ("outcome", "ok"), *base[1:]): 4.0,
        (*base[:1], ("outcome", "retry"), *base[1:]): 2.0,
        (*base[:1], ("outcome", "error"), *base[1:]): 2.0,
    }
    buckets = {float(s.labels["le"]) for s in attempts.samples if s.name.endswith("_bucket")}
    assert buckets == {*ATTEMPT_BUCKETS, float("inf")}
    assert all(v >= 0 for v in samples(attempts, "_sum").values())

    claimed = samples(families["durable_worker_runs_claimed"], "_total")
    assert claimed == {(("workflow", "metrics.steps"),): 2.0, (("workflow", "metrics.fails"),): 1.0}
    finished = samples(families["durable_worker_runs_finished"], "_total")
    assert finished == {
        (("status", "COMPLETED"), ("workflow", "metrics.steps")): 2.0,
        (("status", "FAILED"), ("workflow", "metrics.fails")): 1.0,
    }
    assert samples(families["durable_worker_lease_losses"], "_total") == {(): 0.0}
    assert samples(families["durable_worker_runs_held"]) == {(): 0.0}


async def test_the_server_stops_with_the_worker(app: durable.App):
    metrics = durable.WorkerMetrics(port=0)
    async with app.worker(poll_interval=0.05, metrics=metrics):
        port = metrics.port
        assert port is not None
        assert "durable_worker_runs_held" in scrape(port)
    with pytest.raises(OSError):
        scrape(port)


async def test_metrics_without_a_port_fill_the_registry_given(app: durable.App):
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    metrics = durable.WorkerMetrics(registry=registry)
    async with app.worker(poll_interval=0.05, metrics=metrics):
        assert metrics.port is None
        assert await (await app.start(steps, 5)).result(timeout=15) == 7
    text = generate_latest(registry).decode()
    assert 'durable_worker_runs_claimed_total{workflow="metrics.steps"} 1.0' in text


async def test_a_busy_port_is_a_configuration_error(app: durable.App):
    first = durable.WorkerMetrics(port=0)
    async with app.worker(poll_interval=0.05, metrics=first):
        taken = durable.WorkerMetrics(port=first.port)
        with pytest.raises(durable.ConfigurationError, match=f"127.0.0.1:{first.port}"):
            await app.worker(metrics=taken).start()


def test_durable_worker_serves_metrics_on_its_port(dsn: str, tmp_path: Path):
    """``durable worker --metrics-port`` from the command line, scraped while it runs."""
    env = {**os.environ, "DURABLE_DSN": dsn, "PYTHONPATH": str(HERE),
           "CRASH_LOG": str(tmp_path / "side-effects.log")}  # fmt: skip
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "durable.cli", "worker", "crash_app:app",
               "--poll-interval", "0.1", "--metrics-port", "0"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        port = None
        for _ in range(300):
            found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log.read_text())
            if found:
                port = int(found.group(1))
                break
            assert proc.poll() is None, log.read_text()
            anyio.run(anyio.sleep, 0.05)
        assert port is not None, log.read_text()
        families = scrape(port)
        assert families["durable_worker_runs_held"].samples[0].value == 0.0
        assert "durable_worker_activity_attempt_seconds" in families
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()


NO_PROMETHEUS = """
import sys

class _NoPrometheus:  # as if prometheus-client were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "prometheus_client" or name.startswith("prometheus_client."):
            raise ImportError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _NoPrometheus())
"""


def test_without_prometheus_client_the_option_fails_with_an_install_hint(tmp_path: Path):
    (tmp_path / "sitecustomize.py").write_text(NO_PROMETHEUS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HERE)]),
           "DURABLE_DSN": f"sqlite:///{tmp_path / 'd.db'}"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "durable.cli", "worker", "crash_app:app", "--metrics-port", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "durable: worker metrics need the prometheus-client package: install it with: "
        "pip install 'durable[server]' (or pip install prometheus-client)"
    ]
