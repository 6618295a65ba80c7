"""``durable runs diff A B``: where the histories of two runs part (a fork and its
original, a retried run and a fresh one)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..info import HistoryEvent
from . import _render
from ._common import Dsn, Json, compact, open_app, print_json, run

SHOWN = 5
"""Records shown of each side after the histories part."""


def _same(a: HistoryEvent, b: HistoryEvent) -> bool:
    """Two records say the same: operation, outcome and payload (not when or where)."""
    return (a.seq, a.event, a.kind, a.name, a.payload) == (
        b.seq,
        b.event,
        b.kind,
        b.name,
        b.payload,
    )


def common_prefix(a: list[HistoryEvent], b: list[HistoryEvent]) -> int:
    """How many records, from the start, the two histories share."""
    count = 0
    for left, right in zip(a, b, strict=False):
        if not _same(left, right):
            break
        count += 1
    return count


def _line(event: HistoryEvent) -> str:
    payload = "" if event.payload is None else " " + compact(event.payload, 120)
    return f"seq {event.seq} {event.kind} {event.name!r} {event.event}{payload}"


def diff(
    first: Annotated[str, typer.Argument(metavar="A", help="A run id.")],
    second: Annotated[str, typer.Argument(metavar="B", help="Another run id.")],
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Print where the histories (journals) of two runs part, and what follows on each side."""

    async def fetch() -> tuple[list[HistoryEvent], list[HistoryEvent]]:
        async with open_app(dsn) as app:
            return await app.handle(first).history(), await app.handle(second).history()

    a, b = run(fetch())
    shared = common_prefix(a, b)
    rest_a, rest_b = a[shared : shared + SHOWN], b[shared : shared + SHOWN]
    if as_json:
        body: dict[str, Any] = {
            "a": first,
            "b": second,
            "common": shared,
            "a_records": len(a),
            "b_records": len(b),
            "a_next": [_render.event_json(e) for e in rest_a],
            "b_next": [_render.event_json(e) for e in rest_b],
        }
        print_json(body)
        return
    if shared == len(a) == len(b):
        typer.echo(f"the histories of {first} and {second} are the same ({len(a)} records)")
        return
    last = f", up to seq {a[shared - 1].seq}" if shared else ""
    typer.echo(f"{first} and {second} share their first {shared} records{last}; then:")
    for run_id, rest, total in ((first, rest_a, len(a)), (second, rest_b, len(b))):
        typer.echo(f"  {run_id} ({total - shared} more):")
        for event in rest:
            typer.echo(f"    {_line(event)}")
        if total - shared > len(rest):
            typer.echo(f"    ... {total - shared - len(rest)} more")
        if not rest:
            typer.echo("    (nothing)")
