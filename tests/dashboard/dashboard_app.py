"""The App a dashboard test server runs a worker for: the quickstart's order workflow, and
one whose activity fails until a file exists (so a test can fail a run, fix it, retry it)."""

from __future__ import annotations

from pathlib import Path

from quickstart import app, order_workflow

import durable


@durable.activity(retry=durable.RetryPolicy(max_attempts=1))
def needs_file(path: str) -> str:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing")
    return Path(path).read_text()


@durable.workflow(name="needs-file")
async def needs_file_workflow(ctx: durable.Context, path: str) -> str:
    return await ctx.run(needs_file, path)


__all__ = ["app", "needs_file_workflow", "order_workflow"]
