"""Children and events: a batch workflow fans out one child run per file and reports progress.

Each child is a run of its own (any worker may execute it) linked to its parent; a failed
child raises ``durable.WorkflowFailed`` in the parent. The parent publishes its progress
with ``ctx.set_event``; the client reads it with ``Handle.get_event`` while the run goes on.

    python examples/production/children_and_events.py
"""

from __future__ import annotations

import asyncio

import durable

app = durable.App()


@durable.activity
async def convert(name: str) -> int:
    await asyncio.sleep(0.05)
    if name.endswith(".bad"):
        raise ValueError(f"{name} is not an image")
    return len(name) * 1024


@durable.workflow(name="convert-file")
async def convert_file(ctx: durable.Context, name: str) -> int:
    return await convert(name)


@durable.workflow(name="convert-batch")
async def convert_batch(ctx: durable.Context, names: list[str]) -> dict[str, object]:
    children = [ctx.start_child(convert_file, name) for name in names]
    converted, failed = 0, []
    for done, (name, child) in enumerate(zip(names, children, strict=True), start=1):
        try:
            converted += await child
        except durable.WorkflowFailed as exc:
            failed.append(f"{name}: {exc.error_message}")
        ctx.set_event("progress", {"done": done, "of": len(names)})
    await ctx.wait_signal("publish")  # hold until a person says so
    return {"bytes": converted, "failed": failed}


async def main() -> None:
    async with app, app.worker():
        names = ["a.png", "b.png", "c.bad", "d.png"]
        handle = await app.start(convert_batch, names, id="batch-1")
        while (progress := await handle.get_event("progress", timeout=10)) != {"done": 4, "of": 4}:
            print("progress:", progress)
            await asyncio.sleep(0.05)
        print("progress:", progress)
        description = await handle.describe()
        print("children:", ", ".join(description.children))
        await handle.signal("publish")
        print("result:", await handle.result(timeout=30))


if __name__ == "__main__":
    asyncio.run(main())
