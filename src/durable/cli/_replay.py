"""Replay checks: ``runs export`` (a run's history as a JSON file) and ``replay``.

``durable replay APP --run ID`` (or ``--from-file FILE``) replays a recorded run with
the code of ``APP`` without executing anything: exit 0 when the code makes the same
calls, 1 with the first divergence on one line when it does not (a CI gate before a
deploy). See docs/testing.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..app import App, load_app
from ..errors import NonDeterminismError
from ..testing import History
from ..testing import replay as replay_history
from ._common import EXIT_ERROR, Dsn, Json, open_app, print_json, run, usage

RunId = Annotated[str, typer.Argument(metavar="RUN", help="The run id.")]


def export(
    run_id: RunId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here (default: stdout)."),
    ] = None,
    dsn: Dsn = None,
) -> None:
    """Export a run's history (metadata and journal) as JSON, for 'durable replay'."""

    async def fetch() -> History:
        async with open_app(dsn) as app:
            return await History.fetch(app, run_id)

    history = run(fetch())
    if output is None:
        typer.echo(json.dumps(history.to_json(), indent=2, ensure_ascii=False))
        return
    history.save(output)
    typer.echo(f"wrote the history of run {run_id} ({len(history.events)} records) to {output}")


def replay(
    app_target: Annotated[
        str,
        typer.Argument(
            metavar="APP",
            help="The App whose code to check, as module:attribute (default attribute: app).",
        ),
    ],
    run_id: Annotated[
        str | None, typer.Option("--run", metavar="RUN", help="Replay this run from the store.")
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", metavar="FILE", help="Replay a history written by 'durable runs export'."
        ),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option("--dsn", help="The store of --run (default: the App's, else $DURABLE_DSN)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Check that the App's code replays a recorded run, executing nothing (exit 1 if not)."""
    if (run_id is None) == (from_file is None):
        raise usage("pass --run RUN or --from-file FILE (one of the two)")
    user_app = load_app(app_target)
    if from_file is not None:
        history = History.load(from_file)
    else:
        assert run_id is not None
        history = run(_fetch(dsn or user_app.dsn, user_app, run_id))
    workflow = user_app.registry.workflow(history.workflow)
    try:
        result = replay_history(workflow, history)
    except NonDeterminismError as exc:
        if not as_json:
            raise
        print_json({"run_id": history.run_id, "workflow": history.workflow, **_diverged(exc)})
        raise typer.Exit(EXIT_ERROR) from None
    if as_json:
        print_json(
            {
                "run_id": result.run_id,
                "workflow": result.workflow,
                "deterministic": True,
                "records": result.records,
                "outcome": result.outcome,
            }
        )
    else:
        typer.echo(
            f"run {result.run_id} replays with this code ({result.records} journal records;"
            f" the code {result.outcome})"
        )


async def _fetch(dsn: str, user_app: App, run_id: str) -> History:
    async with open_app(dsn, registry=user_app.registry) as app:
        return await History.fetch(app, run_id)


def _diverged(exc: NonDeterminismError) -> dict[str, Any]:
    return {
        "deterministic": False,
        "seq": exc.seq,
        "recorded": exc.recorded,
        "requested": exc.requested,
        "message": str(exc),
    }
