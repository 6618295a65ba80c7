"""Versioning code under runs in flight with ``ctx.patched``.

Version 1 of a welcome workflow sends an email and waits for the user to confirm.
Version 2 sends an SMS instead. Runs that sent their email under version 1 replay the
email path; runs started under version 2 take the SMS path. Both versions are deployed
here in one process, one after the other, each with a fresh worker.

    python examples/production/versioning.py
"""

from __future__ import annotations

import asyncio

import durable

app = durable.App()


@durable.activity
async def send_email(user: str) -> str:
    print(f"  [email] welcome, {user}")
    return "email"


@durable.activity
async def send_sms(user: str) -> str:
    print(f"  [sms] welcome, {user}")
    return "sms"


def deploy(version: int) -> durable.Workflow[..., str]:
    @durable.workflow(name="welcome")
    async def welcome(ctx: durable.Context, user: str) -> str:
        if version >= 2 and ctx.patched("welcome-sms"):
            channel = await send_sms(user)
        else:
            channel = await send_email(user)
        await ctx.wait_signal("confirmed")
        return f"{user} welcomed by {channel}"

    return welcome


async def wait_until_waiting(handle: durable.Handle[str]) -> None:
    for _ in range(500):  # up to 10 s
        if (await handle.describe()).status is durable.Status.WAITING:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"run {handle.run_id} did not reach its signal wait")


async def main() -> None:
    async with app:
        version_1 = deploy(1)
        async with app.worker():
            old = await app.start(version_1, "ann", id="welcome-ann")
            await wait_until_waiting(old)
        version_2 = deploy(2)  # the deploy: a new worker runs the new code
        async with app.worker():
            new = await app.start(version_2, "bob", id="welcome-bob")
            await wait_until_waiting(new)
            for handle in (old, new):
                await handle.signal("confirmed")
                print("result:", await handle.result(timeout=30))


if __name__ == "__main__":
    asyncio.run(main())
