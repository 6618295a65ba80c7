"""Work through large sets with a progress bar: ``runs prune`` and the bulk ``runs`` verbs.

The bar goes to stderr, and only when stderr is a terminal (scripts and ``--json`` get
the final line alone). Each verb first counts the runs it would change, asks for
confirmation (unless ``--yes``), then does the work and reports progress as the store
finishes each batch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

MIN_BAR = 100
"""Sets smaller than this finish too fast for a bar to help."""


def parse_age(value: str | None, option: str) -> timedelta | None:
    """An age such as ``30d``, ``12h``, ``15m``, ``90s`` or ``2w``."""
    if value is None:
        return None
    found = _AGE.match(value)
    if found is None:
        raise typer.BadParameter(
            f"expected an age such as 30d, 12h, 15m, 90s or 2w, got {value!r}", param_hint=option
        )
    return timedelta(seconds=float(found[1]) * _UNITS[found[2].lower()])


def plural(count: int, noun: str = "run") -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@contextmanager
def bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A callback taking the count done so far, drawing a bar on a terminal's stderr."""
    if total < MIN_BAR or not os.isatty(2):
        yield lambda done: None
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.update(task, completed=min(done, total))


def confirm(question: str, yes: bool) -> None:
    """Ask on stderr unless ``yes``; abort (exit 1) on no."""
    if not yes:
        typer.confirm(question, abort=True, err=True)
