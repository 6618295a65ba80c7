"""The dashboard's reading of a journal (timeline rows) and of a fork (what differs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from durable.info import HistoryEvent
from durable.server.ui._fork import changes, shared_prefix
from durable.server.ui._render import pretty
from durable.server.ui._timeline import rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(pos: int, seq: int, event: str, kind: str, payload: Any, at: float) -> HistoryEvent:
    return HistoryEvent(pos, seq, event, kind, "x", payload, T0 + timedelta(seconds=at))


def test_an_activity_with_retries_a_sleep_and_a_child_read_as_three_rows() -> None:
    boom = {"type": "RuntimeError", "message": "boom", "traceback": "tb"}
    journal = [
        _event(0, 1, "retry", "activity", {"attempt": 2, "error": boom}, 1),
        _event(1, 1, "retry", "activity", {"attempt": 3, "error": boom}, 2),
        _event(2, 1, "result", "activity", 7, 3),
        _event(3, 2, "timer", "sleep", 1e9, 3.5),
        _event(4, 2, "result", "sleep", None, 6),
        _event(5, 3, "start", "child", "child-1", 6),
        _event(6, 3, "result", "child", {"result": "ok"}, 8),
    ]
    activity, sleep, child = rows(journal, T0, T0 + timedelta(seconds=10))
    assert activity.attempts == 3 and len(activity.failures) == 2 and activity.value == 7
    assert activity.duration == timedelta(seconds=3)
    assert sleep.started == T0 + timedelta(seconds=3.5)  # from its timer record
    assert child.child == "child-1" and child.value == "ok" and child.outcome == "result"
    assert 0 <= activity.x < sleep.x < child.x <= 100
    assert all(0 < row.width <= 100 - row.x + 1e-9 for row in (activity, sleep, child))


def test_an_open_operation_and_a_failed_one() -> None:
    journal = [
        _event(0, 1, "error", "activity", {"type": "E", "message": "m"}, 1),
        _event(1, 2, "timer", "signal", 1e9, 2),
    ]
    failed, waiting = rows(journal, T0, T0 + timedelta(seconds=4))
    assert failed.outcome == "error" and failed.error == {"type": "E", "message": "m"}
    assert waiting.outcome == "open" and waiting.ended is None and waiting.duration is None


def test_a_forks_copied_records_older_than_the_run_get_no_negative_duration() -> None:
    journal = [_event(0, 1, "result", "activity", 1, -30), _event(1, 2, "result", "activity", 2, 5)]
    first, second = rows(journal, T0, T0 + timedelta(seconds=6))
    assert first.duration is not None and first.duration >= timedelta(0)
    assert second.duration is not None and second.duration >= timedelta(0)
    assert first.x == 0


def test_flow_step_records_say_started_or_their_status() -> None:
    journal = [
        _event(0, 1, "result", "step", {"type": "USER_TASK"}, 1),
        _event(1, 2, "result", "step", {"status": "COMPLETED", "type": "USER_TASK"}, 2),
    ]
    start, end = rows(journal, T0, T0 + timedelta(seconds=3))
    assert (start.note, end.note) == ("started", "completed")


def test_what_differs_between_an_origin_and_its_fork() -> None:
    found = changes({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "d": 4})
    assert [(c.key, c.kind, c.before, c.after) for c in found] == [
        ("b", "changed", 2, 5),
        ("c", "removed", 3, None),
        ("d", "added", None, 4),
    ]
    assert changes(1, 1) == [] and changes(1, 2)[0].kind == "changed"
    same = [_event(0, 1, "result", "activity", 1, 1), _event(1, 2, "result", "activity", 2, 2)]
    other = [same[0], _event(1, 2, "result", "activity", 3, 2)]
    assert shared_prefix(same, other) == 1 and shared_prefix(same, same) == 2


def test_pretty_json_breaks_only_what_is_wider_than_a_line() -> None:
    assert pretty({"a": 1}) == '{"a": 1}'
    text = pretty({"short": [1, 2], "long": "x" * 100})
    assert text.splitlines() == ["{", '  "short": [1, 2],', f'  "long": "{"x" * 100}"', "}"]
    assert pretty("<script>") == '"<script>"'  # the template escapes it
