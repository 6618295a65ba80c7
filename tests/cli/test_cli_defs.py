"""``durable defs validate|push|ls|show``, run as real commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import Cli, one_line_error

import durable

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "flows"
EXAMPLE = EXAMPLES / "order_fulfilment.json"
LOAN_STEPS = len(json.loads((EXAMPLES / "loan_origination.json").read_text())["steps"])

pytestmark = pytest.mark.anyio


def test_validate_lists_every_problem_and_exits_1(cli: Cli, tmp_path: Path):
    broken = json.loads(EXAMPLE.read_text())
    broken["steps"][0]["nextStep"] = "nowhere"
    broken["steps"][2]["conditionalNextSteps"] = {"paymentStatus ==": "ship"}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    (tmp_path / "garbage.json").write_text('{"id": "x",\n "name": "unterminated\n}')
    done = cli("defs", "validate", str(EXAMPLE), "broken.json", "garbage.json", "missing.json")
    assert done.returncode == 1
    assert "order_fulfilment.json: valid (SHOP::order-fulfilment, 8 steps)" in done.stdout
    problems = done.stderr.splitlines()
    assert (
        "broken.json: steps[0].nextStep (step 'reserve'): refers to unknown step 'nowhere'"
        in problems
    )
    assert any(line.startswith("broken.json: steps[2].conditionalNextSteps") for line in problems)
    assert "garbage.json: not JSON: Invalid control character at: line 2 column 23" in problems, (
        problems
    )
    assert any(line.startswith("missing.json: cannot read") for line in problems)
    assert "Traceback" not in done.stderr
    assert cli("defs", "validate", str(EXAMPLE)).returncode == 0

    report = cli("defs", "validate", str(EXAMPLE), "broken.json", "--json")
    assert report.returncode == 1
    data = json.loads(report.stdout)
    assert data["valid"] is False
    good, bad = data["files"]
    assert good == {
        "path": str(EXAMPLE), "valid": True, "id": "SHOP::order-fulfilment", "steps": 8,
        "problems": [],
    }  # fmt: skip
    assert bad["valid"] is False and bad["id"] is None
    assert [f"broken.json: {problem}" for problem in bad["problems"]] == [
        line for line in problems if line.startswith("broken.json")
    ]


async def test_push_ls_show(cli: Cli, tmp_path: Path, dsn: str):
    first = cli("defs", "push", str(EXAMPLE), "--dsn", dsn)
    assert first.returncode == 0, first.stderr
    assert "pushed SHOP::order-fulfilment version 1" in first.stdout
    second = cli.json("defs", "push", str(EXAMPLE), str(EXAMPLES / "loan_origination.json"),
                      "--dsn", dsn)  # fmt: skip
    assert [(p["id"], p["version"]) for p in second["pushed"]] == [
        ("SHOP::order-fulfilment", 2), ("LOS::loan-application", 1)
    ]  # fmt: skip
    assert set(second["pushed"][0]) == {"path", "id", "version", "name", "uploaded_at"}
    (tmp_path / "bad.json").write_text("[]")
    refused = cli("defs", "push", str(EXAMPLE), "bad.json", "--dsn", dsn)
    assert refused.returncode == 1 and "nothing was pushed" in refused.stderr

    listed = cli.json("defs", "ls", "--dsn", dsn)
    assert listed["total"] == 2
    assert [(d["id"], d["version"], d["steps"]) for d in listed["definitions"]] == [
        ("LOS::loan-application", 1, LOAN_STEPS), ("SHOP::order-fulfilment", 2, 8)
    ]  # fmt: skip
    assert cli.json("defs", "ls", "--keyword", "shop", "--dsn", dsn)["total"] == 1
    table = cli("defs", "ls", "--limit", "1", "--dsn", dsn)
    assert "LOS::loan-application" in table.stdout and "--offset 1" in table.stdout

    shown = cli.json("defs", "show", "SHOP::order-fulfilment", "--version", "1", "--dsn", dsn)
    assert shown["version"] == 1 and shown["document"] == json.loads(EXAMPLE.read_text())
    text = cli("defs", "show", "SHOP::order-fulfilment", "--dsn", dsn)
    assert "version:    2" in text.stdout and '"steps": [' in text.stdout
    unknown = one_line_error(cli("defs", "show", "SHOP::nope", "--dsn", dsn), 1)
    assert unknown == "durable: no definition 'SHOP::nope' is stored"
    async with durable.App(dsn) as app:
        stored = await app.definitions.get("SHOP::order-fulfilment")
        assert stored.version == 2 and stored.document == json.loads(EXAMPLE.read_text())
