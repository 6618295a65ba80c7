"""Durable futures: what workflow code awaits.

A workflow's coroutines are driven by the runtime's scheduler, not by asyncio:
awaiting a :class:`DurableFuture` suspends the coroutine until the executor resolves the
future, in journal order. Anything else awaited inside a workflow is an error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_PENDING = object()


class DurableFuture(Generic[T]):
    """The eventual result of a durable operation, resolved deterministically."""

    __slots__ = ("_callbacks", "_exception", "_result", "label")

    def __init__(self, label: str = "") -> None:
        self._result: Any = _PENDING
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[DurableFuture[T]], None]] = []
        self.label = label

    def done(self) -> bool:
        return self._result is not _PENDING or self._exception is not None

    def result(self) -> T:
        if self._exception is not None:
            raise self._exception
        if self._result is _PENDING:
            raise RuntimeError(f"{self.label or 'durable future'} is not resolved yet")
        return self._result  # type: ignore[no-any-return]

    def exception(self) -> BaseException | None:
        return self._exception

    def set_result(self, value: T) -> None:
        if self.done():
            return
        self._result = value
        self._fire()

    def set_exception(self, exc: BaseException) -> None:
        if self.done():
            return
        self._exception = exc
        self._fire()

    def add_done_callback(self, fn: Callable[[DurableFuture[T]], None]) -> None:
        if self.done():
            fn(self)
        else:
            self._callbacks.append(fn)

    def _fire(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    def __await__(self) -> Generator[Any, None, T]:
        if not self.done():
            yield self
        return self.result()

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<DurableFuture {self.label} {state}>"


def gather_futures(futures: list[DurableFuture[Any]]) -> DurableFuture[list[Any]]:
    """A future of every result in argument order; it fails with the first failure."""
    combined: DurableFuture[list[Any]] = DurableFuture("gather")
    remaining = len(futures)
    if remaining == 0:
        combined.set_result([])
        return combined

    def on_done(fut: DurableFuture[Any]) -> None:
        nonlocal remaining
        remaining -= 1
        exc = fut.exception()
        if exc is not None:
            combined.set_exception(exc)
        elif remaining == 0 and not combined.done():
            combined.set_result([f.result() for f in futures])

    for fut in futures:
        fut.add_done_callback(on_done)
    return combined


def first_completed(futures: list[DurableFuture[Any]]) -> DurableFuture[int]:
    """A future of the index of the first of ``futures`` to finish, with a result or not.

    Futures resolve in journal order, so the same future wins on every replay.
    """
    winner: DurableFuture[int] = DurableFuture("first completed")

    def settle(index: int, _: DurableFuture[Any]) -> None:
        winner.set_result(index)

    for index, fut in enumerate(futures):
        fut.add_done_callback(functools.partial(settle, index))
    return winner
