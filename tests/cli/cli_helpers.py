"""Running the real ``durable`` command in a subprocess (imported by the CLI tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


class Cli:
    """Runs ``python -m durable.cli ARGS`` in ``cwd`` with ``env``; returns what it printed."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "durable.cli", *args],
            cwd=self.cwd, env={**self.env, **env}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def json(self, *args: str) -> Any:
        """Run a verb with ``--json``; it must succeed and print one JSON document."""
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with ``code`` and said why in one line, without a traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]
