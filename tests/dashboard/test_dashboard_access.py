"""Who may see and do what: the token's login page, the session cookie and CSRF, the
read-only mode, the Content-Security-Policy, and keyboard use and labels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dashboard_helpers import dashboard_server, screenshot, store_call
from playwright.sync_api import expect
from quickstart import Order, order_workflow

import durable

TOKEN = "s3cret-t0ken"


def _start(dsn: str) -> str:
    async def start(app: durable.App) -> str:
        order = Order(order_id="a-1", sku="sku-1", quantity=1, amount_cents=100)
        return (await app.start(order_workflow, order, tags={"suite": "access"})).run_id

    return store_call(dsn, start)


@pytest.fixture(scope="module")
def guarded(store_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dashboard_server(store_dsn, tmp_path_factory.mktemp("token"), "--token", TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def read_only(store_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dashboard_server(store_dsn, tmp_path_factory.mktemp("ro"), "--read-only") as base:
        yield base


def test_with_a_token_nothing_is_reachable_without_it(guarded: str, store_dsn: str) -> None:
    run_id = _start(store_dsn)
    pages = ["/ui/", f"/ui/runs/{run_id}", "/ui/definitions", "/ui/schedules", "/ui/queues",
             "/ui/workers", "/ui/definitions/anything"]  # fmt: skip
    with httpx.Client(base_url=guarded) as anonymous:
        for path in pages:
            answer = anonymous.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/ui/login?next="), path
            assert run_id not in answer.text
        for path in (f"/ui/runs/{run_id}/cancel", "/ui/bulk", "/ui/definitions"):
            answer = anonymous.post(path, data={"csrf": "x", "action": "cancel", "scope": "all"})
            assert answer.status_code == 401, path
        assert anonymous.get("/v1/workers").status_code == 401
        login = anonymous.get("/ui/login")
        assert login.status_code == 200 and 'label for="token">Token<' in login.text
        assert "script-src 'self'" in login.headers["content-security-policy"]
        wrong = anonymous.post("/ui/login", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert not _describe(store_dsn, run_id).cancel_requested


def _describe(dsn: str, run_id: str) -> durable.RunDescription:
    return store_call(dsn, lambda app: app.handle(run_id).describe())


def test_the_login_page_takes_the_token_and_sets_a_strict_http_only_cookie(
    page: Any, guarded: str, store_dsn: str
) -> None:
    run_id = _start(store_dsn)
    page.goto(f"{guarded}/ui/runs/{run_id}")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    _reachable_by_tab(page)
    assert page.locator("script:not([src])").count() == 0
    screenshot(page, "login")
    page.get_by_label("Token").fill("not-it")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_be_visible()
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{guarded}/ui/runs/{run_id}")
    expect(page.locator("#status")).to_have_attribute("data-status", re.compile(".+"))
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it

    # A request carrying the cookie but not the page's CSRF value changes nothing.
    with httpx.Client(base_url=guarded, cookies={cookie["name"]: cookie["value"]}) as forged:
        assert forged.get("/ui/").status_code == 200
        answer = forged.post(f"/ui/runs/{run_id}/cancel", data={"csrf": "guess"})
        assert answer.status_code == 403
    assert not _describe(store_dsn, run_id).cancel_requested

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.goto(f"{guarded}/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login"))


def test_read_only_hides_and_refuses_every_action(page: Any, read_only: str, store_dsn: str):
    run_id = _start(store_dsn)
    page.goto(f"{read_only}/ui/runs/{run_id}")
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("#status")).to_have_attribute("data-status", re.compile(".+"))
    for name in ("Signal", "Cancel", "Complete task", "Pause", "Resume", "Retry", "Fork"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    page.goto(f"{read_only}/ui/")
    expect(page.locator("#rows tr[data-run]").first).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.locator("input[name=run]")).to_have_count(0)
    page.goto(f"{read_only}/ui/definitions")
    expect(page.get_by_role("button", name="Upload")).to_have_count(0)

    csrf = page.locator("form.logout input[name=csrf]")  # no login form: read it from a page
    assert csrf.count() == 0
    with httpx.Client(base_url=read_only) as client:
        html = client.get("/ui/").text
        assert 'name="csrf"' in html  # the bulk form is there, without its buttons
        value = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
        assert value is not None
        for path, data in (
            (f"/ui/runs/{run_id}/cancel", {}),
            (f"/ui/runs/{run_id}/signal", {"name": "approve", "payload": "{}"}),
            ("/ui/bulk", {"action": "cancel", "scope": "all", "confirmed": "yes"}),
        ):
            answer = client.post(path, data={"csrf": value.group(1), **data})
            assert answer.status_code == 403, path
            assert "read-only" in answer.text
        # the API workers and scripts use is unchanged, actions included
        assert client.get("/v1/workers").status_code == 200
        dry = client.post("/v1/runs/cancel", json={"tags": {"suite": "access"}, "dryRun": True})
        assert dry.status_code == 200 and dry.json()["count"] >= 1
    run = _describe(store_dsn, run_id)
    assert not run.cancel_requested


def test_every_page_sends_a_strict_csp_and_holds_no_inline_script(
    page: Any, server: str, store_dsn: str
) -> None:
    run_id = _start(store_dsn)
    for path in ("/ui/", f"/ui/runs/{run_id}", "/ui/definitions", "/ui/schedules",
                 "/ui/queues", "/ui/workers"):  # fmt: skip
        answer = page.goto(f"{server}{path}")
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
        assert page.locator("script:not([src])").count() == 0
        assert page.locator("[onclick], [onload], [onerror], [style]").count() == 0


def _reachable_by_tab(page: Any) -> None:
    """Every enabled control of the page gets focus by Tab alone, and every field is labelled."""
    controls = page.evaluate(
        """() => Array.from(document.querySelectorAll(
             'a[href], button, input:not([type=hidden]), select, textarea, summary'))
           .filter(e => !e.disabled && e.offsetParent !== null)
           .map((e, i) => { e.dataset.probe = String(i); return String(i); })"""
    )
    assert len(controls) >= 2, "the probe found no controls: it is broken"
    unlabelled = page.evaluate(
        """() => Array.from(document.querySelectorAll(
             'input:not([type=hidden]), select, textarea'))
           .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
           .map(e => e.outerHTML)"""
    )
    assert not unlabelled, unlabelled
    seen = set()
    page.locator("body").focus()
    for _ in range(len(controls) * 2 + 5):
        page.keyboard.press("Tab")
        probe = page.evaluate(
            "() => document.activeElement && document.activeElement.dataset.probe"
        )
        if probe is not None:
            seen.add(probe)
        if seen == set(controls):
            break
    assert seen == set(controls), f"not reachable by Tab: {set(controls) - seen}"


def test_keyboard_reaches_every_control_and_every_field_has_a_label(
    page: Any, server: str, store_dsn: str
) -> None:
    run_id = _start(store_dsn)
    document = {
        "id": "keys::flow",
        "name": "Keys",
        "steps": [
            {"id": "check", "name": "Check", "type": "USER_TASK", "nextStep": "done"},
            {"id": "done", "name": "Done", "type": "END"},
        ],
    }

    async def flow(app: durable.App) -> str:
        await app.definitions.upload(document)
        return (await app.start_flow("keys::flow")).run_id

    flow_id = store_call(store_dsn, flow)
    pages = ("/ui/", f"/ui/runs/{run_id}", f"/ui/runs/{flow_id}", "/ui/definitions",
             "/ui/definitions/keys::flow")  # fmt: skip
    for path in pages:
        page.goto(f"{server}{path}")
        _reachable_by_tab(page)
    page.goto(f"{server}/ui/login")  # no token: nothing to log in to
    expect(page).to_have_url(f"{server}/ui/")
