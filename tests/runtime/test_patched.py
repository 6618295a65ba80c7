"""ctx.patched: old runs replay their old path, new runs take the new one."""

from __future__ import annotations

import pytest

import durable

pytestmark = pytest.mark.anyio

ran: list[str] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()


@durable.activity
async def send_email(user: str) -> str:
    ran.append(f"email {user}")
    return f"emailed {user}"


@durable.activity
async def send_sms(user: str) -> str:
    ran.append(f"sms {user}")
    return f"texted {user}"


def deploy(version: str) -> durable.Workflow[..., list[str]]:
    """Register a version of the 'notify' workflow (same name: replaces the last)."""

    @durable.workflow(name="patch-notify")
    async def notify(ctx: durable.Context, user: str) -> list[str]:
        if version == "old":
            sent = await send_email(user)
        elif version == "patched":
            sent = await send_sms(user) if ctx.patched("sms") else await send_email(user)
        else:  # every run with the old path has ended: only the marker remains
            ctx.deprecate_patch("sms")
            sent = await send_sms(user)
        reply = await ctx.wait_signal("reply")
        return [sent, reply]

    return notify


async def test_old_runs_keep_the_old_path_and_new_runs_take_the_new_one(app, wait_status):
    old_code = deploy("old")
    async with app.worker():
        before = await app.start(old_code, "ann", id="before-patch")
        await wait_status(before, durable.Status.WAITING)

    new_code = deploy("patched")
    async with app.worker():
        after = await app.start(new_code, "bob", id="after-patch")
        await wait_status(after, durable.Status.WAITING)
    # both runs replay under the patched code on a fresh worker
    async with app.worker():
        await before.signal("reply", "hi")
        await after.signal("reply", "yo")
        assert await before.result(timeout=10) == ["emailed ann", "hi"]
        assert await after.result(timeout=10) == ["texted bob", "yo"]
    assert ran == ["email ann", "sms bob"]  # replay re-ran nothing
    markers = [e.name for e in await after.history() if e.kind == "patch"]
    assert markers == ["sms"] and not [e for e in await before.history() if e.kind == "patch"]


def deploy_late(patched: bool) -> durable.Workflow[..., str]:
    @durable.workflow(name="patch-late")
    async def late(ctx: durable.Context, user: str) -> str:
        await ctx.wait_signal("start")
        if patched and ctx.patched("sms"):
            return await send_sms(user)
        return await send_email(user)

    return late


async def test_a_run_that_had_not_reached_the_change_takes_the_new_path(app, wait_status):
    async with app.worker():
        handle = await app.start(deploy_late(patched=False), "cy", id="late")
        await wait_status(handle, durable.Status.WAITING)
    deploy_late(patched=True)
    async with app.worker():
        await handle.signal("start")
        assert await handle.result(timeout=10) == "texted cy"


async def test_deprecating_the_patch_replays_runs_that_recorded_it(app, wait_status):
    deploy("patched")
    async with app.worker():
        handle = await app.start(deploy("patched"), "dee", id="deprecated")
        await wait_status(handle, durable.Status.WAITING)
    deploy("deprecated")
    async with app.worker():
        await handle.signal("reply", "ok")
        assert await handle.result(timeout=10) == ["texted dee", "ok"]
    assert ran == ["sms dee"]
