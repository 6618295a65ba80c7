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


# -- imports: a tree of layers -------------------------------------------------------------
LAYERS: tuple[tuple[str, ...], ...] = (
    # 0: values and context every layer shares; they import nothing of durable above them
    (
        "durable.codecs",
        "durable.errors",
        "durable.info",
        "durable.policy",
        "durable.queues",
        "durable.serde",
        "durable._clock",
        "durable._cron",
        "durable._current",
        "durable._future",
        "durable._values",
        "durable._logging",
        "durable._typed",
        "durable._wire",
    ),
    ("durable.store",),  # 1: persistence; all SQL
    (  # 2: what runs are made of and how they start
        "durable.registry",
        "durable._tracing",
        "durable._describe",
        "durable._blocked",
        "durable._services",
        "durable._start",
    ),
    ("durable.runtime",),  # 3: the deterministic executor
    ("durable.flow",),  # 4: JSON step graphs on the runtime
    ("durable.worker",),  # 5: the claim loop
    ("durable.handle", "durable._fork", "durable.schedules", "durable.app"),  # 6: the client
    # 7: entry points (``durable.server.ui`` is the dashboard, inside the server)
    ("durable.testing", "durable.cli", "durable.server", "durable.server.ui", "durable"),
)
"""The layers of docs/architecture.md, lowest first: a module imports only its own layer
and those below it, and no two modules import each other (even under TYPE_CHECKING)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name: str, path: Path, tree: ast.Module, known: set[str]) -> set[str]:
    """The modules of durable that one module imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{a.name}" for a in node.names} & known
            found.update(submodules)
            if target in known and (node.module or not submodules):
                found.add(target)
    found.discard(name)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): (path, tree) for path, tree in _modules(SRC).items()}
    known = set(modules)
    return {name: _imports(name, path, tree, known) for name, (path, tree) in modules.items()}


def _layer(module: str) -> int:
    best, layer = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), index
    assert layer >= 0, f"{module} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return layer


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_imports_form_no_cycle() -> None:
    graph = _import_graph()
    assert len(graph) > 50 and graph["durable.app"], "the import scan is broken"
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


def test_no_layer_imports_a_layer_above_it() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in sorted(_import_graph().items())
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)
