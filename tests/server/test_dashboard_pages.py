"""The dashboard's routes in process (no browser): what they refuse and how, on both stores.

The browser tests (tests/dashboard/) drive the same pages through Chromium."""

from __future__ import annotations

import re

import anyio
import httpx
import pytest

import durable
from durable.server import create_app

pytestmark = pytest.mark.anyio


@durable.workflow(name="ui-waits")
async def waits(ctx: durable.Context) -> str:
    return str(await ctx.wait_signal("go"))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


async def test_no_action_is_reachable_with_get(app: durable.App, client: httpx.AsyncClient):
    handle = await app.start(waits)
    await app.definitions.upload(
        {"id": "ui::get", "name": "G", "steps": [{"id": "end", "name": "End", "type": "END"}]}
    )
    runs_before = len(await app.list_runs())
    run = f"/ui/runs/{handle.run_id}"
    actions = [
        *(f"{run}/{verb}" for verb in ("cancel", "signal?name=go", "pause", "resume", "retry")),
        f"{run}/complete",
        "/ui/bulk?action=cancel&scope=all",
        "/ui/definitions/ui::get/start",
        "/ui/schedules/s/pause",
        "/ui/logout",
    ]
    for path in actions:
        answer = await client.get(path)
        assert answer.status_code == 405, path
    described = await handle.describe()
    assert not described.cancel_requested and described.paused_reason is None
    assert len(await app.list_runs()) == runs_before


