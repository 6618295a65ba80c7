"""Fixtures for tests that run the real ``durable`` command in a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cli_helpers import Cli

WORKER_CODE = Path(__file__).parent.parent / "worker"
"""``crash_app`` (workflows ``crash-steps`` and ``crash-sleep``) lives there."""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(WORKER_CODE), env.get("PYTHONPATH")]))
    env["CRASH_LOG"] = str(tmp_path / "side-effects.log")
    return Cli(tmp_path, env)


@pytest.fixture
def sqlite_dsn(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"
