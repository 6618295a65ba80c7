"""Multi-step approval with escalation as a JSON flow: USER_TASKs with boundary timers.

``approval_flow.json`` asks the team lead, then finance, each a USER_TASK. Each has an
interrupting boundary timer (``PT1S`` here, ``P1D`` in real life): when it fires, the
task is withdrawn (recorded as CANCELLED) and the flow escalates to a manager through a
SERVICE_TASK that notifies them, then a USER_TASK of their own with a deadline too; a
manager who stays silent rejects the request. A task is completed with
``handle.complete_user_task(step_id, variables)``, ``durable user-tasks complete RUN
STEP '{...}'`` or ``POST /v1/instances/{id}/user-tasks/{stepId}/complete``; completing a
withdrawn task raises ``StepNotWaitingError``, completing one twice does nothing.

- ``PR-1``: the team lead approves; finance does not answer, so the CFO is asked and
  approves.
- ``PR-2``: the team lead does not answer; the department head rejects.

The code-first version is ``approval.py``. Runs on the embedded store in a few seconds:

    python examples/classic/approval_flow.py
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

ESCALATE_TO = {"escalate-lead": "the department head", "escalate-finance": "the CFO"}


@durable.activity(name="notify-manager")
async def notify_manager(task: dict[str, Any]) -> dict[str, Any]:
    manager = ESCALATE_TO[task["stepId"]]
    print(f"  [notify-manager] {task['variables']['requestId']} is overdue: asking {manager}")
    return {}


Answer = tuple[str, str, str]  # (person, variable to set, decision)


async def approvers(handle: durable.Handle[Any], answers: dict[str, Answer]) -> None:
    """The people: complete each task in ``answers`` once it waits; leave the others."""
    done: set[str] = set()
    while not (desc := await handle.describe()).status.is_terminal:
        for step in desc.current_steps:
            if step in answers and step not in done:
                done.add(step)
                person, variable, decision = answers[step]
                try:
                    await handle.complete_user_task(step, {variable: decision, "by": person})
                    print(f"  [{person}] {decision.lower()} ({step})")
                except durable.StepNotWaitingError:  # its timer fired first
                    print(f"  [{person}] too late: {step} was escalated")
        await asyncio.sleep(0.05)


async def main() -> None:
    definition = json.loads((HERE / "approval_flow.json").read_text())
    cases: dict[str, dict[str, Answer]] = {
        "PR-1": {
            "lead-approval": ("ann", "leadDecision", "APPROVED"),
            "cfo-approval": ("cfo", "financeDecision", "APPROVED"),
        },
        "PR-2": {"head-approval": ("dora", "leadDecision", "REJECTED")},
    }
    batch = uuid.uuid4().hex[:6]  # fresh runs each time the script runs
    async with app, app.worker():
        ref = await app.definitions.upload(definition)
        print(f"uploaded {ref.id} version {ref.version}")
        for request_id, answers in cases.items():
            print(request_id)
            handle = await app.start_flow(
                ref.id, variables={"requestId": request_id}, business_key=request_id,
                id=f"approval-flow-{request_id}-{batch}",
            )  # fmt: skip
            people = asyncio.create_task(approvers(handle, answers))
            result = await handle.result(timeout=60)
            await people
            print(f"=> {request_id}: {result['outcome']}")
            for step in await handle.steps():
                if step.step_type == "USER_TASK":
                    print(f"   {step.step_id:17} {step.status}")
            print()


if __name__ == "__main__":
    asyncio.run(main())
