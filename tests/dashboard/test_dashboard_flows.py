"""Definitions, flow runs and the operations pages in a real browser: upload (every
problem listed), the graph, Start, a live graph, Complete task; schedules, queues, workers."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import screenshot, store_call
from playwright.sync_api import expect
from quickstart import Order, order_workflow

import durable
from durable.flow import compile_definition


def _document(definition_id: str) -> dict[str, Any]:
    return {
        "id": definition_id,
        "name": "Approval <b>flow</b>",
        "steps": [
            {"id": "approve", "name": "Approve", "type": "USER_TASK", "nextStep": "done"},
            {"id": "done", "name": "Done", "type": "END"},
        ],
    }


def test_upload_lists_every_problem_then_start_and_complete_a_flow_live(
    page: Any, server: str, store_dsn: str, tmp_path: Path
) -> None:
    broken = {
        "id": "broken::flow",
        "name": "",
        "steps": [
            {"id": "a", "name": "A", "type": "USER_TASK", "nextStep": "nowhere"},
            {"id": "b", "name": "B", "type": "NO_SUCH_TYPE"},
        ],
    }
    with pytest.raises(durable.ValidationError) as invalid:
        compile_definition(broken)
    expected = invalid.value.problems
    assert len(expected) >= 3
    bad_file = tmp_path / "broken.json"
    bad_file.write_text(json.dumps(broken))
    page.goto(f"{server}/ui/definitions")
    page.get_by_label("Definition file").set_input_files(str(bad_file))
    page.get_by_role("button", name="Upload").click()
    listed = page.locator("#problems li")
    expect(listed).to_have_count(len(expected))
    for problem, item in zip(expected, listed.all(), strict=True):
        expect(item).to_contain_text(problem.path)
        expect(item).to_contain_text(problem.message)
        if problem.step_id:
            expect(item).to_contain_text(f"step {problem.step_id}")
    screenshot(page, "definitions-problems")

    definition_id = f"ui::{uuid.uuid4().hex[:8]}"
    good_file = tmp_path / "good.json"
    good_file.write_text(json.dumps(_document(definition_id)))
    page.get_by_label("Definition file").set_input_files(str(good_file))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"{definition_id} v1")
    expect(page.get_by_role("img", name="approve")).to_be_visible()
    expect(page.get_by_role("img", name="done")).to_be_visible()
    expect(page.locator("pre.json")).to_contain_text('"Approval <b>flow</b>"')
    screenshot(page, "definition")

    page.get_by_label("Variables (JSON)").fill('{"amount": 5}')
    page.get_by_label("Business key").fill("bk-7")
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/ui/runs/"))
    node = page.get_by_role("link", name="approve", exact=True)
    expect(node).to_have_attribute("data-status", "RUNNING", timeout=15_000)
    expect(page.get_by_role("link", name="done", exact=True)).to_have_attribute(
        "data-status", "NOT_STARTED"
    )
    expect(page.locator("#status")).to_have_attribute("data-status", "WAITING")
    expect(page.locator("#blocked-on")).to_contain_text("user task 'approve'")
    expect(page.locator("#blocked-on")).to_have_attribute("data-kind", "user_task")
    screenshot(page, "flow-run")

    page.get_by_label("Task").select_option("approve")
    page.locator("#task-variables").fill('{"approved": true}')
    page.get_by_role("button", name="Complete task").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "COMPLETED", timeout=15_000)
    expect(page.get_by_role("link", name="approve", exact=True)).to_have_attribute(
        "data-status", "COMPLETED"
    )
    expect(page.locator("#variables")).to_contain_text('"approved": true')

    page.get_by_role("link", name="approve", exact=True).click()
    expect(page.locator("#executions-title")).to_contain_text("approve")
    rows = page.locator("#executions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("USER_TASK")

    page.goto(f"{server}/ui/?search=bk-7")
    expect(page.locator("#rows tr[data-run]")).to_have_count(1)


def test_schedules_can_be_paused_and_resumed(page: Any, server: str, store_dsn: str) -> None:
    schedule_id = f"nightly-{uuid.uuid4().hex[:6]}"

    order = Order(order_id="nightly", sku="sku-1", quantity=1, amount_cents=1)

    async def create(app: durable.App) -> None:
        await app.schedule(order_workflow, cron="0 3 1 1 *", id=schedule_id, args=(order,))

    store_call(store_dsn, create)
    page.goto(f"{server}/ui/schedules")
    row = page.locator(f'tr[data-schedule="{schedule_id}"]')
    expect(row).to_contain_text("0 3 1 1 *")
    expect(row).to_contain_text("active")
    page.get_by_role("button", name=f"Pause {schedule_id}").click()
    expect(row).to_contain_text("paused")
    assert store_call(store_dsn, lambda app: app.schedules.get(schedule_id)).paused
    screenshot(page, "schedules")
    page.get_by_role("button", name=f"Resume {schedule_id}").click()
    expect(row).to_contain_text("active")
    assert not store_call(store_dsn, lambda app: app.schedules.get(schedule_id)).paused


def test_queues_and_workers_show_the_live_fleet(page: Any, server: str, store_dsn: str) -> None:
    page.goto(f"{server}/ui/queues")
    expect(page.locator('tr[data-queue="default"]')).to_be_visible()
    screenshot(page, "queues")
    workers = store_call(store_dsn, lambda app: app.store.list_workers())
    live = [w for w in workers if w.live]
    assert live
    page.goto(f"{server}/ui/workers")
    for worker in live:
        row = page.locator(f'tr[data-worker="{worker.id}"]')
        expect(row).to_contain_text(str(worker.pid))
        expect(row).to_contain_text(worker.host)
        expect(row).to_contain_text("live")
    screenshot(page, "workers")
