"""Customer onboarding as a JSON flow: a WAIT step with a deadline, and a USER_TASK.

``onboarding_flow.json`` opens an account, asks a KYC provider to check the customer and
parks at the WAIT step ``kyc-result`` until the provider's answer arrives as a signal
named after the step (``handle.signal("kyc-result", {...})``; over REST ``POST
/v1/instances/{id}/signals/kyc-result``; from a terminal ``durable signal RUN kyc-result
'{"kycStatus": "VERIFIED"}'``). An interrupting boundary timer (``PT2S`` here, ``P3D``
in real life) withdraws the wait and closes the account when no answer comes. A doubtful
result (``REFER``) goes to a compliance officer: a USER_TASK, completed with
``handle.complete_user_task`` (or ``durable user-tasks complete``), with its own deadline.

- ``ann``: VERIFIED, activated.
- ``dan``: REFER; the compliance officer approves; activated.
- ``cem``: no answer; the timer fires and the account is closed.

The code-first version is ``onboarding.py``. Runs on the embedded store in a few seconds:

    python examples/classic/onboarding_flow.py
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import durable

HERE = Path(__file__).parent
app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db


@durable.activity(name="open-account")
async def open_account(task: dict[str, Any]) -> dict[str, Any]:
    customer = task["variables"]["customer"]
    print(f"  [open-account] {customer}")
    return {"account": f"acct-{customer}"}


@durable.activity(name="request-kyc")
async def request_kyc(task: dict[str, Any]) -> dict[str, Any]:
    print(f"  [request-kyc] {task['variables']['customer']}")
    return {}


@durable.activity(name="activate-account")
async def activate_account(task: dict[str, Any]) -> dict[str, Any]:
    print(f"  [activate-account] {task['variables']['account']}")
    return {"status": "ACTIVE"}


@durable.activity(name="close-account")
async def close_account(task: dict[str, Any]) -> dict[str, Any]:
    variables = task["variables"]
    print(f"  [close-account] {variables['account']}: {variables['closeReason']}")
    return {"status": "CLOSED"}


async def kyc_provider(handle: durable.Handle[Any], answer: str | None) -> None:
    """The provider's webhook: signals the WAIT step (buffered if the run is not there yet)."""
    if answer is not None:
        print(f"  [kyc-provider] {handle.run_id}: {answer}")
        await handle.signal("kyc-result", {"kycStatus": answer})


async def compliance_officer(handle: durable.Handle[Any]) -> None:
    """Completes the review once the run has reached it (a user task must be waiting)."""
    while not (desc := await handle.describe()).status.is_terminal:
        if "compliance-review" in desc.current_steps:
            print(f"  [compliance] {handle.run_id}: approved")
            await handle.complete_user_task(
                "compliance-review", {"reviewDecision": "APPROVED", "reviewedBy": "zoe"}
            )
            return
        await asyncio.sleep(0.05)


async def main() -> None:
    definition = json.loads((HERE / "onboarding_flow.json").read_text())
    async with app, app.worker():
        ref = await app.definitions.upload(definition)
        print(f"uploaded {ref.id} version {ref.version}")
        answers = {"ann": "VERIFIED", "dan": "REFER", "cem": None}
        batch = uuid.uuid4().hex[:6]  # fresh runs each time the script runs
        handles = {}
        for customer, answer in answers.items():
            handles[customer] = handle = await app.start_flow(
                ref.id, variables={"customer": customer}, business_key=customer,
                id=f"onboard-{customer}-{batch}",
            )  # fmt: skip
            await kyc_provider(handle, answer)
        officer = asyncio.create_task(compliance_officer(handles["dan"]))
        for customer, handle in handles.items():
            result = await handle.result(timeout=60)
            steps = " -> ".join(
                s.step_id if s.status == "COMPLETED" else f"{s.step_id} ({s.status})"
                for s in await handle.steps()
            )
            print(f"=> {customer}: {result['status']}\n   steps: {steps}")
        await officer


if __name__ == "__main__":
    asyncio.run(main())
