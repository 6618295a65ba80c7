"""``durable defs validate|push|ls|show``: JSON flow definitions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ..flow import validate_definition
from ..flow._client import StoredDefinition
from . import _render
from ._common import Dsn, Json, open_app, plain, print_json, run, when

defs = typer.Typer(name="defs", help="JSON flow definitions.", no_args_is_help=True)

Files = Annotated[list[Path], typer.Argument(metavar="FILE...", help="Definition files.")]


@dataclass(slots=True)
class _File:
    path: str
    document: Any = None
    problems: list[str] = field(default_factory=list)


def _read(paths: Sequence[Path]) -> list[_File]:
    """Each file parsed and validated; every problem of every file is kept."""
    files: list[_File] = []
    for path in paths:
        entry = _File(str(path))
        files.append(entry)
        try:
            entry.document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            entry.problems.append(f"cannot read: {exc.strerror or exc}")
            continue
        except json.JSONDecodeError as exc:
            entry.problems.append(f"not JSON: {exc.msg}: line {exc.lineno} column {exc.colno}")
            continue
        except (RecursionError, UnicodeDecodeError, ValueError) as exc:
            entry.problems.append(f"not JSON: {exc}")
            continue
        entry.problems.extend(str(problem) for problem in validate_definition(entry.document))
    return files


def _print_problems(files: Sequence[_File]) -> None:
    for entry in files:
        for problem in entry.problems:
            typer.echo(f"{entry.path}: {problem}", err=True)


@defs.command("validate")
def validate(files: Files, as_json: Json = False) -> None:
    """Check definition files offline; list every problem, one per line (exit 1 if any)."""
    checked = _read(files)
    if as_json:
        print_json(
            {
                "valid": not any(entry.problems for entry in checked),
                "files": [
                    {
                        "path": entry.path,
                        "valid": not entry.problems,
                        "id": None if entry.problems else entry.document["id"],
                        "steps": None if entry.problems else len(entry.document["steps"]),
                        "problems": entry.problems,
                    }
                    for entry in checked
                ],
            }
        )
    else:
        _print_problems(checked)
        for entry in checked:
            if not entry.problems:
                document = entry.document
                typer.echo(
                    f"{entry.path}: valid ({document['id']}, {len(document['steps'])} steps)"
                )
    if any(entry.problems for entry in checked):
        raise typer.Exit(1)


@defs.command("push")
def push(files: Files, dsn: Dsn = None, as_json: Json = False) -> None:
    """Validate and upload definition files, each as its id's next version (all or none)."""
    checked = _read(files)
    if any(entry.problems for entry in checked):
        # All or nothing: a half-pushed set of chained definitions helps nobody.
        _print_problems(checked)
        typer.echo("durable: nothing was pushed", err=True)
        if as_json:
            print_json({"pushed": []})
        raise typer.Exit(1)

    async def upload() -> list[dict[str, Any]]:
        pushed = []
        async with open_app(dsn, create=True) as app:
            for entry in checked:
                ref = await app.definitions.upload(entry.document)
                pushed.append({"path": entry.path, **plain(ref)})
        return pushed

    pushed = run(upload())
    if as_json:
        print_json({"pushed": pushed})
    else:
        for item in pushed:
            typer.echo(f"{item['path']}: pushed {item['id']} version {item['version']}")


def _summary(stored: StoredDefinition) -> dict[str, Any]:
    steps = stored.document.get("steps")
    return {
        "id": stored.id,
        "version": stored.version,
        "name": stored.name,
        "uploaded_at": plain(stored.uploaded_at),
        "steps": len(steps) if isinstance(steps, list) else None,
    }


@defs.command("ls")
def list_definitions(
    keyword: Annotated[
        str | None, typer.Option("--keyword", help="Only ids or names containing this.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="At most this many.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many.")] = 0,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """List stored definitions (the latest version of each), by id."""

    async def fetch() -> tuple[list[StoredDefinition], int]:
        async with open_app(dsn) as app:
            return await app.definitions.list(keyword=keyword, offset=offset, limit=limit)

    found, total = run(fetch())
    if as_json:
        print_json({"definitions": [_summary(stored) for stored in found], "total": total})
        return
    if not found:
        typer.echo("no definitions match")
        return
    out = _render.table("ID", "VERSION", "NAME", "STEPS", "UPLOADED")
    for stored in found:
        item = _summary(stored)
        _render.row(
            out, item["id"], item["version"], item["name"], item["steps"], stored.uploaded_at
        )
    _render.show(out)
    if total > offset + len(found):
        typer.echo(f"{total} in all; see more with --offset {offset + len(found)}")


@defs.command("show")
def show(
    definition_id: Annotated[str, typer.Argument(metavar="ID", help="The definition id.")],
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="This version (default: latest).")
    ] = None,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Show a stored definition: its version and the document as uploaded."""

    async def fetch() -> StoredDefinition:
        async with open_app(dsn) as app:
            return await app.definitions.get(definition_id, version)

    stored = run(fetch())
    if as_json:
        print_json({**_summary(stored), "document": stored.document})
        return
    typer.echo(f"id:         {stored.id}")
    typer.echo(f"version:    {stored.version}")
    typer.echo(f"name:       {stored.name}")
    typer.echo(f"uploaded:   {when(stored.uploaded_at)}")
    print_json(stored.document)
