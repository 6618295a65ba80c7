"""Testing a workflow with durable.testing: a 30-day trial checked in milliseconds.

A subscription workflow sends a welcome mail, waits up to 30 days for the customer to
convert (a signal), then either charges the card (retried with hourly backoffs) or ends
the trial. The checks below run it in a ``TestEnv``, whose clock skips idle time, with
the mail and payment activities mocked; then record a run and check, with ``replay``,
that a refactored version still replays its history while a reordered one does not.

    python examples/testing_example.py

The same checks written as pytest tests look alike (docs/testing.md shows the fixture).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import durable
from durable.testing import History, TestEnv, replay

HOURLY = durable.RetryPolicy(
    max_attempts=5, initial_interval=timedelta(hours=1), max_interval=timedelta(hours=8)
)


@durable.activity(name="example.send-mail")
async def send_mail(to: str, template: str) -> None:
    raise RuntimeError("a real mail server; the tests mock it")


@durable.activity(name="example.charge", retry=HOURLY)
async def charge(customer: str, cents: int) -> str:
    raise RuntimeError("a real payment provider; the tests mock it")


@durable.workflow(name="example.trial")
async def trial(ctx: durable.Context, customer: str) -> str:
    await send_mail(customer, "welcome")
    try:
        plan = await ctx.wait_signal("convert", timeout=timedelta(days=30))
    except durable.WaitTimeout:
        await send_mail(customer, "trial-ended")
        return "expired"
    receipt = await charge(customer, plan["cents"])
    return f"subscribed ({receipt})"


async def check_the_trial_expires() -> None:
    async with TestEnv() as env:
        mails = env.mock_activity(send_mail, None)
        started, wall = env.now(), time.perf_counter()
        assert await env.run(trial, "ann") == "expired"
        took = time.perf_counter() - wall
        assert env.now() - started >= timedelta(days=30)
        assert [args for args, _ in mails.calls] == [("ann", "welcome"), ("ann", "trial-ended")]
        print(f"30-day trial expired: {env.now() - started} of virtual time in {took:.3f} s")


async def check_a_conversion_is_charged_after_retries() -> None:
    async with TestEnv() as env:
        env.mock_activity(send_mail, None)
        tries = 0

        def flaky_provider(customer: str, cents: int) -> str:
            nonlocal tries
            tries += 1
            if tries < 3:
                raise ConnectionError("provider down")
            return f"ch-{customer}-{cents}"

        env.mock_activity(charge, flaky_provider)
        handle = await env.start(trial, "bob")
        await env.sleep(timedelta(days=12))  # the customer converts on day 12
        before = env.now()
        await env.signal(handle, "convert", {"cents": 900})
        assert await handle.result() == "subscribed (ch-bob-900)"
        assert tries == 3 and env.now() - before >= timedelta(hours=3)  # 1 h + 2 h backoff
        print(f"converted on day 12, charged on attempt {tries} after {env.now() - before}")


async def refactored(ctx: durable.Context, customer: str) -> str:
    """The same durable calls in the same order: replays fine."""
    await send_mail(customer, "welcome")
    try:
        plan = await ctx.wait_signal("convert", timeout=timedelta(days=30))
    except durable.WaitTimeout:
        await send_mail(customer, "trial-ended")
        return "expired (trial over)"
    return f"subscribed ({await charge(customer, plan['cents'])})"


async def reordered(ctx: durable.Context, customer: str) -> str:
    """Waits for the conversion before the welcome mail: a different journal."""
    try:
        await ctx.wait_signal("convert", timeout=timedelta(days=30))
    except durable.WaitTimeout:
        return "expired"
    await send_mail(customer, "welcome")
    return "subscribed"


async def check_replay_of_a_recorded_run() -> None:
    async with TestEnv() as env:
        env.mock_activity(send_mail, None)
        await env.run(trial, "cy", id="trial-cy")
        history = await History.fetch(env.app, "trial-cy")  # what `durable runs export` saves
    result = replay(durable.Workflow(refactored, "example.trial", None), history)
    print(f"refactored code replays run {result.run_id} ({result.records} records)")
    try:
        replay(durable.Workflow(reordered, "example.trial", None), history)
    except durable.NonDeterminismError as exc:
        print(f"reordered code is refused at sequence number {exc.seq}: {exc.recorded} vs "
              f"{exc.requested}")  # fmt: skip
    else:
        raise AssertionError("the reordered code should not replay")


async def main() -> None:
    await check_the_trial_expires()
    await check_a_conversion_is_charged_after_retries()
    await check_replay_of_a_recorded_run()


if __name__ == "__main__":
    asyncio.run(main())
