"""Cron schedules: a run every two seconds, a back-fill of missed days, pause and delete.

Runs on the embedded store (``durable.db`` here, or ``$DURABLE_DSN``) in a few seconds:

    python examples/schedules.py

With several workers (``durable worker schedules:app`` in other terminals) every tick
still starts exactly one run.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import durable

app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db


@durable.activity
async def send_heartbeat(service: str) -> str:
    return f"{service} is alive"


@durable.workflow(name="heartbeat")
async def heartbeat(ctx: durable.Context, service: str) -> str:
    return await send_heartbeat(service)


@durable.workflow(name="settle-day")
async def settle_day(ctx: durable.Context, ledger: str) -> str:
    # The run id names the tick (settle@2024-05-06T00:00:00Z): the day to settle.
    day = ctx.info.run_id.split("@", 1)[1][:10]
    return f"{ledger}: settled {day}"


async def main() -> None:
    async with app, app.worker():
        # Every two seconds (the sixth cron field is seconds, placed last).
        beat = await app.schedule(
            heartbeat, cron="* * * * * */2", id="heartbeat", args=("billing",)
        )
        print(f"schedule {beat.id!r} ({beat.cron}), next tick {beat.next_fire_at:%H:%M:%S}")

        # Daily at midnight, counted from three days ago: catch_up starts each missed day.
        await app.schedule(
            settle_day,
            cron="0 0 * * *",
            id="settle",
            args=("main-ledger",),
            missed="catch_up",
            start_at=datetime.now(UTC) - timedelta(days=3),
        )

        await asyncio.sleep(4.5)
        await app.schedules.pause("heartbeat")
        for info in await app.schedules.list():
            state = "paused" if info.paused else f"next {info.next_fire_at:%Y-%m-%d %H:%M:%S}"
            print(f"  {info.id:10} {info.cron:16} {info.timezone:4} {state}")

        for workflow in ("heartbeat", "settle-day"):
            runs = await app.list_runs(workflow=workflow)
            for run in sorted(runs, key=lambda r: r.run_id):
                result = await app.handle(run.run_id).result(timeout=10)
                print(f"  {run.run_id:32} -> {result}")

        await app.schedules.delete("heartbeat")
        await app.schedules.delete("settle")


if __name__ == "__main__":
    asyncio.run(main())
