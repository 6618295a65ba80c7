"""``App``: a store and a registry; starts runs, hands out handles, makes workers."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from ._clock import REAL, Clock, VirtualClock
from ._describe import describe, page_cursor, read_cursor, run_query
from ._services import Services
from ._start import start_run
from .errors import ConfigurationError, DefinitionNotFoundError, InvalidInputError
from .flow._client import Definitions, Jobs, variables_text
from .handle import Handle
from .info import RunDescription, RunFilter, RunPage, Status
from .queues import DEFAULT_QUEUE, Queue, check_priority, queue_name
from .registry import Override, Registry, Workflow, default_registry
from .schedules import Missed, ScheduleInfo, Schedules
from .store import Store, open_store, resolve_dsn
from .worker import Worker, WorkerMetrics

R = TypeVar("R")


class App:
    """The entry point: connects to the store and starts, finds and runs workflows.

    ``dsn`` picks the store: ``sqlite:///path.db`` (embedded) or ``postgresql://...``.
    Without one, ``$DURABLE_DSN`` is used, else ``durable.db`` in the working directory.
    ``clock`` is the time source of the store and the workers: real time unless
    ``durable.testing.TestEnv`` passes its virtual clock (SQLite only). With
    ``retention``, the App's workers delete runs that finished longer ago than that, in
    the background, one worker at a time (see :meth:`prune`).

    Example::

        async with durable.App() as app:
            async with app.worker():
                handle = await app.start(order, "o-1", id="order-o-1")
                print(await handle.result(timeout=60))
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        registry: Registry | None = None,
        queues: Iterable[Queue] = (),
        clock: Clock | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self.dsn = resolve_dsn(dsn)
        declared: dict[str, Queue] = {}
        for queue in queues:
            _declare(declared, queue)
        clock = clock or REAL
        store = open_store(self.dsn, clock=clock)
        if isinstance(clock, VirtualClock):
            self._check_virtual_clock(store)
        self.services = Services(store, registry or default_registry, clock, declared)
        """What the objects this App makes share: store, registry, clock, queues."""
        if retention is not None:
            self.services.retention = _seconds(retention, "App(retention=)")
        self.definitions = Definitions(self.services)
        """Versioned JSON flow definitions: ``upload``, ``get``, ``list``."""
        self.jobs = Jobs(self.services)
        """External SERVICE_TASK jobs: ``poll``, ``complete``, ``fail``."""
        self.schedules = Schedules(self.services)
        """Cron schedules: ``list``, ``get``, ``pause``, ``resume``, ``delete``."""

    def _check_virtual_clock(self, store: Store) -> None:
        from .store.sqlite import SqliteStore

        if not isinstance(store, SqliteStore):
            raise ConfigurationError(
                f"a virtual clock needs the embedded SQLite store, not {self.dsn!r}: "
                "Postgres compares times with the database server's clock"
            )

    @property
    def store(self) -> Store:
        """The store; raises ConfigurationError until the App is opened."""
        return self.services.store

    @property
    def registry(self) -> Registry:
        """The workflows and activities this App's workers run."""
        return self.services.registry

    @property
    def clock(self) -> Clock:
        """The time source of this App's store and workers; ``durable.testing`` passes a
        virtual clock (SQLite only: Postgres compares times with the server's clock)."""
        return self.services.clock

    @property
    def queues(self) -> dict[str, Queue]:
        """The queues declared on this App, by name (``queues=`` and :meth:`queue`)."""
        return self.services.queues

    @property
    def activity_overrides(self) -> dict[str, Override]:
        """Activities replaced by name in this App's workers (``TestEnv.mock_activity``)."""
        return self.services.activity_overrides

    async def open(self) -> App:
        """Connect to the store and apply pending migrations (``async with`` does this)."""
        await self.services.open()
        return self

    async def close(self) -> None:
        """Close the store's connections (leaving ``async with`` does this)."""
        await self.services.close()

    async def __aenter__(self) -> App:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        rate_limit: tuple[int, float] | None = None,
    ) -> Queue:
        """Declare a queue and its limits on this App; return it (see ``durable.Queue``).

        Every process that serves the queue must declare the same limits; declaring a
        name again with other limits raises ``ConfigurationError``.

        Example::

            reports = app.queue("reports", concurrency=2, rate_limit=(10, 60.0))
        """
        declared = Queue(
            name,
            concurrency=concurrency,
            worker_concurrency=worker_concurrency,
            rate_limit=rate_limit,
        )
        return _declare(self.queues, declared)

    async def queue_depth(self, name: str | Queue) -> int:
        """How many runs of a queue are runnable and not claimed by any worker now."""
        wanted = queue_name(name) or DEFAULT_QUEUE
        return (await self.store.queue_depths([wanted]))[wanted]

    async def queues_depth(self) -> dict[str, int]:
        """The depth of every queue that has runnable runs, and of every declared one."""
        depths = dict.fromkeys(sorted({DEFAULT_QUEUE, *self.queues}), 0)
        depths.update(await self.store.queue_depths())
        return depths

    async def start(
        self,
        workflow: Workflow[Any, R] | str,
        /,
        *args: Any,
        id: str | None = None,
        queue: str | Queue | None = None,
        priority: int = 0,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Handle[R]:
        """Start a run of ``workflow`` with the given arguments; return its handle.

        Starting is idempotent on ``id``: a second start with the same id returns the
        existing run and runs nothing again. The arguments are validated and stored
        before anything runs.

        The run waits in ``queue`` (default: the workflow's queue, else ``"default"``)
        until a worker serving that queue claims it. Among the runs a worker may claim,
        a higher ``priority`` goes first, then the one runnable longest. ``tags`` (string
        keys and values, see ``docs/operating.md``) are stored with the run; filter by them
        with ``durable.RunFilter``.

        Raises:
            durable.InvalidInputError: a tag key or value is invalid; the message names it.
            durable.NotRegisteredError: no workflow of that name is registered.
            durable.SerializationError: an argument does not match the signature or
                cannot be stored; the message names the argument.
            durable.RunConflictError: ``id`` belongs to a run of another workflow.
        """
        wf = self.registry.workflow(workflow) if isinstance(workflow, str) else workflow
        home = queue_name(queue) or wf.queue or DEFAULT_QUEUE
        rank = check_priority(priority)
        args_text = wf.codec.encode_args(args, kwargs)
        run, _ = await start_run(
            self.store, wf.name, args_text, run_id=id, queue=home, priority=rank, tags=tags
        )
        return Handle(self.services, run.id, wf)

    async def start_flow(
        self,
        definition_id: str,
        *,
        variables: dict[str, Any] | None = None,
        business_key: str | None = None,
        version: int | None = None,
        id: str | None = None,
        queue: str | Queue | None = None,
        priority: int = 0,
        tags: Mapping[str, str] | None = None,
    ) -> Handle[dict[str, Any]]:
        """Start a run of a stored JSON flow definition (the latest version by default).

        The run is pinned to that version; its result is the final variables. Starting is
        idempotent on ``id``, and ``queue``, ``priority`` and ``tags`` work, like :meth:`start`.

        Raises:
            durable.DefinitionNotFoundError: no such definition (or version).
            durable.ValidationError: ``variables`` is not a JSON object.
        """
        record = await self.store.get_definition(definition_id, version)
        if record is None:
            which = f"version {version} of " if version is not None else ""
            raise DefinitionNotFoundError(f"no {which}definition {definition_id!r} is stored")
        text = variables_text(variables, f"variables of a run of {definition_id!r}")
        home = queue_name(queue) or DEFAULT_QUEUE
        rank = check_priority(priority)
        run, _ = await start_run(
            self.store,
            record.id,
            f'{{"variables":{text}}}',
            run_id=id,
            business_key=business_key,
            flow_version=record.version,
            queue=home,
            priority=rank,
            tags=tags,
        )
        return Handle(self.services, run.id)

    async def schedule(
        self,
        workflow: Workflow[Any, Any] | str,
        /,
        *,
        cron: str,
        id: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        timezone: str = "UTC",
        missed: Missed = "skip",
        start_at: datetime | None = None,
        queue: str | Queue | None = None,
        priority: int = 0,
    ) -> ScheduleInfo:
        """Start a run of ``workflow`` at every tick of ``cron``, once across all workers.

        ``cron`` has 5 fields (minute hour day-of-month month day-of-week), or 6 with
        seconds last; it is read in ``timezone``. Each tick's run has the id
        ``"{id}@{tick as ISO-8601 UTC}"``. ``missed`` says what happens to ticks no worker
        was up for: ``"skip"`` starts only the latest, ``"catch_up"`` starts each one (the
        latest 100 at most). ``start_at`` is when ticks begin to count (default: now).
        ``queue`` and ``priority`` apply to the runs it starts, as in :meth:`start`.

        Calling it again with the same ``id`` updates the schedule (workflow, cron,
        timezone, arguments, missed policy, queue, priority) and leaves it paused if it
        was; its next tick stays put unless the cron, the time zone or ``start_at``
        changes. See ``docs/schedules.md``.

        Example::

            await app.schedule(report, cron="0 7 * * mon-fri", id="weekday-report",
                               args=("sales",), timezone="Europe/Berlin")

        Raises:
            durable.InvalidScheduleError: (a ValueError) the cron expression, time zone or
                another option is invalid; the message names the schedule and the field.
            durable.NotRegisteredError: no workflow of that name is registered.
            durable.SerializationError: an argument does not match the signature.
        """
        return await self.schedules.create(
            workflow,
            cron=cron,
            id=id,
            args=args,
            kwargs=kwargs,
            timezone=timezone,
            missed=missed,
            start_at=start_at,
            queue=queue,
            priority=priority,
        )

    def handle(self, run_id: str) -> Handle[Any]:
        """A handle on an existing run (not checked until used)."""
        return Handle(self.services, run_id)

    @overload
    async def list_runs(
        self,
        /,
        *,
        status: Status | str | None = None,
        workflow: str | None = None,
        business_key: str | None = None,
        limit: int = 100,
    ) -> list[RunDescription]: ...
    @overload
    async def list_runs(
        self, filter: RunFilter, /, *, limit: int = 100, cursor: str | None = None
    ) -> RunPage: ...
    async def list_runs(
        self,
        filter: RunFilter | None = None,
        /,
        *,
        status: Status | str | None = None,
        workflow: str | None = None,
        business_key: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> list[RunDescription] | RunPage:
        """Runs, newest first.

        With a ``durable.RunFilter``: a ``RunPage`` of at most ``limit`` runs matching it
        and the ``next_cursor`` to pass as ``cursor=`` for the next page (None after the
        last). Pages never repeat or skip a run, also while runs are being created.
        The keyword form (``status=``, ``workflow=``, ``business_key=``) returns a list of
        the newest ``limit`` matching runs.

        Example::

            page = await app.list_runs(durable.RunFilter(tags={"tenant": "acme"}), limit=50)
            while page.next_cursor:
                page = await app.list_runs(flt, limit=50, cursor=page.next_cursor)

        Raises:
            durable.InvalidInputError: ``cursor`` is not one this method returned.
        """
        if filter is None:
            if cursor is not None:
                raise TypeError("list_runs(cursor=) needs a durable.RunFilter")
            wanted = Status(status) if status is not None else None
            runs = await self.store.list_runs(
                status=wanted, workflow=workflow, limit=limit, business_key=business_key
            )
            return [describe(run) for run in runs]
        if status is not None or workflow is not None or business_key is not None:
            raise TypeError("give the filters either as a durable.RunFilter or as keywords")
        if limit < 1:
            raise InvalidInputError(f"list_runs(limit=) must be at least 1, got {limit}")
        records = await self.store.list_runs(
            query=run_query(filter), limit=limit, before=read_cursor(cursor)
        )
        last = records[-1] if len(records) == limit else None
        next_cursor = None if last is None else page_cursor(last.created_at, last.id)
        return RunPage([describe(run) for run in records], next_cursor)

    async def bulk(self, action: str, filter: RunFilter, /, *, dry_run: bool = False) -> int:
        """Apply ``action`` to every run ``filter`` matches, in batches on the store; return
        how many runs it changed (with ``dry_run``: how many it would, changing nothing).

        ``"cancel"`` does to each open run what ``Handle.cancel`` does (a run that never
        started ends CANCELLED at once; the others are asked to cancel and woken); runs
        that ended or were asked to cancel before are left alone and not counted.
        ``"pause"``, ``"resume"`` and ``"retry"`` do what ``Handle.pause``,
        ``Handle.resume`` and ``Handle.retry`` do, to the open runs not paused, the paused
        runs and the FAILED runs respectively.

        Example::

            n = await app.bulk("cancel", durable.RunFilter(tags={"batch": "b-7"}))

        Raises:
            ValueError: ``action`` is not one of those above.
        """
        if not isinstance(filter, RunFilter):
            raise TypeError(f"bulk() takes a durable.RunFilter, got {filter!r}")
        query, store = run_query(filter), self.store
        if action == "cancel":
            return await store.bulk_cancel(query, dry_run=dry_run)
        if action == "pause":
            return await store.bulk_pause(query, dry_run=dry_run)
        if action == "resume":
            return await store.bulk_resume(query, dry_run=dry_run)
        if action == "retry":
            return await store.bulk_retry(query, dry_run=dry_run)
        raise ValueError(
            f"bulk action {action!r} is not supported;"
            " supported: 'cancel', 'pause', 'resume', 'retry'"
        )

    async def prune(
        self,
        older_than: timedelta,
        status: Status | str | Sequence[Status | str] | None = None,
        *,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete the runs that finished more than ``older_than`` ago (only those of
        ``status``, one or several finished statuses, when given) with everything they
        own: journal, signals, events, jobs, tags. Return how many runs (with
        ``dry_run``: how many it would delete, deleting nothing).

        Open runs are never deleted (a PAUSED run is open), nor a finished child whose
        parent is open, nor a finished parent with an open child. Works in batches, oldest
        first; ``progress`` is called with the count so far after each batch.

        Example::

            n = await app.prune(timedelta(days=30), status="COMPLETED")

        Raises:
            durable.InvalidInputError: ``status`` names an open status, or ``older_than``
                is negative.
        """
        age = _seconds(older_than, "prune(older_than=)")
        given = [] if status is None else [status] if isinstance(status, str) else list(status)
        try:
            statuses = [Status(s) for s in given]
        except ValueError as exc:
            raise InvalidInputError(f"prune(status=): {exc}") from None
        return await self.store.prune_runs(
            age, statuses=statuses, dry_run=dry_run, progress=progress
        )

    def worker(
        self,
        *,
        concurrency: int = 100,
        lease_seconds: float = 30.0,
        poll_interval: float = 1.0,
        grace_period: float = 10.0,
        queues: Sequence[str | Queue] | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> Worker:
        """A worker executing this App's runs; ``async with app.worker(): ...``.

        It claims runs of ``queues`` only (default: ``"default"``, every queue declared
        on the App and every queue a registered workflow names). ``metrics``
        (``durable.WorkerMetrics``) collects this process's Prometheus figures and,
        given a port, serves them while the worker runs.
        """
        return Worker(
            self.services,
            concurrency=concurrency,
            lease_seconds=lease_seconds,
            poll_interval=poll_interval,
            grace_period=grace_period,
            queues=queues,
            metrics=metrics,
        )


def _seconds(value: timedelta, what: str) -> float:
    """A non-negative duration in seconds; InvalidInputError naming ``what`` otherwise."""
    if not isinstance(value, timedelta):
        raise InvalidInputError(f"{what} takes a datetime.timedelta, got {value!r}")
    if value < timedelta(0):
        raise InvalidInputError(f"{what} must not be negative, got {value}")
    return value.total_seconds()


def _declare(declared: dict[str, Queue], queue: Queue) -> Queue:
    """Add ``queue`` to ``declared``; the same name with other limits is refused."""
    if not isinstance(queue, Queue):
        raise ConfigurationError(f"queues must be durable.Queue objects, got {queue!r}")
    known = declared.setdefault(queue.name, queue)
    if known != queue:
        raise ConfigurationError(
            f"queue {queue.name!r} is already declared with other limits ({known});"
            " declare each queue once"
        )
    return known


def load_app(target: str, *, dsn: str | None = None) -> App:
    """The App named by ``target``, ``module:attribute`` (the attribute defaults to ``app``),
    imported from the working directory as well as the path; with ``dsn``, an App with its
    workflows and queues on that store instead.

    The ``durable`` command (``--app``) and the REST server (``app_target=``) load Apps so.

    Raises:
        durable.ConfigurationError: the module cannot be imported, or the attribute is not
            a ``durable.App``.
    """
    module_name, _, attribute = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from None
    attribute = attribute or "app"
    apps = sorted(name for name, value in vars(module).items() if isinstance(value, App))
    known = f"; its Apps: {', '.join(apps)}" if apps else "; it defines no durable.App"
    if not hasattr(module, attribute):
        raise ConfigurationError(f"module {module_name!r} has no attribute {attribute!r}{known}")
    found = getattr(module, attribute)
    if not isinstance(found, App):
        raise ConfigurationError(
            f"{module_name}:{attribute} is a {type(found).__name__}, not a durable.App{known}"
        )
    if dsn is None:
        return found
    return App(dsn, registry=found.registry, queues=found.queues.values())