async def test_pages_answer_and_unknown_things_are_named(
    app: durable.App, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/")).headers["location"] == "/ui/"
    other_site = await client.get("/ui/", headers={"origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other_site.headers  # no CORS for the UI
    assert (
        "access-control-allow-origin"
        in (
            await client.get("/v1/workers", headers={"origin": "https://elsewhere.example"})
        ).headers
    )
    missing = await client.get("/ui/runs/no-such-run")
    assert missing.status_code == 404 and "no-such-run" in missing.text
    assert (await client.get("/ui/definitions/nope")).status_code == 404
    assert (await client.get("/ui/static/secrets.txt")).status_code == 404
    script = await client.get("/ui/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    bad = await client.get("/ui/", params={"status": "SLEEPY", "from": "yesterday"})
    assert bad.status_code == 200 and "Status: &#39;SLEEPY&#39; is not one of" in bad.text


async def test_actions_need_the_csrf_value_and_name_bad_input(
    app: durable.App, client: httpx.AsyncClient
) -> None:
    handle = await app.start(waits)
    page = await client.get(f"/ui/runs/{handle.run_id}")
    csrf = _csrf(page.text)
    forged = await client.post(f"/ui/runs/{handle.run_id}/cancel", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    cross = await client.post(
        f"/ui/runs/{handle.run_id}/cancel",
        data={"csrf": csrf},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert cross.status_code == 403
    assert not (await handle.describe()).cancel_requested

    bad = await client.post(
        f"/ui/runs/{handle.run_id}/signal", data={"csrf": csrf, "name": "go", "payload": "{"}
    )
    assert bad.status_code == 400 and "Payload (JSON) is not valid JSON" in bad.text
    sent = await client.post(
        f"/ui/runs/{handle.run_id}/signal", data={"csrf": csrf, "name": "go", "payload": '"x"'}
    )
    assert sent.status_code == 303
    done = await client.post(f"/ui/runs/{handle.run_id}/retry", data={"csrf": csrf})
    assert done.status_code == 409 and handle.run_id in done.text  # not FAILED
    unknown = await client.post("/ui/runs/nope/cancel", data={"csrf": csrf})
    assert unknown.status_code == 404

    # the /v1 API still refuses a form body: only the dashboard takes them
    refused = await client.post("/v1/instances", data={"definitionId": "x"})
    assert refused.status_code == 415


async def test_upload_and_start_name_what_is_wrong(app: durable.App, client: httpx.AsyncClient):
    csrf = _csrf((await client.get("/ui/")).text)
    not_json = await client.post(
        "/ui/definitions", data={"csrf": csrf}, files={"file": ("d.json", b"{nope", "text/plain")}
    )
    assert not_json.status_code == 400 and "d.json is not JSON" in not_json.text
    document = {
        "id": "ui::start",
        "name": "Start",
        "steps": [{"id": "end", "name": "End", "type": "END"}],
    }
    await app.definitions.upload(document)
    wrong = await client.post(
        "/ui/definitions/ui::start/start", data={"csrf": csrf, "variables": "[1]"}
    )
    assert wrong.status_code == 400 and "Variables (JSON) must be a JSON object" in wrong.text
    started = await client.post(
        "/ui/definitions/ui::start/start",
        data={"csrf": csrf, "variables": '{"a": 1}', "business_key": "k-1"},
    )
    assert started.status_code == 303
    [run] = await app.list_runs(business_key="k-1")
    assert started.headers["location"].startswith(f"/ui/runs/{run.run_id}")


async def test_read_only_refuses_with_a_valid_csrf_value(app: durable.App) -> None:
    handle = await app.start(waits)
    transport = httpx.ASGITransport(app=create_app(app, read_only=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        page = await client.get(f"/ui/runs/{handle.run_id}")
        assert "Signal name" not in page.text and ">Cancel<" not in page.text
        csrf = _csrf((await client.get("/ui/")).text)
        answer = await client.post(f"/ui/runs/{handle.run_id}/cancel", data={"csrf": csrf})
        assert answer.status_code == 403 and "read-only" in answer.text
    assert not (await handle.describe()).cancel_requested


@durable.activity
async def ui_echo(text: str) -> str:
    return text


@durable.workflow(name="ui-child")
async def child(ctx: durable.Context, text: str) -> str:
    return await ui_echo(text)


@durable.workflow(name="ui-parent")
async def parent(ctx: durable.Context) -> str:
    return await ctx.child(child, "<i>hi</i>", id="ui-child-of-parent")


async def test_a_parent_links_its_child_and_the_child_its_parent(
    running: durable.App, client: httpx.AsyncClient
) -> None:
    handle = await running.start(parent, id="ui-parent-run")
    assert await handle.result(timeout=20) == "<i>hi</i>"
    page = (await client.get("/ui/runs/ui-parent-run")).text
    assert 'href="/ui/runs/ui-child-of-parent"' in page
    assert "&lt;i&gt;hi&lt;/i&gt;" in page and "<i>hi</i>" not in page
    child_page = (await client.get("/ui/runs/ui-child-of-parent")).text
    assert 'href="/ui/runs/ui-parent-run"' in child_page
    assert 'data-status="COMPLETED"' in child_page


async def test_fork_a_code_run_at_an_operation_and_see_where_it_parts(
    running: durable.App, client: httpx.AsyncClient
) -> None:
    handle = await running.start(parent, id="ui-fork-origin")
    assert await handle.result(timeout=20) == "<i>hi</i>"
    csrf = _csrf((await client.get("/ui/runs/ui-fork-origin")).text)
    for at, message in (("x", "Fork at: &#39;x&#39; is not an operation number"), ("99", "99")):
        bad = await client.post("/ui/runs/ui-fork-origin/fork", data={"csrf": csrf, "at": at})
        assert bad.status_code == 400 and message in bad.text
    refused = await client.post(
        "/ui/runs/ui-fork-origin/fork", data={"csrf": csrf, "arguments": '"text"'}
    )
    assert refused.status_code == 400 and "must be an object or an array" in refused.text

    answer = await client.post("/ui/runs/ui-fork-origin/fork", data={"csrf": csrf, "at": ""})
    assert answer.status_code == 303
    fork_id = answer.headers["location"].split("/ui/runs/")[1].split("?")[0]
    origin, at = (await running.handle(fork_id).describe()).forked_from or ("", None)
    assert origin == "ui-fork-origin" and isinstance(at, int)  # its end, resolved
    page = (await client.get(f"/ui/runs/{fork_id}")).text
    assert 'id="forked-from">ui-fork-origin</a> at #' in page
    assert "Fork of" in page and f"operation #{at}" in page
    assert "Inputs and variables are the same as the origin" in page


async def test_a_schedule_links_the_run_of_its_last_tick(
    running: durable.App, client: httpx.AsyncClient
) -> None:
    await running.schedule(waits, cron="* * * * * *", id="ui-every-second")
    for _ in range(100):
        info = await running.schedules.get("ui-every-second")
        if info.last_fire_at is not None:
            break
        await anyio.sleep(0.1)
    assert info.last_fire_at is not None
    await running.schedules.pause("ui-every-second")
    info = await running.schedules.get("ui-every-second")
    assert info.last_fire_at is not None
    page = (await client.get("/ui/schedules")).text
    found = re.search(r'href="/ui/runs/(ui-every-second%40[^"]+)"', page)
    assert found is not None, page
    run_page = await client.get(f"/ui/runs/{found.group(1)}")
    assert run_page.status_code == 200 and "ui-waits" in run_page.text


async def test_a_live_run_page_answers_a_poll_with_304_until_the_run_changes(
    app: durable.App, client: httpx.AsyncClient
) -> None:
    handle = await app.start(waits)
    for _ in range(3):  # the tag also turns over every 10 s: a poll may straddle that
        first = await client.get(f"/ui/runs/{handle.run_id}")
        tag = first.headers["etag"]
        assert first.status_code == 200 and "data-etag=" in first.text
        again = await client.get(f"/ui/runs/{handle.run_id}", headers={"if-none-match": tag})
        if again.status_code == 304:
            break
    assert again.status_code == 304 and again.content == b""
    for change in (handle.signal("go", 1), handle.pause("check"), handle.cancel()):
        await change
        fresh = await client.get(f"/ui/runs/{handle.run_id}", headers={"if-none-match": tag})
        assert fresh.status_code == 200 and fresh.headers["etag"] != tag
        tag = fresh.headers["etag"]
