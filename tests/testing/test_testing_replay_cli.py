"""``durable runs export`` and ``durable replay``, as a deploy check would run them.

A run is recorded on a real store by a separate process running version 1 of the code,
exported with ``durable runs export``, then replayed by ``durable replay`` against
version 1 (passes) and against version 2, which reorders two calls (fails, one line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

V1 = """
import durable

app = durable.App()


@durable.activity(name="shop.reserve")
async def reserve(order_id: str) -> str:
    return f"r-{order_id}"


@durable.activity(name="shop.charge")
async def charge(order_id: str) -> str:
    return f"c-{order_id}"


@durable.workflow(name="shop.order")
async def order(ctx: durable.Context, order_id: str) -> str:
    ref = await reserve(order_id)
    await ctx.sleep(0.01)
    receipt = await charge(order_id)
    return f"{ref}/{receipt}"
"""

V2 = V1.replace(
    """    ref = await reserve(order_id)
    await ctx.sleep(0.01)
    receipt = await charge(order_id)""",
    """    receipt = await charge(order_id)
    await ctx.sleep(0.01)
    ref = await reserve(order_id)""",
)

RECORD = """
import asyncio, sys
import durable
from shop_v1 import order

async def main() -> None:
    async with durable.App(sys.argv[1]) as app, app.worker():
        handle = await app.start(order, "o-1", id="order-1")
        print(await handle.result(timeout=30))

asyncio.run(main())
"""


class Shell:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
        self.env["PYTHONPATH"] = str(cwd)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    def durable(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self("-m", "durable.cli", *args)


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    assert V2 != V1
    (tmp_path / "shop_v1.py").write_text(textwrap.dedent(V1))
    (tmp_path / "shop_v2.py").write_text(textwrap.dedent(V2))
    (tmp_path / "record.py").write_text(textwrap.dedent(RECORD))
    return Shell(tmp_path)


def test_replay_flags_reordered_code_against_a_recorded_history(shell: Shell, dsn: str):
    recorded = shell("record.py", dsn)
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.strip() == "r-o-1/c-o-1"

    exported = shell.durable("runs", "export", "order-1", "--dsn", dsn, "-o", "order-1.json")
    assert exported.returncode == 0, exported.stderr
    document = json.loads((shell.cwd / "order-1.json").read_text())
    assert document["run"]["workflow"] == "shop.order"
    assert document["run"]["status"] == "COMPLETED"
    assert [(e["kind"], e["event"]) for e in document["journal"]] == [
        ("activity", "result"),
        ("sleep", "timer"),
        ("sleep", "result"),
        ("activity", "result"),
    ]

    same = shell.durable("replay", "shop_v1:app", "--from-file", "order-1.json")
    assert same.returncode == 0, same.stderr
    assert "replays with this code" in same.stdout

    changed = shell.durable("replay", "shop_v2:app", "--from-file", "order-1.json")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "Traceback" not in changed.stderr
    lines = changed.stderr.strip().splitlines()
    assert len(lines) == 1, changed.stderr
    assert "sequence number 1" in lines[0]
    assert "the journal holds activity 'shop.reserve'" in lines[0]
    assert "the code asked for activity 'shop.charge'" in lines[0]

    from_store = shell.durable("replay", "shop_v2:app", "--run", "order-1", "--dsn", dsn)
    assert from_store.returncode == 1
    assert from_store.stderr.strip() == lines[0]

    as_json = shell.durable("replay", "shop_v1:app", "--run", "order-1", "--dsn", dsn, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["deterministic"] is True

    to_stdout = shell.durable("runs", "export", "order-1", "--dsn", dsn)
    assert json.loads(to_stdout.stdout) == document


def test_replay_usage_and_missing_things(shell: Shell, tmp_path: Path):
    neither = shell.durable("replay", "shop_v1:app")
    assert neither.returncode == 2
    missing = shell.durable("replay", "shop_v1:app", "--from-file", "nope.json")
    assert missing.returncode == 1
    assert "cannot read the history file" in missing.stderr
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    assert shell("record.py", db).returncode == 0
    unknown = shell.durable("runs", "export", "no-such-run", "--dsn", db)
    assert unknown.returncode == 1
    assert "no run with id 'no-such-run'" in unknown.stderr
