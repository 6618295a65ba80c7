"""Pause, fix, resume: a run that pauses itself when a payment keeps failing, a fix, and
a resume that finishes it; then a run paused by hand, and a fork of a finished run.

The payment activity's retry policy says ``on_exhausted="pause"``: when its attempts run
out, the run is PAUSED with the error as its reason instead of failing. Nothing before
the payment runs again on resume. Runs on the embedded store (``$DURABLE_DSN``, else
``durable.db`` here) in about two seconds.

    python examples/pause_fix_resume.py
"""

from __future__ import annotations

import asyncio
import uuid

import durable

app = durable.App()
gateway = {"up": False}  # stands for the card gateway's configuration; "fixed" below


@durable.activity
async def reserve(order: str) -> str:
    print(f"  reserved stock for {order}")
    return f"R-{order}"


@durable.activity(
    retry=durable.RetryPolicy(max_attempts=3, initial_interval=0.05, on_exhausted="pause")
)
async def charge(order: str) -> str:
    if not gateway["up"]:
        raise ConnectionError("card gateway: 503 Service Unavailable")
    print(f"  charged {order}")
    return f"P-{order}"


@durable.activity
async def ship(order: str) -> str:
    print(f"  shipped {order}")
    return f"S-{order}"


@durable.workflow(name="checkout")
async def checkout(ctx: durable.Context, order: str) -> list[str]:
    return [await reserve(order), await charge(order), await ship(order)]


async def wait_for(handle: durable.Handle[list[str]], status: durable.Status) -> None:
    while (await handle.describe()).status is not status:  # noqa: ASYNC110 - a status poll
        await asyncio.sleep(0.02)


async def main() -> None:
    order = uuid.uuid4().hex[:6]
    async with app, app.worker():
        print("1. the gateway is down: the run pauses instead of failing")
        run = await app.start(checkout, order, id=f"checkout-{order}")
        await wait_for(run, durable.Status.PAUSED)
        print(f"   paused: {(await run.describe()).paused_reason}")

        print("2. the gateway is fixed; resume charges again (with 3 fresh attempts)")
        gateway["up"] = True
        await run.resume()
        print(f"   result: {await run.result(timeout=30)}")

        print("3. a run paused by hand waits for its resume")
        other = await app.start(checkout, f"{order}-b", id=f"checkout-{order}-b")
        await other.pause("checking stock levels")
        await asyncio.sleep(0.3)
        print(f"   {(await other.describe()).status}: nothing ran while paused")
        await other.resume()
        print(f"   result: {await other.result(timeout=30)}")

        print("4. a fork re-runs the shipping step only, for another order id")
        history = await run.history()
        at = next(e.seq for e in history if e.name == "ship")
        fork = await run.fork(at, args=[f"{order}-c"])
        print(f"   fork {fork.run_id}: {await fork.result(timeout=30)}")
        print(f"   forked from {(await fork.describe()).forked_from}")


if __name__ == "__main__":
    asyncio.run(main())
