"""The decision ``durable start`` makes from the worker registry (no process needed)."""

from __future__ import annotations

from durable.cli._workers import start_refusal
from durable.store import WorkerRecord

KW = "POSITIONAL_OR_KEYWORD"


def worker(live: bool = True, **workflows: tuple[tuple[str, str], ...]) -> WorkerRecord:
    return WorkerRecord("w", "h", 1, ("default",), "1", workflows=workflows, live=live)


def test_a_name_only_a_dead_worker_knows_is_unknown():
    found = [worker(live=False, expense=()), worker(refund=())]
    assert start_refusal("expense", {}, found) == (
        "unknown workflow 'expense'; live workers know: refund (pass --force to start it anyway)"
    )


def test_any_live_signature_that_takes_the_arguments_passes():
    old = worker(expense=(("claim_id", KW),))
    new = worker(expense=(("claim_id", KW), ("amount", "KEYWORD_ONLY")))
    assert start_refusal("expense", {"claim_id": 1, "amount": 2}, [old, new]) is None
    assert start_refusal("expense", {"claim": 1, "amount": 2}, [new]) == (
        "workflow 'expense' takes (claim_id, amount); got unknown argument 'claim' "
        "(pass --force to start it anyway)"
    )


def test_a_var_keyword_signature_takes_any_name_and_positional_only_takes_none():
    assert start_refusal("e", {"x": 1}, [worker(e=(("kw", "VAR_KEYWORD"),))]) is None
    refusal = start_refusal("e", {"a": 1, "b": 2}, [worker(e=(("a", "POSITIONAL_ONLY"),))])
    assert refusal is not None and "got unknown arguments 'a', 'b'" in refusal
