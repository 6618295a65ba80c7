"""Printing the benchmark's table."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    ("workload", "workload"),
    ("store", "store"),
    ("figure", "figure"),
    ("durable", "durable"),
    ("dbos", "DBOS"),
    ("ratio", "ratio"),
    ("target", "target"),
    ("holds", "holds"),
)


def _cell(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "NO"
    if value is None:
        return "-"
    return str(value)


def print_table(
    rows: list[dict[str, Any]], floors: dict[str, float], elapsed: float, mode: str
) -> None:
    cells = [[_cell(r[key]) for key, _ in COLUMNS] for r in rows]
    heads = [title for _, title in COLUMNS]
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(heads)
    ]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    print()
    print(line(heads))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print(line(c))
    print()
    print("Commit floor (one-row INSERT per transaction, same server, same run):")
    if "postgres_1" in floors:
        one, many = floors["postgres_1"], floors["postgres_16"]
        print(f"  Postgres  1 connection : {one:8,.0f} commits/s ({1000 / one:.3f} ms per commit)")
        print(f"  Postgres 16 connections: {many:8,.0f} commits/s")
    if "sqlite_full" in floors:
        full, normal = floors["sqlite_full"], floors["sqlite_normal"]
        print(
            f"  SQLite synchronous=FULL  : {full:8,.0f} commits/s ({1000 / full:.3f} ms) (default)"
        )
        print(f"  SQLite synchronous=NORMAL: {normal:8,.0f} commits/s ({1000 / normal:.3f} ms)")
    print(f"({mode} run, {elapsed:.0f} s)")
