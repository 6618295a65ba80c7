"""A griffe extension for the API reference: reST idioms in docstrings, as Markdown.

The docstrings of ``durable`` are Google style, with two reST habits that Python's
``help()`` shows well but Markdown does not:

- a literal block after a line ending in ``::`` (``Example::`` then an indented block)
  becomes a fenced Python block (a bare ``::`` line: a fenced text block, for diagrams);
  ``Example::`` / ``Examples::`` become a Google ``Examples:`` section;
- the roles ``:func:`x```, ``:meth:`x```, ``:class:`x``` (and ``attr``, ``exc``,
  ``mod``, ``obj``, ``data``) become a cross-reference when the target is a public
  ``durable.`` name, else inline code.

The source keeps its docstrings as they are; only the rendered reference changes.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_LITERAL = re.compile(r"^(?P<indent>[ ]*)(?P<text>\S.*?)?::[ ]*$")
_ROLE = re.compile(r":(?:func|meth|class|attr|exc|mod|obj|data):`~?(?P<target>[^`]+)`")
_EXAMPLE_TITLES = {"Example", "Examples"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _literal_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _LITERAL.match(lines[i])
        if match is None or lines[i].lstrip().startswith(".."):
            out.append(lines[i])
            i += 1
            continue
        base = len(match["indent"])
        start = i + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        end = start
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
            end += 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        if end == start:  # "::" with no indented block after it: leave the line alone
            out.append(lines[i])
            i += 1
            continue
        code = textwrap.dedent("\n".join(lines[start:end])).split("\n")
        title = (match["text"] or "").strip()
        pad = " " * base
        language = "python"
        if title in _EXAMPLE_TITLES:
            out.append(f"{pad}Examples:")
            pad += "    "
        elif title:
            out.extend([f"{pad}{title}:", ""])
        else:  # a bare "::" introduces a diagram or output, not code
            language = "text"
        out.append(f"{pad}```{language}")
        out.extend(f"{pad}{line}" if line else "" for line in code)
        out.append(f"{pad}```")
        i = end
    return "\n".join(out)


def _role(match: re.Match[str]) -> str:
    target = match["target"].strip()
    if target.startswith("durable.") and "._" not in target:
        return f"[`{target.removeprefix('durable.')}`][{target}]"
    return f"`{target}`"


def convert(text: str) -> str:
    """Markdown for a docstring that uses ``::`` literal blocks and Sphinx roles."""
    return _ROLE.sub(_role, _literal_blocks(text))


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring griffe loads, before mkdocstrings parses its sections."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
