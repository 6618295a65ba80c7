"""Retries, heartbeats and timeouts: a payment that fails twice, a long export that beats.

The payment's failed attempts are journaled with the time of the next one: kill the
process during a backoff and a restarted worker waits out the rest of it, then makes
attempt 3 (not a fresh attempt 1). The export calls ``durable.heartbeat()``; if it went
quiet for longer than its ``heartbeat_timeout`` the attempt would be abandoned and retried.
The whole run is bounded by the workflow's ``execution_timeout``.

    python examples/production/retries_and_timeouts.py
"""

from __future__ import annotations

import asyncio

import durable

app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db


class CardDeclined(durable.NonRetryableError):
    """A decline is final: retrying cannot change it."""


@durable.activity(retry=durable.RetryPolicy(max_attempts=5, initial_interval=0.2))
async def charge(order_id: str, amount_cents: int) -> str:
    info = durable.activity_info()
    print(f"  [charge] attempt {info.attempt} (key {info.idempotency_key})")
    if amount_cents > 100_000:
        raise CardDeclined(f"{order_id}: amount over the card limit")
    if info.attempt < 3:
        raise ConnectionError("payment gateway unreachable")
    return f"pay-{order_id}"


@durable.activity(heartbeat_timeout=1.0, timeout=30)
async def export_rows(rows: int) -> int:
    for _batch in range(0, rows, 100):
        await asyncio.sleep(0.05)  # real work here
        durable.heartbeat()  # raises durable.Cancelled if the run was cancelled
    print(f"  [export] {rows} rows")
    return rows


@durable.workflow(name="checkout", execution_timeout=60)
async def checkout(ctx: durable.Context, order_id: str, amount_cents: int) -> dict[str, object]:
    try:
        payment = await charge(order_id, amount_cents)
    except durable.ActivityError as exc:  # the last attempt's error, with the attempt count
        return {"order": order_id, "declined": exc.error_message, "attempts": exc.attempts}
    exported = await export_rows(500)
    return {"order": order_id, "payment": payment, "exported": exported}


async def main() -> None:
    async with app, app.worker():
        ok = await app.start(checkout, "o-1", 4_999, id="checkout-o-1")
        print("result:", await ok.result(timeout=60))
        retries = [e for e in await ok.history() if e.event == "retry"]
        for event in retries:
            print(f"  journal: attempt {event.payload['attempt']} due at {event.payload['at']:.2f}")
        declined = await app.start(checkout, "o-2", 250_000, id="checkout-o-2")
        print("result:", await declined.result(timeout=60))


if __name__ == "__main__":
    asyncio.run(main())
