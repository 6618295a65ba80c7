"""``durable defs validate`` and ``durable defs push``, run as real commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import durable

EXAMPLE = Path(__file__).parent.parent / "examples" / "flows" / "order_fulfilment.json"

pytestmark = pytest.mark.anyio


def durable_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, env={**os.environ},
    )  # fmt: skip


def test_validate_lists_every_problem_and_exits_1(tmp_path: Path):
    broken = json.loads(EXAMPLE.read_text())
    broken["steps"][0]["nextStep"] = "nowhere"
    broken["steps"][2]["conditionalNextSteps"] = {"paymentStatus ==": "ship"}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    (tmp_path / "garbage.json").write_text("{not json")
    done = durable_cli(
        "defs", "validate", str(EXAMPLE), "broken.json", "garbage.json", cwd=tmp_path
    )
    assert done.returncode == 1
    assert "order_fulfilment.json: valid (SHOP::order-fulfilment, 8 steps)" in done.stdout
    assert (
        "broken.json: steps[0].nextStep (step 'reserve'): refers to unknown step 'nowhere'"
        in done.stderr
    )
    assert "broken.json: steps[2].conditionalNextSteps" in done.stderr
    assert "garbage.json: not JSON" in done.stderr and "Traceback" not in done.stderr
    assert durable_cli("defs", "validate", str(EXAMPLE), cwd=tmp_path).returncode == 0


async def test_push_uploads_new_versions(tmp_path: Path, dsn: str):
    first = durable_cli("defs", "push", str(EXAMPLE), "--dsn", dsn, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "pushed SHOP::order-fulfilment version 1" in first.stdout
    second = durable_cli("defs", "push", str(EXAMPLE), "--dsn", dsn, cwd=tmp_path)
    assert "version 2" in second.stdout
    (tmp_path / "bad.json").write_text("[]")
    refused = durable_cli("defs", "push", str(EXAMPLE), "bad.json", "--dsn", dsn, cwd=tmp_path)
    assert refused.returncode == 1 and "nothing was pushed" in refused.stderr
    async with durable.App(dsn) as app:
        stored = await app.definitions.get("SHOP::order-fulfilment")
        assert stored.version == 2 and stored.document == json.loads(EXAMPLE.read_text())
