"""The ``durable`` command (docs/cli.md is its reference).

Layout: ``_common`` (``--dsn``, ``--json``, opening the store, JSON arguments),
``_render`` (the ``--json`` shapes and tables), one module per group of verbs:
``_serve`` (worker, serve), ``_runs`` (start, signal, cancel, runs, user-tasks),
``_defs`` (defs), ``_schedules`` (schedules), ``_replay`` (runs export, replay),
``_workers`` (workers ls, and the check ``start`` makes against the worker registry),
``_operate`` (filters), ``_bulk`` (runs cancel|pause|resume|retry), ``_prune`` (runs
prune), ``_progress`` (ages, confirmation, bars).

Exit codes: 0 success; 1 a user error (not found, refused, invalid definition,
unreachable database); 2 a usage error (unknown option, missing argument, malformed
JSON). Errors are printed as one ``durable: ...`` line on stderr, without a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Annotated, Any

import typer

from ..errors import DurableError
from . import _bulk, _defs, _diff, _fork, _prune, _replay, _runs, _schedules, _serve, _workers
from ._common import EXIT_ERROR, EXIT_OK, EXIT_USAGE

app = typer.Typer(
    name="durable",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"durable {metadata.version('durable')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Durable workflows for Python: run workers, start and inspect runs, manage flows."""


app.command("worker")(_serve.worker)
app.command("serve")(_serve.serve)
app.command("start")(_runs.start)
app.command("signal")(_runs.signal)
app.command("cancel")(_runs.cancel)
app.command("replay")(_replay.replay)
_runs.runs.command("export")(_replay.export)
_runs.runs.command("cancel")(
    _bulk.command(
        "cancel",
        "Cancel one run, or every open run the filters match (as durable cancel does).",
        lambda handle, _reason: handle.cancel(),
    )
)
_runs.runs.command("pause")(
    _bulk.command(
        "pause",
        "Pause one run, or every open run the filters match: activities in flight finish,"
        " then nothing starts until resume.",
        lambda handle, reason: handle.pause(reason or None),
    )
)
_runs.runs.command("resume")(
    _bulk.command(
        "resume",
        "Resume one paused run, or every paused run the filters match.",
        lambda handle, _reason: handle.resume(),
    )
)
_runs.runs.command("retry")(
    _bulk.command(
        "retry",
        "Run a FAILED run again from where it failed (or every FAILED run the filters match).",
        lambda handle, _reason: handle.retry(),
    )
)
_runs.runs.command("prune")(_prune.prune)
_runs.runs.command("diff")(_diff.diff)
_runs.runs.command("fork")(_fork.fork)
app.add_typer(_runs.runs)
app.add_typer(_defs.defs)
app.add_typer(_runs.user_tasks)
app.add_typer(_schedules.schedules)
app.add_typer(_workers.workers)


def _is_usage_error(exc: Exception) -> bool:
    # click's UsageError (typer ships its own copy of click, so match it by name).
    return any(cls.__name__ == "UsageError" for cls in type(exc).__mro__)


def _untyped_flags(command: Any) -> None:
    """Flags take no value, so their help shows no type (typer would print ``<bool>``)."""
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, help_option]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _untyped_flags(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    command = typer.main.get_command(app)
    _untyped_flags(command)
    try:
        code = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="durable",
            standalone_mode=False,
        )
    except DurableError as exc:
        print(f"durable: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except typer.Abort:
        print("durable: aborted", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as click does
            print(exc.format_message(), file=sys.stderr)  # type: ignore[attr-defined]
            return EXIT_USAGE
        context = getattr(exc, "ctx", None)
        where = context.command_path if context is not None else "durable"
        message = exc.format_message()  # type: ignore[attr-defined]
        print(f"{where}: {message} (see '{where} --help')", file=sys.stderr)
        return EXIT_USAGE
    return code if isinstance(code, int) else EXIT_OK


__all__ = ["app", "main"]
