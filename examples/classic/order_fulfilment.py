"""Order fulfilment, code-first: payment retries and saga-style compensation.

The same process as the JSON flow ``examples/flows/order_fulfilment.json``, written as a
Python workflow, with a saga: every step that succeeds registers the activity that undoes
it, and when a later step fails for good the workflow runs those compensations in reverse
order. Compensations are activities too: journaled, retried, and resumed after a crash
from the first one not yet done.

- ``o-100`` ships. The payment gateway times out on the first attempt of every charge;
  the ``RetryPolicy`` retries it after a durable backoff.
- ``o-101``: the card is declined. ``CardDeclined`` is a ``NonRetryableError``, so the
  charge fails at once, and the stock reservation is released.
- ``o-102``: the carrier refuses the address twice (all the attempts its policy allows):
  the payment is refunded and the stock released, in that order.

Runs on the embedded store in a few seconds:

    python examples/classic/order_fulfilment.py
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pydantic import BaseModel

import durable

app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db

DECLINED_CARD = "4000-0000-0000-0002"


class Order(BaseModel):
    order_id: str
    items: list[str]
    amount_cents: int
    card: str
    address: str


class CardDeclined(durable.NonRetryableError):
    """A decline is final: retrying cannot change it."""


@durable.activity(name="reserve-stock")
async def reserve_stock(order_id: str, items: list[str]) -> str:
    print(f"  [reserve-stock] {', '.join(items)} for {order_id}")
    return f"rsv-{order_id}"


@durable.activity(
    name="charge-payment",
    retry=durable.RetryPolicy(max_attempts=4, initial_interval=0.2, backoff_coefficient=2),
)
async def charge_payment(order_id: str, card: str, amount_cents: int) -> str:
    info = durable.activity_info()  # the attempt count survives crashes
    if info.attempt == 1:
        print(f"  [charge-payment] attempt 1: gateway timeout (key {info.idempotency_key})")
        raise ConnectionError("payment gateway timed out")
    if card == DECLINED_CARD:
        print(f"  [charge-payment] attempt {info.attempt}: declined")
        raise CardDeclined(f"card {card} declined for {order_id}")
    print(f"  [charge-payment] attempt {info.attempt}: {amount_cents / 100:.2f} charged")
    return f"pay-{order_id}"


@durable.activity(
    name="ship-order", retry=durable.RetryPolicy(max_attempts=2, initial_interval=0.1)
)
async def ship_order(order_id: str, address: str) -> str:
    if address == "nowhere":
        print(f"  [ship-order] attempt {durable.activity_info().attempt}: address refused")
        raise ValueError(f"no carrier delivers to {address!r}")
    print(f"  [ship-order] {order_id} to {address}")
    return f"trk-{order_id}"


@durable.activity(name="release-stock")
async def release_stock(reservation: str) -> None:
    print(f"  [release-stock] {reservation} (compensation)")


@durable.activity(name="refund-payment")
async def refund_payment(payment: str) -> None:
    print(f"  [refund-payment] {payment} (compensation)")


@durable.workflow(name="order-fulfilment")
async def order_fulfilment(ctx: durable.Context, order: Order) -> dict[str, Any]:
    compensations: list[tuple[durable.Activity[..., None], str]] = []
    try:
        reservation = await reserve_stock(order.order_id, order.items)
        compensations.append((release_stock, reservation))
        payment = await charge_payment(order.order_id, order.card, order.amount_cents)
        compensations.append((refund_payment, payment))
        tracking = await ship_order(order.order_id, order.address)
    except durable.ActivityError as exc:  # a step failed for good: undo what was done
        for undo, ref in reversed(compensations):
            await undo(ref)
        return {
            "outcome": "CANCELLED",
            "failed": f"{exc.activity} after {exc.attempts} attempt(s): {exc.error_message}",
            "compensated": [undo.name for undo, _ in reversed(compensations)],
        }
    return {"outcome": "SHIPPED", "tracking": tracking}


async def main() -> None:
    orders = [
        Order(order_id="o-100", items=["book", "pen"], amount_cents=2_450,
              card="4242-4242-4242-4242", address="1 Main St"),
        Order(order_id="o-101", items=["lamp"], amount_cents=8_900,
              card=DECLINED_CARD, address="2 Side St"),
        Order(order_id="o-102", items=["chair"], amount_cents=12_000,
              card="4242-4242-4242-4242", address="nowhere"),
    ]  # fmt: skip
    batch = uuid.uuid4().hex[:6]  # fresh runs each time the script runs
    async with app, app.worker():
        for order in orders:
            print(f"order {order.order_id}")
            run_id = f"order-{order.order_id}-{batch}"
            handle = await app.start(order_fulfilment, order, id=run_id)
            result = await handle.result(timeout=60)
            print(f"=> {order.order_id}: {result['outcome']}", end="")
            if result["outcome"] == "SHIPPED":
                print(f", tracking {result['tracking']}")
            else:
                print(f"; {result['failed']}; undone: {', '.join(result['compensated'])}")
            retries = [e for e in await handle.history() if e.event == "retry"]
            for event in retries:
                attempt = event.payload["attempt"]
                print(f"   journal: {event.name} failed, attempt {attempt} scheduled")
            print()


if __name__ == "__main__":
    asyncio.run(main())
