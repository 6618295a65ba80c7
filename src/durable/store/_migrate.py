"""Numbered SQL migration files shipped with the package."""

from __future__ import annotations

from importlib import resources


def migrations(backend: str) -> list[tuple[int, str]]:
    """``(version, sql)`` for every ``NNNN_name.sql`` of a backend, in version order."""
    folder = resources.files("durable.store").joinpath("migrations", backend)
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.split("_", 1)[0]), item.read_text()))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """Split a migration into statements (they hold no semicolons inside literals); a
    ``CREATE TRIGGER`` runs up to the ``END`` that closes its body."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    found: list[str] = []
    in_trigger = False
    for piece in (part.strip() for part in "\n".join(lines).split(";")):
        if in_trigger:
            found[-1] = f"{found[-1]};\n{piece}"
            in_trigger = piece.upper() != "END"
        elif piece:
            found.append(piece)
            in_trigger = piece.upper().startswith("CREATE TRIGGER")
    return found
