"""Loan origination as a JSON flow: parallel checks, a decision table, a manual review.

Three applications take the three routes: a strong one is approved at once, a weak one
rejected, and a medium one waits for an underwriter. Nobody answers within 2 s, so the
non-interrupting timer escalates (the review stays open); the senior underwriter then
completes it. Runs on the embedded store:

    python examples/flows/loan_origination.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import durable

HERE = Path(__file__).parent
app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db

SCORES = {"alice": 780, "bob": 610, "carol": 420}


@durable.activity(name="credit-score")
async def credit_score(task: dict[str, Any]) -> dict[str, Any]:
    return {"creditScore": SCORES[task["variables"]["applicant"]]}


@durable.activity(name="fraud-check")
def fraud_check(task: dict[str, Any]) -> dict[str, Any]:
    return {"fraudSuspected": False}


@durable.activity(name="notify-senior")
async def notify_senior(task: dict[str, Any]) -> dict[str, Any]:
    print(f"  [notify-senior] review of {task['variables']['applicant']} is overdue")
    return {"escalated": True}


async def review_when_escalated(handle: durable.Handle[Any]) -> None:
    """The senior underwriter approves once the review has been escalated."""
    while True:
        desc = await handle.describe()
        if desc.status.is_terminal:
            return
        if (desc.variables or {}).get("escalated") and "manual-review" in desc.current_steps:
            await handle.complete_user_task("manual-review", {"reviewDecision": "APPROVED"})
            print("  [underwriter] approved the escalated review")
            return
        await asyncio.sleep(0.2)


async def main() -> None:
    definition = json.loads((HERE / "loan_origination.json").read_text())
    async with app, app.worker():
        ref = await app.definitions.upload(definition)
        print(f"uploaded {ref.id} version {ref.version}")
        for applicant, amount in (("alice", 50_000), ("bob", 20_000), ("carol", 5_000)):
            variables = {"applicant": applicant, "loanAmount": amount}
            handle = await app.start_flow(ref.id, variables=variables, business_key=applicant)
            reviewer = asyncio.create_task(review_when_escalated(handle))
            result = await handle.result(timeout=60)
            await reviewer
            print(
                f"{applicant}: score {result['creditScore']}, risk {result['riskBand']}, "
                f"limit {result['limit']}, {result['decision']}"
            )
            print("    steps: " + " -> ".join(s.step_id for s in await handle.steps()))


if __name__ == "__main__":
    asyncio.run(main())
