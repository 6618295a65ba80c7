"""Worker metrics: this process's own Prometheus figures, served from the worker.

The REST server's ``/metrics`` reads fleet figures from the database; what only the
process that ran the code knows lives here: how long each activity attempt took (the
code-first step latency the journal does not keep), runs claimed and finished, leases
lost, runs held. ``prometheus-client`` is imported only when metrics are asked for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError

ATTEMPT_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
"""Activity attempt buckets, in seconds: from in-memory calls to hour-long jobs."""

FINISHED = ("COMPLETED", "FAILED", "CANCELLED")

INSTALL_HINT = "install it with: pip install 'durable[server]' (or pip install prometheus-client)"


class WorkerMetrics:
    """Prometheus figures of the workers of this process; served on ``port`` if given.

    Pass it to ``app.worker(metrics=...)`` (``durable worker --metrics-port`` does). With
    ``port`` the worker serves ``GET /metrics`` on ``host:port`` while it runs (port 0
    picks a free one: read :attr:`port` once the worker started); without, add
    :attr:`registry` to an exporter of your own, or pass ``registry`` (for example
    ``prometheus_client.REGISTRY``) to have the figures there.

    Figures (all ``durable_worker_*``): ``activity_attempt_seconds`` (histogram by
    ``workflow``, ``activity``, ``outcome`` = ok/retry/error), ``runs_claimed_total``
    (by ``workflow``), ``runs_finished_total`` (by ``workflow``, ``status``),
    ``lease_losses_total`` and ``runs_held``.

    Example::

        metrics = durable.WorkerMetrics(port=9100, host="0.0.0.0")
        async with app.worker(metrics=metrics):
            ...

    Raises:
        durable.ConfigurationError: ``prometheus-client`` is not installed.
    """

    def __init__(
        self, *, port: int | None = None, host: str = "127.0.0.1", registry: Any = None
    ) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise ConfigurationError(
                f"worker metrics need the prometheus-client package: {INSTALL_HINT}"
            ) from None
        if port is not None and not 0 <= port <= 65535:
            raise ConfigurationError(f"metrics port must be 0..65535, got {port}")
        self.host = host
        self.port = port
        """The port served on (the one picked when 0 was asked, once serving)."""
        self.registry: Any = registry if registry is not None else prom.CollectorRegistry()
        """The ``prometheus_client`` registry holding the figures."""
        self._attempts = prom.Histogram(
            "durable_worker_activity_attempt_seconds",
            "How long activity attempts took in this process, from start to outcome (with "
            "any wait for a queue slot), by workflow, activity and outcome (ok, retry, error).",
            ["workflow", "activity", "outcome"],
            buckets=ATTEMPT_BUCKETS,
            registry=self.registry,
        )
        self._claimed = prom.Counter(
            "durable_worker_runs_claimed",
            "Runs this process's workers claimed (each claim of a run counts), by workflow.",
            ["workflow"],
            registry=self.registry,
        )
        self._finished = prom.Counter(
            "durable_worker_runs_finished",
            "Runs this process's workers ended, by workflow and status (COMPLETED, FAILED, "
            "CANCELLED).",
            ["workflow", "status"],
            registry=self.registry,
        )
        self._lease_losses = prom.Counter(
            "durable_worker_lease_losses",
            "Runs whose lease another worker took over while this process executed them.",
            registry=self.registry,
        )
        held = prom.Gauge(
            "durable_worker_runs_held",
            "Runs this process's workers hold (leased and executing) now.",
            registry=self.registry,
        )
        self._holders: list[Callable[[], int]] = []
        held.set_function(lambda: float(sum(count() for count in self._holders)))
        self._children: dict[tuple[str, str, str], Any] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- observations (cheap: one lookup and one observe) ---------------------------
    def observe_attempt(self, workflow: str, activity: str, outcome: str, seconds: float) -> None:
        """One activity attempt ended with ``outcome`` after ``seconds``."""
        key = (workflow, activity, outcome)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._attempts.labels(*key)
        child.observe(seconds)

    def run_claimed(self, workflow: str) -> None:
        self._claimed.labels(workflow).inc()

    def run_left(self, workflow: str, state: str) -> None:
        """A worker stopped executing a run that ended in ``state`` (the run's log state)."""
        if state in FINISHED:
            self._finished.labels(workflow, state).inc()
        elif state == "LEASE_LOST":
            self._lease_losses.inc()

    # -- serving --------------------------------------------------------------------
    def attach(self, held: Callable[[], int]) -> None:
        """A worker starts: count its held runs; serve ``/metrics`` if a port was given."""
        if self.port is not None and self._server is None:
            from prometheus_client import start_http_server

            try:
                self._server, self._thread = start_http_server(
                    self.port, addr=self.host, registry=self.registry
                )
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot serve worker metrics on {self.host}:{self.port} ({exc}); "
                    "choose another --metrics-port"
                ) from None
            self.port = int(self._server.server_address[1])
        self._holders.append(held)

    async def detach(self, held: Callable[[], int]) -> None:
        """A worker stopped: stop serving once no worker uses these metrics."""
        if held in self._holders:
            self._holders.remove(held)
        if self._holders or self._server is None:
            return
        server, self._server = self._server, None
        await asyncio.to_thread(server.shutdown)
        server.server_close()
