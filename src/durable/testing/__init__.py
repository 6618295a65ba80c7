"""Testing tools: a time-skipping test environment, replay checks, determinism checks.

- ``TestEnv`` (``_env``): workflows on a fresh embedded SQLite store with a worker and
  a virtual clock; idle time is skipped, so a 30-day ``ctx.sleep`` takes milliseconds.
  ``mock_activity`` replaces an activity for the environment's runs.
- ``replay`` and ``History`` (``_replay``, ``_history``): check new workflow code against
  a recorded run (``durable runs export`` writes one) without executing anything.
- ``strict_determinism``: report clock reads, random draws and sleeps in workflow code
  as ``durable.DeterminismWarning`` (``TestEnv`` turns it on).

See docs/testing.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..runtime import strict
from ._env import MockedActivity as MockedActivity
from ._env import TestEnv as TestEnv
from ._history import History as History
from ._replay import ReplayResult as ReplayResult
from ._replay import replay as replay


@contextlib.contextmanager
def strict_determinism() -> Iterator[None]:
    """Inside this block, workflow code that reads the clock, draws random numbers, or
    sleeps on the event loop gets a ``durable.DeterminismWarning`` naming the
    replacement (``ctx.now()``, ``ctx.random()``, ``ctx.uuid4()``, ``ctx.sleep()``).

    Process-wide: it applies to every App's workers. ``TestEnv`` turns it on for its
    lifetime; use this with an App of your own. Network I/O in workflow code is
    reported always. Workflow code runs several times slower meanwhile (a profiler
    watches it).

    Example::

        with durable.testing.strict_determinism():
            async with app.worker():
                await (await app.start(order, "o-1")).result()
    """
    with strict():
        yield


__all__ = [
    "History",
    "MockedActivity",
    "ReplayResult",
    "TestEnv",
    "replay",
    "strict_determinism",
]
