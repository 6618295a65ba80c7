"""The results of runs that completed in this process, kept for a while in memory.

A client that starts runs and awaits their results in the process that runs them (a
fan-out served by the App's own worker) would read each result back from the database
after the run's last commit wrote it. The executor that committed a run's completion
records its result here, through the store both share, and ``Handle.result`` takes it
from here without a round trip.

Only COMPLETED results are kept: they never change (a retry starts from FAILED, a fork
is a new run). A run created here under the id of a pruned one makes the old entry go.
The memory is bounded: the most recent ``MAX_RUNS`` results of at most
``MAX_RESULT_CHARS`` characters each, for ``MAX_AGE`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

MAX_RUNS = 4096
MAX_RESULT_CHARS = 4096
MAX_AGE = 300.0
"""Seconds a result is served from memory: far less than any retention that would let
another process prune the run and start a new one under its id meanwhile."""


class CompletedResults:
    """Run id → its workflow and the JSON text of its result, for runs completed
    through this store."""

    def __init__(self) -> None:
        self._results: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, run_id: str, workflow: str, result: str | None) -> None:
        """Run ``run_id`` of ``workflow`` (as stored) committed COMPLETED with ``result``."""
        text = "null" if result is None else result
        if len(text) > MAX_RESULT_CHARS:
            return
        with self._lock:
            results = self._results
            results[run_id] = (workflow, text, time.monotonic())
            if len(results) > MAX_RUNS:
                results.popitem(last=False)

    def get(self, run_id: str) -> tuple[str, str] | None:
        """The workflow and result of ``run_id`` if it completed here recently."""
        found = self._results.get(run_id)
        if found is None or time.monotonic() - found[2] > MAX_AGE:
            return None
        return found[0], found[1]

    def forget(self, run_id: str) -> None:
        """A new run took the id ``run_id`` (its predecessor was pruned)."""
        if run_id in self._results:
            with self._lock:
                self._results.pop(run_id, None)
