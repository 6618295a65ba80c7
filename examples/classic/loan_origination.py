"""Loan origination, code-first: parallel checks, a decision table, a review that escalates.

The same process as the JSON flow ``examples/flows/loan_origination.json``, written as a
Python workflow. For each application the credit score and the fraud check run in
parallel (``ctx.gather``). A decision table (a plain function: pure code needs no
journaling) gives a risk band and a limit. LOW risk is approved, HIGH risk rejected, and
MEDIUM risk goes to an underwriter: a durable signal wait with a timeout. When the
underwriter has not answered in time (1 s here, two business days in real life) the
review is escalated to a senior underwriter, and the first of them to answer decides.

Four applications take the four routes. Runs on the embedded store in a few seconds:

    python examples/classic/loan_origination.py
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

import durable

app = durable.App()  # $DURABLE_DSN, else sqlite:///durable.db

REVIEW_TIMEOUT = timedelta(seconds=1)  # two business days in production
SCORES = {"alice": 780, "bob": 610, "carol": 420, "dave": 650}


class Application(BaseModel):
    applicant: str
    amount: int


@durable.activity(name="credit-score", retry=durable.RetryPolicy(max_attempts=3))
async def credit_score(applicant: str) -> int:
    await asyncio.sleep(0.05)  # a call to the credit bureau
    print(f"  [credit-score] {applicant}: {SCORES[applicant]}")
    return SCORES[applicant]


@durable.activity(name="fraud-check")
def fraud_check(applicant: str) -> bool:  # sync activities run in a worker thread
    print(f"  [fraud-check] {applicant}: clear")
    return False


@durable.activity(name="request-review")
async def request_review(applicant: str, reviewer: str) -> None:
    print(f"  [request-review] {applicant}'s application goes to the {reviewer}")


def risk_band(score: int, amount: int, fraud_suspected: bool) -> tuple[str, int]:
    """The risk decision table, hit policy FIRST: the first matching rule wins."""
    if fraud_suspected:
        return "HIGH", 0
    if score >= 700 and amount <= 100_000:
        return "LOW", 100_000
    if 500 <= score < 700:
        return "MEDIUM", amount // 2
    return "HIGH", 0


@durable.workflow(name="loan-application")
async def loan_application(ctx: durable.Context, application: Application) -> dict[str, Any]:
    score, fraud = await ctx.gather(
        credit_score(application.applicant), fraud_check(application.applicant)
    )
    band, limit = risk_band(score, application.amount, fraud)
    outcome: dict[str, Any] = {"score": score, "risk": band, "limit": limit}
    if band == "LOW":
        return {**outcome, "decision": "APPROVED", "by": "rules"}
    if band == "HIGH":
        return {**outcome, "decision": "REJECTED", "by": "rules"}

    await request_review(application.applicant, "underwriter")
    ctx.set_event("reviewer", "underwriter")  # tells the people-facing side who is asked
    try:
        review = await ctx.wait_signal("review", timeout=REVIEW_TIMEOUT)
    except durable.WaitTimeout:  # the outcome of the race is journaled: replay agrees
        await request_review(application.applicant, "senior underwriter")
        ctx.set_event("reviewer", "senior underwriter")
        review = await ctx.wait_signal("review")  # whoever answers first now decides
        outcome["escalated"] = True
    return {**outcome, "decision": review["decision"], "by": review["by"]}


async def reviewers(handle: durable.Handle[Any], answers: dict[str, str]) -> None:
    """The people: each reviewer in ``answers`` decides once the run asks them."""
    answered: set[str] = set()
    while not (await handle.describe()).status.is_terminal:
        asked = await handle.get_event("reviewer")
        if asked in answers and asked not in answered:
            answered.add(asked)
            print(f"  [{asked}] {answers[asked].lower()}")
            await handle.signal("review", {"decision": answers[asked], "by": asked})
        await asyncio.sleep(0.05)


async def main() -> None:
    # Who answers a review: bob's underwriter is away, so his review escalates.
    people = {
        "bob": {"senior underwriter": "APPROVED"},
        "dave": {"underwriter": "REJECTED"},
    }
    batch = uuid.uuid4().hex[:6]  # fresh runs each time the script runs
    async with app, app.worker():
        for applicant, amount in (("alice", 50_000), ("bob", 20_000), ("carol", 5_000),
                                  ("dave", 8_000)):  # fmt: skip
            print(f"{applicant} applies for {amount:,}")
            handle = await app.start(
                loan_application, Application(applicant=applicant, amount=amount),
                id=f"loan-{applicant}-{batch}",
            )  # fmt: skip
            people_task = asyncio.create_task(reviewers(handle, people.get(applicant, {})))
            result = await handle.result(timeout=60)
            await people_task
            escalated = " after escalation" if result.get("escalated") else ""
            print(
                f"=> {applicant}: score {result['score']}, risk {result['risk']}, limit "
                f"{result['limit']:,}: {result['decision']} by the {result['by']}{escalated}\n"
            )


if __name__ == "__main__":
    asyncio.run(main())
