"""Operating runs: tag them, find them by filter a page at a time, cancel a batch at once.

Ten imports are started, each tagged with its tenant; each waits for a go-ahead signal
and tags itself with its stage. Then the runs of one tenant are listed by tag, two at a
time, and cancelled with one bulk call; a run of the other tenant says what it waits
for (``blocked_on``), and they complete. Runs the
embedded store (``$DURABLE_DSN``, else ``durable.db`` here) in about a second.

    python examples/operating.py
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import durable

app = durable.App()


@durable.workflow(name="import-file")
async def import_file(ctx: durable.Context, path: str) -> str:
    ctx.set_tags({"stage": "waiting"})
    await ctx.wait_signal("go")
    ctx.set_tags({"stage": "imported"})
    return path


async def main() -> None:
    batch = uuid.uuid4().hex[:6]  # a fresh tag, so that a re-run sees only its own runs
    async with app, app.worker():
        handles = [
            await app.start(
                import_file, f"file-{n}.csv", tags={"tenant": "acme" if n % 2 else "zeta",
                                                    "batch": batch})
            for n in range(10)
        ]  # fmt: skip

        acme = durable.RunFilter(tags={"tenant": "acme", "batch": batch})
        page = await app.list_runs(acme, limit=2)
        pages = [page]
        while page.next_cursor is not None:
            page = await app.list_runs(acme, limit=2, cursor=page.next_cursor)
            pages.append(page)
        print(f"acme runs, {len(pages)} pages: {[[r.run_id[:6] for r in p.runs] for p in pages]}")

        print(f"would cancel: {await app.bulk('cancel', acme, dry_run=True)}")
        print(f"cancelled: {await app.bulk('cancel', acme)}")

        zeta = durable.RunFilter(tags={"tenant": "zeta", "batch": batch})
        first = app.handle((await app.list_runs(zeta, limit=1)).runs[0].run_id)
        # Poll until it waits for its signal (a status poll, hence the noqa).
        while (blocked := (await first.describe()).blocked_on) is None or blocked.kind != "signal":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        print(f"why is {first.run_id[:6]} not done? {blocked.kind}: {blocked.message}")
        for run in (await app.list_runs(zeta)).runs:
            await app.handle(run.run_id).signal("go")
        for handle in handles:
            with contextlib.suppress(durable.WorkflowFailed):  # the cancelled ones
                await handle.result(timeout=30)
        for handle in handles:
            desc = await handle.describe()
            print(
                f"{desc.run_id[:6]} {desc.tags['tenant']} {desc.status} stage={desc.tags['stage']}"
            )


if __name__ == "__main__":
    asyncio.run(main())
