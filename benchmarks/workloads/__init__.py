"""The benchmark workloads of docs/performance.md, one module each (``w1`` ... ``w8``).

Each module has ``STORES`` (where it runs), ``SIZE`` (its N, full and ``--quick``),
``async durable(config)`` and, where DBOS has an equivalent, ``async dbos(config)``,
each returning a dict of figures, and ``rows(store, ours, peer, context)`` turning them
into lines of the table (``context`` holds the commit floors and the other results).
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]


def row(
    workload: str,
    store: str,
    figure: str,
    ours: str,
    peer: str = "n/a",
    ratio: str = "",
    target: str = "",
    holds: bool | None = None,
) -> Row:
    """One line of the table."""
    return {
        "workload": workload,
        "store": store,
        "figure": figure,
        "durable": ours,
        "dbos": peer,
        "ratio": ratio,
        "target": target,
        "holds": holds,
    }


def times(a: float, b: float) -> str:
    """``a / b`` as "N.Nx"."""
    return f"{a / b:.1f}x" if b else "-"
