"""Group commit: requests that arrive while earlier ones are being written go together.

A busy process sends many small writes of the same shape at once (journal commits of
many runs, the starts of a fan-out). Sending each alone costs a round trip, a statement
and a WAL flush apiece. A ``Coalescer`` sends a request at once when nothing is in
flight, so a lone request's latency is unchanged; requests that arrive while ``FLUSHERS``
batches are being written wait and then go together in one statement.

A batch whose statement fails as a whole (a lost connection, a deadlock with another
writer) is retried request by request, so one bad request fails only its own caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ..errors import DurableError

Req = TypeVar("Req")
Res = TypeVar("Res")

MAX_BATCH = 512
FLUSHERS = 2
"""Batches written at once: one can be in the database while the next one is sent."""


class Coalescer(Generic[Req, Res]):
    """Sends concurrent requests of one shape in shared statements.

    ``write_many`` writes a batch in one statement and gives each request's result or
    error, in order; ``write_one`` writes a request alone (a batch of one, whose own
    statement costs the database less, or each request of a batch that failed as a
    whole). Requests with the same ``key`` never share a batch: the second waits for the
    first to be written (one run's commits stay in order).
    """

    def __init__(
        self,
        write_many: Callable[[list[Req]], Awaitable[list[Res | BaseException]]],
        write_one: Callable[[Req], Awaitable[Res]],
        key: Callable[[Req], Hashable] | None = None,
    ) -> None:
        self._write_many = write_many
        self._write_one = write_one
        self._key = key
        self._pending: list[tuple[Req, asyncio.Future[Res]]] = []
        self._in_flight: set[Hashable] = set()
        self._flushes: set[asyncio.Task[None]] = set()

    async def submit(self, request: Req) -> Res:
        """Write ``request`` with the next batch; its result, or its error raised."""
        future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if len(self._flushes) < FLUSHERS:
            self._start_flushes()
        return await future

    async def close(self) -> None:
        """Wait for the batches being written."""
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _start_flushes(self) -> None:
        while self._pending and len(self._flushes) < FLUSHERS:
            batch = self._take()
            if not batch:
                return
            task = asyncio.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._start_flushes()

    def _take(self) -> list[tuple[Req, asyncio.Future[Res]]]:
        """The next batch: none of a key with a request in flight, at most MAX_BATCH."""
        key = self._key
        batch: list[tuple[Req, asyncio.Future[Res]]]
        if key is None and len(self._pending) <= MAX_BATCH:
            batch = [item for item in self._pending if not item[1].done()]
            self._pending = []
            return batch
        batch = []
        rest: list[tuple[Req, asyncio.Future[Res]]] = []
        in_flight = self._in_flight
        for item in self._pending:
            if item[1].done():
                continue  # its caller gave up
            if len(batch) >= MAX_BATCH:
                rest.append(item)
            elif key is None:
                batch.append(item)
            else:
                k = key(item[0])
                if k in in_flight:
                    rest.append(item)
                else:
                    in_flight.add(k)
                    batch.append(item)
        self._pending = rest
        return batch

    async def _flush(self, batch: list[tuple[Req, asyncio.Future[Res]]]) -> None:
        try:
            if len(batch) == 1:  # the single-request statement is the cheaper one
                await self._alone(*batch[0])
                return
            try:
                results = await self._write_many([request for request, _ in batch])
            except DurableError:
                # One statement for all failed: give each request its own chance.
                await asyncio.gather(*(self._alone(r, f) for r, f in batch))
                return
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)
        except BaseException as exc:  # never leave a caller waiting
            for _, future in batch:
                _settle(future, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._key is not None:
                for request, _ in batch:
                    self._in_flight.discard(self._key(request))

    async def _alone(self, request: Req, future: asyncio.Future[Res]) -> None:
        try:
            result = await self._write_one(request)
        except Exception as exc:
            _settle(future, exc)
        else:
            _settle(future, result)


def _settle(future: asyncio.Future[Res], outcome: Res | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
