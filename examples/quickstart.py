"""Quickstart: an order workflow on the embedded store.

Three activities, a durable sleep and a signal. Every step is journaled to
``durable.db`` (SQLite) in the working directory: kill the process at any point and run
``durable worker quickstart:app`` (from this folder) to finish the run from where it stopped.

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from pydantic import BaseModel

import durable

app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db


class Order(BaseModel):
    order_id: str
    sku: str
    quantity: int
    amount_cents: int


@durable.activity
async def reserve_stock(order: Order) -> str:
    print(f"  [activity] reserving {order.quantity} x {order.sku}")
    return f"rsv-{order.order_id}"


@durable.activity(retry=durable.RetryPolicy(max_attempts=5, initial_interval=0.2))
def charge_card(order_id: str, amount_cents: int) -> str:
    key = durable.activity_info().idempotency_key  # stable across retries and crashes
    print(f"  [activity] charging {amount_cents / 100:.2f} for {order_id} (key {key})")
    return f"pay-{order_id}"


@durable.activity
async def ship(order_id: str, approved_by: str) -> str:
    print(f"  [activity] shipping {order_id}, approved by {approved_by}")
    return f"trk-{order_id}"


@durable.workflow(name="order")
async def order_workflow(ctx: durable.Context, order: Order) -> dict[str, str]:
    reservation = await reserve_stock(order)
    payment = await ctx.run(charge_card, order.order_id, order.amount_cents)
    await ctx.sleep(timedelta(seconds=3))  # durable: survives restarts, costs no memory
    approval = await ctx.wait_signal("approve", timeout=timedelta(hours=48))
    tracking = await ship(order.order_id, approval["by"])
    return {"reservation": reservation, "payment": payment, "tracking": tracking}


async def main() -> None:
    order = Order(order_id=f"o-{int(time.time())}", sku="sku-1", quantity=2, amount_cents=4999)
    async with app, app.worker():
        handle = await app.start(order_workflow, order, id=f"order-{order.order_id}")
        print(f"started run {handle.run_id}")
        await handle.signal("approve", {"by": "ann"})  # buffered until the workflow waits
        print("sent the approval signal; the workflow sleeps 3 s durably first")
        result = await handle.result(timeout=60)
        print(f"result: {result}")
        for event in await handle.history():
            print(f"  journal #{event.position}: {event.event:6} {event.kind:8} {event.name}")


if __name__ == "__main__":
    asyncio.run(main())
