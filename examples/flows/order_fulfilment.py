"""Order fulfilment as a JSON flow, with its SERVICE_TASK handlers written in Python.

The payment gateway fails on the first call of each order (a flaky network): the step's
``retryCount`` retries it. An order whose card is declined takes the compensation path
and releases its stock. Runs on the embedded store:

    python examples/flows/order_fulfilment.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import durable

HERE = Path(__file__).parent
app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db

_failed_once: set[str] = set()


@durable.activity(name="reserve-stock")
async def reserve_stock(task: dict[str, Any]) -> dict[str, Any]:
    order = task["variables"]
    print(f"  [reserve-stock] {len(order['items'])} items for {order['orderId']}")
    return {"reservation": f"rsv-{order['orderId']}"}


@durable.activity(name="charge-payment", retry=durable.RetryPolicy(initial_interval=0.2))
def charge_payment(task: dict[str, Any]) -> dict[str, Any]:
    order = task["variables"]
    if order["orderId"] not in _failed_once:
        _failed_once.add(order["orderId"])
        print(f"  [charge-payment] attempt {task['attempt']}: gateway timeout")
        raise ConnectionError("payment gateway timed out")
    status = "DECLINED" if order["card"] == "4000-0000-0000-0002" else "APPROVED"
    print(f"  [charge-payment] attempt {task['attempt']}: {status}")
    return {"paymentStatus": status}


@durable.activity(name="ship-order")
async def ship_order(task: dict[str, Any]) -> dict[str, Any]:
    return {"tracking": f"trk-{task['variables']['orderId']}"}


@durable.activity(name="release-stock")
async def release_stock(task: dict[str, Any]) -> dict[str, Any]:
    print(f"  [release-stock] {task['variables']['reservation']}")
    return {"outcome": "CANCELLED", "reservation": None}


async def main() -> None:
    definition = json.loads((HERE / "order_fulfilment.json").read_text())
    async with app, app.worker():
        ref = await app.definitions.upload(definition)
        print(f"uploaded {ref.id} version {ref.version}")
        for order_id, card in (("o-100", "4242-4242-4242-4242"), ("o-101", "4000-0000-0000-0002")):
            variables = {"orderId": order_id, "card": card, "items": ["book", "pen"]}
            handle = await app.start_flow(ref.id, variables=variables, business_key=order_id)
            result = await handle.result(timeout=60)
            print(f"{order_id}: {result['outcome']} {result.get('tracking', '')}".rstrip())
            for step in await handle.steps():
                print(f"    {step.step_id:10} {step.status:9} attempt {step.attempt}")


if __name__ == "__main__":
    asyncio.run(main())
