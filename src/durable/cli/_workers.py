"""``durable workers ls``: the worker registry; and the check ``durable start`` makes
against it when it has no ``--app`` to know the workflows by."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import typer

from ..store import Store, WorkerRecord
from . import _render
from ._common import EXIT_USAGE, Dsn, Json, open_app, print_json, run, when

workers = typer.Typer(
    name="workers", help="The worker processes registered in the store.", no_args_is_help=True
)

_ANYTHING = {"VAR_KEYWORD"}
_NOT_BY_NAME = {"VAR_POSITIONAL", "POSITIONAL_ONLY"}


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def worker_json(worker: WorkerRecord) -> dict[str, Any]:
    """A registered worker: its row, with ``live`` and the workflow signatures it knows."""
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "version": worker.version,
        "started_at": when(_moment(worker.started_at)),
        "heartbeat_at": when(_moment(worker.heartbeat_at)),
        "live": worker.live,
        "workflows": {
            name: [{"name": p, "kind": kind} for p, kind in params]
            for name, params in worker.workflows.items()
        },
        "flows": worker.flows,
    }


@workers.command("ls")
def list_workers(dsn: Dsn = None, as_json: Json = False) -> None:
    """List registered workers: live ones, and dead ones (stopped without a clean stop)."""

    async def fetch() -> list[WorkerRecord]:
        async with open_app(dsn) as app:
            return await app.store.list_workers()

    found = run(fetch())
    if as_json:
        print_json([worker_json(w) for w in found])
        return
    out = _render.table("ID", "HOST", "PID", "QUEUES", "VERSION", "STARTED", "HEARTBEAT", "STATE")
    now = time.time()
    for w in found:
        state = "live" if w.live else "dead"
        started = when(_moment(w.started_at))
        beat = _render.relative(w.heartbeat_at - now)
        _render.row(out, w.id, w.host, w.pid, ", ".join(w.queues), w.version, started, beat, state)
    _render.show(out)


def _unknown_arguments(params: Sequence[tuple[str, str]], given: Mapping[str, Any]) -> list[str]:
    if any(kind in _ANYTHING for _, kind in params):
        return []
    names = {name for name, kind in params if kind not in _NOT_BY_NAME}
    return [name for name in given if name not in names]


def start_refusal(name: str, args: Mapping[str, Any], found: Sequence[WorkerRecord]) -> str | None:
    """Why live workers would not run ``name`` with these arguments by name, or None.

    A workflow is known when any live worker registered it; the arguments pass when any
    of their signatures takes them (workers of two releases may run side by side).
    """
    live = [w for w in found if w.live]
    signatures = [w.workflows[name] for w in live if name in w.workflows]
    if not signatures:
        known = sorted({wf for w in live for wf in w.workflows})
        return (
            f"unknown workflow {name!r}; live workers know: {', '.join(known) or 'none'} "
            "(pass --force to start it anyway)"
        )
    if any(not _unknown_arguments(params, args) for params in signatures):
        return None
    params = signatures[0]
    unknown = ", ".join(repr(a) for a in _unknown_arguments(params, args))
    plural = "s" if "," in unknown else ""
    takes = ", ".join(p for p, kind in params if kind not in _NOT_BY_NAME)
    return (
        f"workflow {name!r} takes ({takes}); got unknown argument{plural} {unknown} "
        "(pass --force to start it anyway)"
    )


async def check_start(store: Store, name: str, args: Mapping[str, Any]) -> str | None:
    """Refuse (exit 2) a start that no live worker could run. When none is live, the
    start goes ahead (nothing to check against): return the warning to print if it does."""
    found = await store.list_workers()
    if not any(w.live for w in found):
        return (
            f"durable: warning: no live worker is registered; the run waits until a worker "
            f"that knows {name!r} starts"
        )
    refusal = start_refusal(name, args, found)
    if refusal is not None:
        typer.echo(f"durable: {refusal}", err=True)
        raise typer.Exit(EXIT_USAGE)
    return None
