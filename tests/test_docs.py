"""The documentation site builds without a warning, and its API reference is complete."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import durable

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

needs_mkdocs = pytest.mark.skipif(
    any(
        importlib.util.find_spec(name) is None
        for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
    ),
    reason="the docs tooling is not installed: pip install -e '.[docs]'",
)


@needs_mkdocs
def test_site_builds_strict_without_warnings(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    warnings = [line for line in output.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert done.returncode == 0 and not warnings, (
        "mkdocs build --strict failed; a new page in docs/ must be added to the nav in "
        "mkdocs.yml, and links must point at existing pages and anchors:\n" + output
    )
    assert (tmp_path / "site" / "api-client" / "index.html").is_file()


def test_getting_started_links_the_cli_reference() -> None:
    assert "](cli.md)" in (DOCS / "getting-started.md").read_text()


def test_readme_says_what_the_test_command_needs_and_gives_a_fast_subset() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "DURABLE_TEST_DSN" in readme and "pgserver" in readme
    subsets = re.findall(r"^\.venv/bin/python -m pytest -q (tests/\S+)", readme, flags=re.M)
    assert subsets, "the README shows a command that runs a subset of the tests"
    assert all((ROOT / path).exists() for path in subsets), subsets


def _documented() -> set[str]:
    """Every object named by a ``::: durable.X`` block on an API page."""
    text = "\n".join(page.read_text() for page in DOCS.glob("api*.md"))
    return set(re.findall(r"^::: (durable\.[\w.]+)", text, flags=re.M))


def _testing_module() -> ModuleType | None:
    try:
        return importlib.import_module("durable.testing")
    except ModuleNotFoundError:
        return None


def test_api_reference_covers_every_public_name() -> None:
    documented = _documented()
    wanted = {f"durable.{name}" for name in durable.__all__}
    testing = _testing_module()
    if testing is not None:
        names = getattr(testing, "__all__", [n for n in vars(testing) if not n.startswith("_")])
        wanted |= {f"durable.testing.{name}" for name in names}
    missing = sorted(wanted - documented)
    assert not missing, f"add '::: NAME' blocks for these to a docs/api*.md page: {missing}"


def test_examples_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    files = [p for p in EXAMPLES.rglob("*") if p.suffix in (".py", ".json")]
    missing = sorted(str(p.relative_to(EXAMPLES)) for p in files)
    missing = [name for name in missing if f"`{name}`" not in readme]
    assert not missing, f"list these in examples/README.md (as `path`): {missing}"


def _rst_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("griffe_rst", DOCS / "griffe_rst.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_mkdocs
def test_docstring_literal_blocks_and_roles_become_markdown() -> None:
    convert = _rst_extension().convert
    text = (
        "Start a run.\n\nExample::\n\n    async with app:\n        await app.start(wf)\n\n"
        "See :meth:`durable.App.schedule` and :func:`compile_definition`."
    )
    assert convert(text) == (
        "Start a run.\n\nExamples:\n    ```python\n    async with app:\n"
        "        await app.start(wf)\n    ```\n\n"
        "See [`App.schedule`][durable.App.schedule] and `compile_definition`."
    )
    tree = "The tree:\n\n::\n\n    A\n    └── B\n"
    assert convert(tree) == "The tree:\n\n```text\nA\n└── B\n```\n"
