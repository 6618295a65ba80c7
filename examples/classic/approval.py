"""Multi-step approval with escalation, code-first.

A purchase request needs the approval of several people, one after the other. Each is
asked in turn and has a deadline (1 s here, a day or two in real life); when one does not
answer in time, the request is escalated to that person's manager, who gets a deadline
of their own. A rejection at any step ends the request; so does silence from a manager.

Each approver answers with a signal named after them (``decision:ann``), so a late
answer from someone whose step was escalated is never taken for their manager's. The
workflow publishes whom it is waiting for with ``ctx.set_event``, which the people-facing
side (here a small simulation; in real life a web page that calls ``handle.signal``, or
``durable signal RUN decision:ann '{"approved": true}'``) reads with ``get_event``.

- ``PR-1``: ann approves; bob is away, so his manager dora approves instead; carol approves.
- ``PR-2``: ann rejects.

The JSON flow version is ``approval_flow.json`` (run by ``approval_flow.py``). Runs on
the embedded store in a few seconds:

    python examples/classic/approval.py
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

import durable

app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db

ANSWER_WITHIN = timedelta(seconds=1)  # a business day in production


class Request(BaseModel):
    request_id: str
    amount: int
    approvers: list[str]
    managers: dict[str, str]
    """Who a step escalates to when the approver does not answer in time."""


@durable.activity(name="notify-approver")
async def notify_approver(person: str, request_id: str, note: str) -> None:
    print(f"  [notify] {person}: please decide on {request_id}{note}")


async def ask(ctx: durable.Context, person: str, request: Request, note: str = "") -> Any:
    """Ask ``person`` and wait for their decision; None if they do not answer in time."""
    await notify_approver(person, request.request_id, note)
    ctx.set_event("waiting-for", person)
    try:
        return await ctx.wait_signal(f"decision:{person}", timeout=ANSWER_WITHIN)
    except durable.WaitTimeout:
        return None


@durable.workflow(name="purchase-approval")
async def purchase_approval(ctx: durable.Context, request: Request) -> dict[str, Any]:
    trail: list[str] = []
    for approver in request.approvers:
        person = approver
        decision = await ask(ctx, person, request)
        if decision is None:
            person = request.managers[approver]
            trail.append(f"{approver} did not answer: escalated to {person}")
            decision = await ask(ctx, person, request, f" ({approver} did not answer)")
        if decision is None:
            trail.append(f"{person} did not answer either")
            return {"outcome": "REJECTED", "trail": trail}
        trail.append(f"{person} {'approved' if decision['approved'] else 'rejected'}")
        if not decision["approved"]:
            return {"outcome": "REJECTED", "trail": trail}
    ctx.set_event("waiting-for", None)
    return {"outcome": "APPROVED", "trail": trail}


async def people(handle: durable.Handle[Any], answers: dict[str, bool]) -> None:
    """Each person in ``answers`` answers once asked; anyone else stays silent."""
    answered: set[str] = set()
    while not (await handle.describe()).status.is_terminal:
        person = await handle.get_event("waiting-for")
        if person in answers and person not in answered:
            answered.add(person)
            print(f"  [{person}] {'approves' if answers[person] else 'rejects'}")
            await handle.signal(f"decision:{person}", {"approved": answers[person]})
        await asyncio.sleep(0.05)


async def main() -> None:
    managers = {"ann": "dora", "bob": "dora", "carol": "erik"}
    cases = [
        (Request(request_id="PR-1", amount=12_000, approvers=["ann", "bob", "carol"],
                 managers=managers), {"ann": True, "dora": True, "carol": True}),
        (Request(request_id="PR-2", amount=90_000, approvers=["ann", "bob", "carol"],
                 managers=managers), {"ann": False}),
    ]  # fmt: skip
    batch = uuid.uuid4().hex[:6]  # fresh runs each time the script runs
    async with app, app.worker():
        for request, answers in cases:
            print(f"{request.request_id} ({request.amount:,}): {' -> '.join(request.approvers)}")
            run_id = f"approval-{request.request_id}-{batch}"
            handle = await app.start(purchase_approval, request, id=run_id)
            simulation = asyncio.create_task(people(handle, answers))
            result = await handle.result(timeout=60)
            await simulation
            print(f"=> {request.request_id}: {result['outcome']}")
            for line in result["trail"]:
                print(f"   - {line}")
            print()


if __name__ == "__main__":
    asyncio.run(main())
