"""A long-lived run: an account ledger that folds deposits forever, in bounded journals.

Each deposit is a signal. After every 50 deposits the workflow continues as new with its
balance: the same run id, a fresh journal, and the deposits not yet consumed carry over.

    python examples/production/continue_as_new.py
"""

from __future__ import annotations

import asyncio

import durable

app = durable.App()


@durable.workflow(name="ledger")
async def ledger(ctx: durable.Context, balance: int, generation: int) -> dict[str, int]:
    for _ in range(50):
        deposit = await ctx.wait_signal("deposit")
        if deposit is None:  # the closing signal
            return {"balance": balance, "generation": generation}
        balance += deposit
    ctx.continue_as_new(balance, generation + 1)


async def main() -> None:
    async with app, app.worker():
        handle = await app.start(ledger, 0, 0, id="ledger-acct-1")
        for amount in range(1, 201):
            await handle.signal("deposit", amount)
        await handle.signal("deposit", None)
        result = await handle.result(timeout=60)
        print("result:", result)
        print("journal length now:", len(await handle.history()))
        assert result == {"balance": sum(range(1, 201)), "generation": 4}


if __name__ == "__main__":
    asyncio.run(main())
