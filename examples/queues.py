"""Queues: where runs wait, in what order workers take them, and how many at once.

Six monthly reports go to the queue ``reports`` (at most 2 run at once, across every
worker), one of them with a higher priority; eight welcome e-mails go to ``emails`` (at
most 5 start per second). A worker serves both queues. Runs the embedded store
(``$DURABLE_DSN``, else ``durable.db`` here) and finishes in about two seconds.

    python examples/queues.py
"""

from __future__ import annotations

import asyncio
import time

import durable

reports = durable.Queue("reports", concurrency=2)
emails = durable.Queue("emails", rate_limit=(5, 1.0))
app = durable.App(queues=[reports, emails])

started: list[str] = []
running = 0
peak = 0


@durable.activity
async def render(month: str) -> str:
    global running, peak
    started.append(month)
    running += 1
    peak = max(peak, running)
    await asyncio.sleep(0.2)
    running -= 1
    return f"report-{month}.pdf"


@durable.workflow(name="monthly-report", queue=reports)
async def monthly_report(ctx: durable.Context, month: str) -> str:
    return await render(month)


@durable.activity
async def send_welcome(address: str) -> float:
    return time.time()


@durable.workflow(name="welcome-email", queue=emails)
async def welcome(ctx: durable.Context, address: str) -> float:
    return await send_welcome(address)


async def main() -> None:
    async with app:
        months = ["2024-07", "2024-08", "2024-09", "2024-10", "2024-11", "2024-12"]
        handles = [
            await app.start(monthly_report, month, priority=10 if month == "2024-12" else 0)
            for month in months
        ]
        mails = [await app.start(welcome, f"user{n}@example.com") for n in range(8)]
        depths = await app.queues_depth()
        print(f"waiting before any worker: reports {depths['reports']}, emails {depths['emails']}")

        async with app.worker():  # serves "default", "reports" and "emails"
            files = [await handle.result(timeout=30) for handle in handles]
            sent = sorted([await handle.result(timeout=30) for handle in mails])

        print(f"reports rendered: {', '.join(files)}")
        print(f"  in the order they started: {', '.join(started)} (priority 10 first)")
        print(f"  at most {peak} at once (the queue's limit is 2)")
        offsets = ", ".join(f"{t - sent[0]:.2f}" for t in sent)
        print(f"e-mails sent at +s: {offsets} (at most 5 start in any second)")
        print(f"waiting now: {await app.queue_depth('reports')} reports")


if __name__ == "__main__":
    asyncio.run(main())
