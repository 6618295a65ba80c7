"""Customer onboarding, code-first: a KYC check that waits for an answer, with a deadline.

The workflow opens an account and asks a KYC provider to check the customer. The answer
comes back later as a signal (the provider's webhook calls ``handle.signal``; a person
could send it with ``durable signal RUN kyc-result '{"status": "VERIFIED"}'``). The wait
is ``ctx.wait_signal("kyc-result", timeout=...)``: durable, so the run costs no memory
while it waits and survives restarts. When the deadline passes the customer gets a
reminder and a second deadline; after that the account is closed.

- ``ann``: the provider answers at once (even before the workflow waits: signals are
  buffered, never lost). Her account is activated.
- ``bob``: answers only after the reminder. Activated.
- ``cem``: never answers; after two deadlines (1 s each here, days in real life) the
  account is closed. A late duplicate webhook then gets ``RunClosedError``.

The JSON flow version is ``onboarding_flow.json`` (run by ``onboarding_flow.py``).
Runs on the embedded store in a few seconds:

    python examples/classic/onboarding.py
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import durable

app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db

KYC_TIMEOUT = timedelta(seconds=1)  # three days in production


@durable.activity(name="open-account")
async def open_account(customer: str) -> str:
    print(f"  [open-account] {customer}")
    return f"acct-{customer}"


@durable.activity(name="request-kyc")
async def request_kyc(customer: str) -> None:
    key = durable.activity_info().idempotency_key  # the provider dedupes on it
    print(f"  [request-kyc] {customer} (request {key})")


@durable.activity(name="send-reminder")
async def send_reminder(customer: str) -> None:
    print(f"  [send-reminder] {customer}: please finish your identity check")


@durable.activity(name="activate-account")
async def activate_account(account: str) -> None:
    print(f"  [activate-account] {account}")


@durable.activity(name="close-account")
async def close_account(account: str, reason: str) -> None:
    print(f"  [close-account] {account}: {reason}")


@durable.workflow(name="onboarding")
async def onboarding(ctx: durable.Context, customer: str) -> dict[str, Any]:
    account = await open_account(customer)
    await request_kyc(customer)
    ctx.set_event("stage", "waiting for KYC")
    kyc: dict[str, Any] | None = None
    for attempt in (1, 2):
        try:
            kyc = await ctx.wait_signal("kyc-result", timeout=KYC_TIMEOUT)
            break
        except durable.WaitTimeout:
            if attempt == 1:
                await send_reminder(customer)
                ctx.set_event("stage", "reminded")
    if kyc is None:
        await close_account(account, "identity check not completed in time")
        return {"customer": customer, "status": "CLOSED", "reason": "KYC expired"}
    if kyc["status"] != "VERIFIED":
        await close_account(account, f"identity check {kyc['status']}")
        return {"customer": customer, "status": "CLOSED", "reason": f"KYC {kyc['status']}"}
    await activate_account(account)
    return {"customer": customer, "status": "ACTIVE"}


async def kyc_provider(handle: durable.Handle[Any], answer_when: str | None) -> None:
    """The provider's webhook: answers when the run reaches the stage ``answer_when``."""
    if answer_when is None:
        return
    while True:  # the workflow publishes its stage with ctx.set_event
        if await handle.get_event("stage", timeout=5) == answer_when:
            break
        await asyncio.sleep(0.05)
    print(f"  [kyc-provider] {handle.run_id}: VERIFIED")
    await handle.signal("kyc-result", {"status": "VERIFIED"})


async def main() -> None:
    async with app, app.worker():
        batch = uuid.uuid4().hex[:6]  # fresh runs each time the script runs
        handles = {}
        for customer in ("ann", "bob", "cem"):
            run_id = f"onboard-{customer}-{batch}"
            handles[customer] = await app.start(onboarding, customer, id=run_id)
        # ann's provider answers before the workflow even waits: the signal is buffered.
        await handles["ann"].signal("kyc-result", {"status": "VERIFIED"})
        providers = [
            asyncio.create_task(kyc_provider(handles["bob"], answer_when="reminded")),
            asyncio.create_task(kyc_provider(handles["cem"], answer_when=None)),
        ]
        for customer, handle in handles.items():
            result = await handle.result(timeout=60)
            reason = f" ({result['reason']})" if "reason" in result else ""
            print(f"=> {customer}: {result['status']}{reason}")
        await asyncio.gather(*providers)
        try:  # a duplicate webhook after the run ended
            await handles["cem"].signal("kyc-result", {"status": "VERIFIED"})
        except durable.RunClosedError as exc:
            print(f"late webhook refused: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
