"""The wire vocabulary writes exactly the texts earlier versions stored, and reads them back."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import durable
from durable._wire import (
    CANCELLED_BEFORE_START,
    UNKNOWN_WORKFLOW_LIKE,
    ChildEnd,
    Event,
    Kind,
    RetryRecord,
    StoredError,
    child_dedupe_key,
    child_done_payload,
    child_signal,
    child_start_payload,
    child_started,
    job_done_payload,
    job_failed_payload,
    job_signal_name,
    unknown_workflow_reason,
    user_task_dedupe_key,
    user_task_signal,
)

WIRE = Path(__file__).resolve().parent.parent / "src" / "durable" / "_wire.py"


def test_names_are_the_stored_strings() -> None:
    assert [str(e) for e in Event] == [
        "result",
        "error",
        "cancel",
        "timer",
        "retry",
        "start",
        "retried",
    ]
    assert [str(k) for k in Kind] == [
        "activity",
        "sleep",
        "signal",
        "child",
        "now",
        "random",
        "uuid4",
        "patch",
        "event",
        "step",
        "cancel",
        "tags",
        "run",
    ]
    assert Kind.STEP == "step" and f"{Kind.STEP}" == "step" and json.dumps(Kind.STEP) == '"step"'


def _raised() -> BaseException:
    try:
        try:
            raise KeyError("k")
        except KeyError as exc:
            raise ValueError("bad é") from exc
    except ValueError as exc:
        return exc
    raise AssertionError


def test_an_exception_is_stored_with_its_traceback_and_causes() -> None:
    stored = StoredError.from_exception(_raised())
    text = stored.dumps()
    assert text.startswith('{"type":"ValueError","message":"bad é","traceback":"Traceback')
    assert text.endswith(',"causes":[["KeyError","\'k\'"]]}')
    assert StoredError.loads(text) == stored
    final = stored.with_attempts(3).dumps()
    assert final == text[:-1] + ',"attempts":3}'


def test_short_errors_keep_their_keys() -> None:
    assert StoredError("WaitTimeout", "no signal").dumps() == (
        '{"type":"WaitTimeout","message":"no signal"}'
    )
    assert CANCELLED_BEFORE_START == (
        '{"type":"Cancelled","message":"cancelled before it started","traceback":""}'
    )


def test_park_reasons_are_spaced_and_matched_by_their_pattern() -> None:
    reason = unknown_workflow_reason("no workflow 'x'")
    assert reason == '{"type": "NotRegisteredError", "message": "no workflow \'x\'"}'
    assert reason.startswith(UNKNOWN_WORKFLOW_LIKE.rstrip("%"))
    exc = durable.NonDeterminismError("r", 4, "sleep", "activity 'a'")
    text = StoredError.nondeterminism(exc).dumps_reason()
    assert json.loads(text) == {
        "type": "NonDeterminismError",
        "message": str(exc),
        "seq": 4,
        "recorded": "sleep",
        "requested": "activity 'a'",
    }
    assert text.startswith('{"type": "NonDeterminismError", "message": ')
    rebuilt = StoredError.loads(text).parked_error("r")
    assert isinstance(rebuilt, durable.NonDeterminismError) and str(rebuilt) == str(exc)


def test_reading_tolerates_unknown_keys_and_refuses_what_is_no_object() -> None:
    stored = StoredError.loads('{"type":"E","message":"m","later":1}')
    assert stored == StoredError("E", "m")
    with pytest.raises(ValueError):
        StoredError.loads('"text"')


def test_stored_errors_become_the_errors_callers_receive() -> None:
    stored = StoredError("CardDeclined", "no", "tb", (("KeyError", "'k'"),), attempts=2)
    error = stored.activity_error("charge")
    assert (error.error_type, error.error_message, error.attempts) == ("CardDeclined", "no", 2)
    assert error.causes == (("KeyError", "'k'"),) and error.traceback == "tb"
    failed = StoredError("Boom", "x").workflow_failed("r", "FAILED")
    assert (failed.error_type, failed.error_message, failed.traceback) == ("Boom", "x", "")


def test_retry_records() -> None:
    record = RetryRecord(2, 1.5, StoredError("E", "m", "tb"))
    text = record.dumps()
    assert text == '{"attempt":2,"at":1.5,"error":{"type":"E","message":"m","traceback":"tb"}}'
    assert RetryRecord.loads(text) == record


def test_child_ends() -> None:
    assert child_signal("c") == "durable.child:c" and child_dedupe_key("c") == "child:c"
    assert child_started(child_start_payload("c/1")) == "c/1"
    done = child_done_payload("c", "COMPLETED", '{"a":1}', None)
    assert done == '{"run_id":"c","status":"COMPLETED","result":{"a":1},"error":null}'
    assert ChildEnd.loads(done) == ChildEnd("c", "COMPLETED", {"a": 1}, None)
    failed = ChildEnd.loads(child_done_payload("c", "CANCELLED", None, CANCELLED_BEFORE_START))
    error = failed.failure()
    assert (error.status, error.error_type) == ("CANCELLED", "Cancelled")


def test_user_tasks_and_jobs() -> None:
    assert user_task_signal(7) == "durable.task#7" and user_task_dedupe_key(7) == "task#7"
    assert job_signal_name(5) == "durable.job#5"
    assert job_done_payload('{"x":1}', 2, "w") == (
        '{"ok": true, "variables": {"x": 1}, "attempt": 2, "workerId": "w"}'
    )
    assert job_failed_payload("no", 1, "w") == (
        '{"ok": false, "error": "no", "attempt": 1, "workerId": "w"}'
    )


def test_the_vocabulary_imports_nothing_above_it() -> None:
    allowed = {"durable.errors", "durable.serde"}
    for node in ast.walk(ast.parse(WIRE.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            assert f"durable.{node.module}" in allowed, node.module
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names = (
                [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            assert not any(str(n).startswith("durable") for n in names), names
