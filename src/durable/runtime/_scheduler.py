"""A deterministic scheduler for the coroutines of one workflow run.

Tasks run one at a time in FIFO order until each awaits an unresolved DurableFuture;
when the executor resolves a future, the tasks waiting on it become ready again. Given
the same sequence of resolutions, the workflow makes the same calls in the same order,
which is what replay relies on.
"""

from __future__ import annotations

import contextlib
import functools
from collections import deque
from collections.abc import Coroutine
from typing import Any

from .._future import DurableFuture


class NonDurableAwait(TypeError):
    """Workflow code awaited something that is not a durable operation."""


class _Task:
    __slots__ = ("coro", "done", "name")

    def __init__(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self.coro = coro
        self.done: DurableFuture[Any] = DurableFuture(name)
        self.name = name


class Scheduler:
    """Runs workflow coroutines deterministically."""

    def __init__(self) -> None:
        self._ready: deque[tuple[_Task, BaseException | None]] = deque()
        self._tasks: list[_Task] = []

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> DurableFuture[Any]:
        """Schedule a coroutine; the returned future resolves with its outcome."""
        task = _Task(coro, name)
        self._tasks.append(task)
        self._ready.append((task, None))
        return task.done

    def run_until_blocked(self) -> None:
        """Step ready tasks until every live task waits on an unresolved future."""
        while self._ready:
            task, exc = self._ready.popleft()
            try:
                yielded = task.coro.send(None) if exc is None else task.coro.throw(exc)
            except StopIteration as stop:
                self._tasks.remove(task)
                task.done.set_result(stop.value)
                continue
            except BaseException as error:
                self._tasks.remove(task)
                task.done.set_exception(error)
                continue
            if isinstance(yielded, DurableFuture):
                yielded.add_done_callback(functools.partial(self._resume, task))
            else:
                self._ready.append((task, NonDurableAwait(_explain(yielded))))

    def _resume(self, task: _Task, _: DurableFuture[Any]) -> None:
        self._ready.append((task, None))

    def close(self) -> None:
        """Close every unfinished coroutine (the run is being unloaded)."""
        tasks, self._tasks = self._tasks, []
        self._ready.clear()
        for task in tasks:
            # a finally block failing while the run is unloaded changes nothing
            with contextlib.suppress(BaseException):
                task.coro.close()


def _explain(yielded: object) -> str:
    return (
        f"a workflow awaited {yielded!r}, which is not a durable operation. Inside a "
        "workflow await only activities and ctx methods (ctx.sleep instead of "
        "asyncio.sleep, ctx.gather instead of asyncio.gather): anything else would not "
        "be replayed the same way after a crash."
    )
