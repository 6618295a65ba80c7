"""The runs table and a run's page in a real browser, against ``durable serve`` on both
stores: find a run by tag, signal it from the page, watch it end live; bulk cancel by tag
with the count confirmed; payloads render as text."""

from __future__ import annotations

import uuid
from typing import Any

from dashboard_helpers import screenshot, store_call
from playwright.sync_api import expect
from quickstart import Order, order_workflow

import durable


def _start_orders(dsn: str, tags: dict[str, str], count: int = 1, order_id: str = "") -> list[str]:
    async def start(app: durable.App) -> list[str]:
        ids = []
        for n in range(count):
            order = Order(order_id=order_id or f"o-{n}", sku="sku-1", quantity=2, amount_cents=4999)
            handle = await app.start(order_workflow, order, tags=tags)
            ids.append(handle.run_id)
        return ids

    return store_call(dsn, start)


def _describe(dsn: str, run_id: str) -> durable.RunDescription:
    return store_call(dsn, lambda app: app.handle(run_id).describe())


def test_find_a_quickstart_run_by_tag_signal_it_and_watch_it_complete_live(
    page: Any, server: str, store_dsn: str
) -> None:
    batch = uuid.uuid4().hex[:8]
    [run_id] = _start_orders(store_dsn, {"batch": batch})
    _start_orders(store_dsn, {"batch": "other"})

    page.goto(f"{server}/ui/")
    page.get_by_label("Tag").fill(f"batch={batch}")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#rows tr[data-run]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-run", run_id)
    screenshot(page, "runs")

    page.get_by_role("link", name=run_id).click()
    status = page.locator("#status")
    expect(status).to_have_attribute("data-status", "WAITING", timeout=20_000)
    expect(page.locator("#blocked-on")).to_contain_text("approve", timeout=20_000)
    expect(page.locator("#blocked-on")).to_have_attribute("data-kind", "signal")

    page.get_by_label("Signal name").fill("approve")
    page.get_by_label("Payload (JSON)").fill('{"by": "ann"}')
    page.get_by_role("button", name="Signal").click()
    expect(page.get_by_role("status")).to_contain_text("Sent signal 'approve'")
    page.evaluate("window.notReloaded = true")  # gone if the page were loaded again

    expect(status).to_have_attribute("data-status", "COMPLETED", timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#output")).to_contain_text('"tracking": "trk-o-0"')
    timeline = page.locator(".timeline tr.op")
    expect(timeline).to_have_count(5)
    expect(page.locator("tr.op-signal")).to_contain_text("approve")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    screenshot(page, "run")
    assert _describe(store_dsn, run_id).result["tracking"] == "trk-o-0"


def test_new_runs_appear_in_the_table_without_a_reload(page: Any, server: str, store_dsn: str):
    batch = uuid.uuid4().hex[:8]
    page.goto(f"{server}/ui/?tag=batch%3D{batch}")
    expect(page.locator("#rows tr[data-run]")).to_have_count(0)
    page.evaluate("window.notReloaded = true")
    [run_id] = _start_orders(store_dsn, {"batch": batch})
    expect(page.locator(f'#rows tr[data-run="{run_id}"]')).to_have_count(1, timeout=10_000)
    assert page.evaluate("window.notReloaded") is True


def test_bulk_cancel_by_tag_states_the_count_then_cancels_exactly_those(
    page: Any, server: str, store_dsn: str
) -> None:
    batch = uuid.uuid4().hex[:8]
    doomed = _start_orders(store_dsn, {"batch": batch}, count=3)
    [spared] = _start_orders(store_dsn, {"batch": f"{batch}-not"})

    page.goto(f"{server}/ui/")
    page.get_by_label("Tag").fill(f"batch={batch}")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#rows tr[data-run]")).to_have_count(3)
    page.get_by_label("All matching the filter").check()
    page.get_by_role("button", name="Cancel").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel 3 runs?")
    screenshot(page, "bulk-confirm")
    page.get_by_role("button", name="Confirm: Cancel 3 runs").click()
    expect(page.get_by_role("status")).to_have_text("Cancel: 3 runs")
    for run_id in doomed:
        run = _describe(store_dsn, run_id)
        assert run.cancel_requested or run.status is durable.Status.CANCELLED
    untouched = _describe(store_dsn, spared)
    assert not untouched.cancel_requested and not untouched.status.is_terminal


def test_selected_rows_only_are_cancelled(page: Any, server: str, store_dsn: str) -> None:
    batch = uuid.uuid4().hex[:8]
    first, second = _start_orders(store_dsn, {"batch": batch}, count=2)
    page.goto(f"{server}/ui/?tag=batch%3D{batch}")
    page.get_by_label(f"Select run {first}").check()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#confirm-count")).to_have_attribute("data-count", "1")
    page.get_by_role("button", name="Confirm: Cancel 1 run").click()
    assert (
        _describe(store_dsn, first).cancel_requested
        or _describe(store_dsn, first).status is durable.Status.CANCELLED
    )
    assert not _describe(store_dsn, second).cancel_requested


def test_a_payload_holding_script_renders_as_text(page: Any, server: str, store_dsn: str):
    hostile = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
    [run_id] = _start_orders(store_dsn, {"batch": "xss"}, order_id=hostile)
    page.goto(f"{server}/ui/runs/{run_id}")
    expect(page.locator("#input")).to_contain_text(hostile)
    page.get_by_label("Signal name").fill("<b>bold</b>")
    page.get_by_label("Payload (JSON)").fill('{"html": "<script>window.pwned=3</script>"}')
    page.get_by_role("button", name="Signal").click()
    expect(page.get_by_role("status")).to_contain_text("<b>bold</b>")
    expect(page.locator("tr.op-activity").first).to_contain_text("<script>", timeout=10_000)
    assert page.evaluate("window.pwned") is None
    assert page.locator("main script, main img").count() == 0
    assert page.locator("script:not([src])").count() == 0


def test_bad_filter_and_bad_json_are_named_not_a_500(page: Any, server: str, store_dsn: str):
    page.goto(f"{server}/ui/?tag=nonsense")
    expect(page.locator("#error")).to_contain_text("Tag: write key=value")
    [run_id] = _start_orders(store_dsn, {"batch": "json"})
    page.goto(f"{server}/ui/runs/{run_id}")
    page.get_by_label("Signal name").fill("approve")
    field = page.get_by_label("Payload (JSON)")
    field.fill("{not json")
    page.get_by_role("button", name="Signal").click()
    assert "Not valid JSON" in field.evaluate("f => f.validationMessage")
    expect(page).to_have_url(f"{server}/ui/runs/{run_id}")


def test_the_unfiltered_table_counts_every_status(page: Any, server: str, store_dsn: str):
    runs = store_call(store_dsn, lambda app: app.list_runs(limit=1000))
    page.goto(f"{server}/ui/")
    for status in durable.Status:
        count = sum(1 for run in runs if run.status is status)
        link = page.locator(f'#counts a[data-status="{status.value}"]')
        if count and status in (durable.Status.COMPLETED, durable.Status.CANCELLED):
            expect(link).to_have_attribute("data-count", str(count))
    expect(page.locator("#rows tr[data-run]")).to_have_count(min(len(runs), 50))
    screenshot(page, "runs-all")
