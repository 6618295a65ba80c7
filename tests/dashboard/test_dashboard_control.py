"""Pause, Resume and Retry from the dashboard, one run at a time and in bulk, in a real
browser against ``durable serve`` on both stores."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from dashboard_app import needs_file_workflow
from dashboard_helpers import screenshot, store_call
from playwright.sync_api import expect
from quickstart import Order, order_workflow

import durable


def _start(dsn: str, workflow: Any, arg: Any, tags: dict[str, str], count: int = 1) -> list[str]:
    async def start(app: durable.App) -> list[str]:
        return [(await app.start(workflow, arg, tags=tags)).run_id for _ in range(count)]

    return store_call(dsn, start)


def _describe(dsn: str, run_id: str) -> durable.RunDescription:
    return store_call(dsn, lambda app: app.handle(run_id).describe())


def test_fail_fix_and_retry_a_run_from_its_page(
    page: Any, server: str, store_dsn: str, tmp_path: Path
) -> None:
    fix = tmp_path / "fix.txt"
    [run_id] = _start(store_dsn, needs_file_workflow, str(fix), {"suite": "retry"})
    page.goto(f"{server}/ui/runs/{run_id}")
    expect(page.locator("#status")).to_have_attribute("data-status", "FAILED", timeout=20_000)
    expect(page.locator("#run-error")).to_contain_text("is missing")
    expect(page.locator("tr.op-activity")).to_contain_text("FileNotFoundError")
    screenshot(page, "run-failed")

    fix.write_text("fixed")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "COMPLETED", timeout=20_000)
    expect(page.locator("#output")).to_contain_text('"fixed"')
    assert _describe(store_dsn, run_id).result == "fixed"


def test_bulk_retry_by_tag_retries_the_failed_runs(
    page: Any, server: str, store_dsn: str, tmp_path: Path
) -> None:
    batch = uuid.uuid4().hex[:8]
    fix = tmp_path / "fix.txt"
    failing = _start(store_dsn, needs_file_workflow, str(fix), {"batch": batch}, count=2)
    page.goto(f"{server}/ui/?tag=batch%3D{batch}&status=FAILED")
    expect(page.locator("#rows tr[data-run]")).to_have_count(2, timeout=20_000)
    fix.write_text("fixed")
    page.get_by_label("All matching the filter").check()
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Retry 2 runs?")
    page.get_by_role("button", name="Confirm: Retry 2 runs").click()
    expect(page.get_by_role("status")).to_have_text("Retry: 2 runs")
    for run_id in failing:
        result = store_call(store_dsn, lambda app, r=run_id: app.handle(r).result(timeout=20))
        assert result == "fixed"


def test_pause_and_resume_a_run_then_bulk_by_tag(page: Any, server: str, store_dsn: str):
    batch = uuid.uuid4().hex[:8]
    order = Order(order_id="p-1", sku="sku-1", quantity=1, amount_cents=100)
    run_id, other = _start(store_dsn, order_workflow, order, {"batch": batch}, count=2)
    page.goto(f"{server}/ui/runs/{run_id}")
    page.get_by_label("Reason (optional)").fill("stock count <today>")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "PAUSED", timeout=20_000)
    expect(page.locator("#blocked-on")).to_contain_text("stock count <today>")
    expect(page.locator("#blocked-on")).to_have_attribute("data-kind", "paused")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    screenshot(page, "run-paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#status")).not_to_have_attribute("data-status", "PAUSED")
    assert _describe(store_dsn, run_id).paused_reason is None

    page.goto(f"{server}/ui/?tag=batch%3D{batch}")
    page.get_by_label("All matching the filter").check()
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pause 2 runs?")
    page.get_by_role("button", name="Confirm: Pause 2 runs").click()
    expect(page.get_by_role("status")).to_have_text("Pause: 2 runs")
    for each in (run_id, other):
        assert _describe(store_dsn, each).paused_reason is not None

    page.get_by_label(f"Select run {other}").check()
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Resume 1 run?")
    page.get_by_role("button", name="Confirm: Resume 1 run").click()
    assert _describe(store_dsn, other).paused_reason is None
    assert _describe(store_dsn, run_id).paused_reason is not None


def _decision_flow(definition_id: str) -> dict[str, Any]:
    return {
        "id": definition_id,
        "name": "Route by amount",
        "steps": [
            {"id": "approve", "name": "Approve", "type": "USER_TASK", "nextStep": "decide"},
            {
                "id": "decide",
                "name": "Decide",
                "type": "DECISION",
                "conditionalNextSteps": {"amount > 100": "big", "amount <= 100": "small"},
            },
            {"id": "big", "name": "Big", "type": "END"},
            {"id": "small", "name": "Small", "type": "END"},
        ],
    }


def test_fork_a_flow_run_at_a_step_with_edited_variables(
    page: Any, server: str, store_dsn: str
) -> None:
    definition_id = f"fork::{uuid.uuid4().hex[:8]}"

    async def start(app: durable.App) -> str:
        await app.definitions.upload(_decision_flow(definition_id))
        handle = await app.start_flow(definition_id, variables={"amount": 5})
        return handle.run_id

    run_id = store_call(store_dsn, start)
    page.goto(f"{server}/ui/runs/{run_id}")
    expect(page.get_by_role("link", name="approve", exact=True)).to_have_attribute(
        "data-status", "RUNNING", timeout=15_000
    )
    page.get_by_label("Task").select_option("approve")
    page.get_by_role("button", name="Complete task").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "COMPLETED", timeout=15_000)
    expect(page.get_by_role("link", name="small", exact=True)).to_have_attribute(
        "data-status", "COMPLETED"
    )

    page.get_by_label("Fork at").select_option("decide")
    variables = page.get_by_label("Variables for the fork (JSON)")
    variables.fill("[500]")
    page.get_by_role("button", name="Fork").click()
    assert "JSON object" in variables.evaluate("f => f.validationMessage")  # not sent
    variables.fill('{"amount": 500}')
    page.get_by_role("button", name="Fork").click()

    expect(page.get_by_role("status")).to_contain_text(f"Forked from {run_id}")
    expect(page.locator("#forked-from")).to_have_text(run_id)
    fork_id = page.url.split("/ui/runs/")[1].split("?")[0]
    assert fork_id != run_id
    expect(page.locator("#status")).to_have_attribute("data-status", "COMPLETED", timeout=15_000)
    expect(page.get_by_role("link", name="big", exact=True)).to_have_attribute(
        "data-status", "COMPLETED"
    )
    expect(page.get_by_role("link", name="small", exact=True)).to_have_attribute(
        "data-status", "NOT_STARTED"
    )
    expect(page.get_by_role("link", name="approve", exact=True)).to_have_attribute(
        "data-status", "COMPLETED"
    )
    change = page.locator('#origin tr[data-change="changed"]')
    expect(change).to_contain_text("amount")
    expect(change).to_contain_text("5")
    expect(change).to_contain_text("500")
    screenshot(page, "fork")
    fork = _describe(store_dsn, fork_id)
    assert fork.forked_from == (run_id, "decide") and fork.variables == {"amount": 500}
    assert _describe(store_dsn, run_id).variables == {"amount": 5}
