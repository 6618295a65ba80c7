"""The architecture's rules, checked by walking the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "durable"
ENCAPSULATED = ("runtime", "worker")
"""Packages whose objects other code reaches only through public methods."""


def _modules(root: Path) -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(root.rglob("*.py"))}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_members(tree: ast.Module) -> set[str]:
    """The private attributes and methods the classes of one module define."""
    names: set[str] = set()
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        for node in ast.walk(cls):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _private(node.name):
                names.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
                and _private(node.attr)
            ):
                names.add(node.attr)
    return names


def _touches(tree: ast.Module, names: set[str]) -> list[tuple[int, str]]:
    """Where a module reads or writes one of ``names`` on an object not its own."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names:
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not own:
                found.append((node.lineno, f".{node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in names
        ):
            found.append((node.lineno, f"{node.func.id}(..., {node.args[1].value!r})"))
    return found


def test_no_code_outside_runtime_and_worker_touches_their_private_members() -> None:
    modules = _modules(SRC)
    inside = tuple(SRC / package for package in ENCAPSULATED)
    names: set[str] = set()
    for path, tree in modules.items():
        if path.is_relative_to(inside[0]) or path.is_relative_to(inside[1]):
            names |= _private_members(tree)
    assert names, "no private members found: the scan is broken"
    offences = [
        f"{path.relative_to(SRC.parent)}:{line}: {what}"
        for path, tree in modules.items()
        if not any(path.is_relative_to(package) for package in inside)
        for line, what in _touches(tree, names)
    ]
    assert not offences, "private members of runtime/worker objects used elsewhere:\n" + "\n".join(
        offences
    )
