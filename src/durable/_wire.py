"""What durable writes into the journal and the signals table, and reads back.

Every name and payload format that one module stores and another parses is defined here,
once: the journal's event and kind names, the stored form of an error, the progress
records of an operation (a retry, a child's start), and the internal signals that end a
child wait, a user task or an external job. The texts are exactly those earlier
versions stored, so existing databases read back unchanged.

This module sits below the runtime, the store, the client and the flow interpreter, which
all import it; it imports nothing of theirs.
"""

from __future__ import annotations

import enum
import json
import traceback as _traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from .errors import (
    ActivityError,
    DurableError,
    NonDeterminismError,
    NotRegisteredError,
    WorkflowFailed,
)
from .serde import dumps


class Event(enum.StrEnum):
    """What a journal record says about its operation."""

    RESULT = "result"
    """It ended with a value (the payload)."""
    ERROR = "error"
    """It ended with an error (a ``StoredError``)."""
    CANCEL = "cancel"
    """The run was cancelled (a record of kind ``cancel`` at seq 0)."""
    # Progress of an operation that has not ended: replay resumes from them; they are not
    # outcomes the workflow receives.
    TIMER = "timer"
    """A timer was armed; the payload is its due time (``repr`` of seconds since the epoch)."""
    RETRY = "retry"
    """An attempt failed and another follows (a ``RetryRecord``)."""
    START = "start"
    """A child run was started (``child_start_payload``)."""
    RETRIED = "retried"
    """The failed run was retried (``Handle.retry``; a record of kind ``run`` at seq 0 whose
    payload is the error it had failed with). Replay skips the failure before it and what
    followed the failure (``runtime._journal.superseded``); ``history()`` shows them as
    superseded."""


class Kind(enum.StrEnum):
    """The operation a journal record belongs to."""

    ACTIVITY = "activity"
    SLEEP = "sleep"
    SIGNAL = "signal"
    CHILD = "child"
    NOW = "now"
    RANDOM = "random"
    UUID4 = "uuid4"
    PATCH = "patch"
    EVENT = "event"
    """A value published with ``ctx.set_event``."""
    STEP = "step"
    """A flow step's start or end (a ``StepRecord``)."""
    CANCEL = "cancel"
    """The run's cancellation (event ``cancel``)."""
    TAGS = "tags"
    """Tags set with ``ctx.set_tags`` (the name lists their keys)."""
    RUN = "run"
    """The run itself: its retry (event ``retried``)."""


# -- errors -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredError:
    """An error as the journal, a run row or a park reason stores it (a JSON object).

    ``type``, ``message`` and, for an exception, ``traceback`` and ``causes`` (the chain
    behind it, outermost first); ``attempts`` on an activity's final error; ``seq``,
    ``recorded`` and ``requested`` on the park reason of a ``NonDeterminismError``.
    Keys that are None (or empty causes) are not written; unknown keys are ignored on read.
    """

    type: str
    message: str
    traceback: str | None = None
    causes: tuple[tuple[str, str], ...] = ()
    attempts: int | None = None
    seq: int | None = None
    recorded: str | None = None
    requested: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> StoredError:
        """Type name, message, formatted traceback and the cause chain of ``exc``."""
        causes: list[tuple[str, str]] = []
        seen = {id(exc)}
        cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        while cause is not None and id(cause) not in seen and len(causes) < 20:
            seen.add(id(cause))
            causes.append((type(cause).__qualname__, str(cause)))
            cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
        return cls(
            type(exc).__qualname__,
            str(exc),
            "".join(_traceback.format_exception(exc)),
            tuple(causes),
        )

    @classmethod
    def nondeterminism(cls, exc: NonDeterminismError) -> StoredError:
        """The park reason of a run whose code diverged from its journal."""
        return cls(
            "NonDeterminismError",
            str(exc),
            seq=exc.seq,
            recorded=exc.recorded,
            requested=exc.requested,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredError:
        """Read the JSON object form (``type`` defaults to ``Error``, ``message`` to "")."""
        attempts = data.get("attempts")
        seq = data.get("seq")
        return cls(
            str(data.get("type", "Error")),
            str(data.get("message", "")),
            data.get("traceback"),
            tuple((str(t), str(m)) for t, m in data.get("causes", ())),
            None if attempts is None else int(attempts),
            None if seq is None else int(seq),
            data.get("recorded"),
            data.get("requested"),
        )

    @classmethod
    def loads(cls, text: str) -> StoredError:
        """Read stored text.

        Raises:
            ValueError: the text is not a JSON object.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a stored error is a JSON object, not {text[:60]!r}")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form, keys in their stored order."""
        data: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.traceback is not None:
            data["traceback"] = self.traceback
        if self.causes:
            data["causes"] = [list(cause) for cause in self.causes]
        if self.attempts is not None:
            data["attempts"] = self.attempts
        if self.seq is not None:
            data["seq"] = self.seq
            data["recorded"] = self.recorded
            data["requested"] = self.requested
        return data

    def dumps(self) -> str:
        """Compact JSON text: a run's error, a journaled failure."""
        return dumps(self.to_dict())

    def dumps_reason(self) -> str:
        """JSON text of a park reason, spaced as ``json.dumps`` writes it (the form
        ``UNKNOWN_WORKFLOW_LIKE`` matches)."""
        return json.dumps(self.to_dict())

    def with_attempts(self, attempts: int) -> StoredError:
        return replace(self, attempts=attempts)

    # -- the errors it stands for -----------------------------------------------------------
    def activity_error(self, activity: str) -> ActivityError:
        """The error a workflow receives for an activity that failed for good."""
        return ActivityError(
            activity,
            self.type,
            self.message,
            1 if self.attempts is None else self.attempts,
            causes=self.causes,
            traceback=self.traceback or "",
        )

    def workflow_failed(self, run_id: str, status: str) -> WorkflowFailed:
        """The error a caller receives for a run that ended ``status`` with this error."""
        return WorkflowFailed(run_id, status, self.type, self.message, self.traceback or "")

    def parked_error(self, run_id: str) -> DurableError:
        """The error a caller receives for a run parked with this reason."""
        if self.type == "NonDeterminismError" and self.seq is not None:
            return NonDeterminismError(run_id, self.seq, self.recorded or "", self.requested or "")
        if self.type == "NotRegisteredError":
            return NotRegisteredError(f"run {run_id!r} is parked: {self.message}")
        return DurableError(f"run {run_id!r} is parked: {self.message or '?'}")


def unknown_workflow_reason(message: str) -> str:
    """The park reason of a run claimed by a worker that does not know its workflow."""
    return StoredError("NotRegisteredError", message).dumps_reason()


UNKNOWN_WORKFLOW_LIKE = '{"type": "NotRegisteredError"%'
"""A LIKE pattern matching exactly the reasons of ``unknown_workflow_reason``."""

CANCELLED_BEFORE_START = StoredError("Cancelled", "cancelled before it started", "").dumps()
"""The error of a run cancelled before it started (and what its parent hears)."""


# -- progress records -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryRecord:
    """The payload of a ``retry`` record: attempt ``attempt`` starts at ``at`` (seconds
    since the epoch) after the previous one failed with ``error``."""

    attempt: int
    at: float
    error: StoredError | None = None

    def dumps(self) -> str:
        data: dict[str, Any] = {"attempt": self.attempt, "at": self.at}
        if self.error is not None:
            data["error"] = self.error.to_dict()
        return dumps(data)

    @classmethod
    def loads(cls, text: str) -> RetryRecord:
        data = json.loads(text)
        error = data.get("error")
        return cls(
            int(data["attempt"]),
            float(data["at"]),
            None if error is None else StoredError.from_dict(error),
        )


class StepRecord(TypedDict, total=False):
    """The payload of a flow's ``step`` record (the record's name is the step id).

    A step that waits has a start record (``type``, ``at``) and an end record pointing at
    it (``status``, ``at``, ``start``: the start record's seq); a quick step has one record
    at its end (``status``, ``at``, ``type``, ``startedAt``, and ``first``: the seq of its
    first operation, absent in older records). Ends may add ``attempt``
    (when not 1), ``reason`` and ``output`` (the variables the step wrote). Times are ISO
    8601 text.
    """

    type: str
    at: str
    status: str
    start: int
    startedAt: str
    first: int
    attempt: int
    reason: str
    output: dict[str, Any]


# -- children -----------------------------------------------------------------------------
def child_start_payload(child_id: str) -> str:
    """The payload of the ``start`` record of a child: its run id as JSON."""
    return json.dumps(child_id)


def child_started(payload: str | None) -> str:
    """The child run id a ``start`` record holds."""
    child_id: str = json.loads(payload or "null")
    return child_id


def child_signal(child_id: str) -> str:
    """The signal a finished child sends its parent."""
    return f"durable.child:{child_id}"


def child_dedupe_key(child_id: str) -> str:
    """The dedupe key of ``child_signal``: a child's end is told once."""
    return f"child:{child_id}"


def child_done_payload(run_id: str, status: str, result: str | None, error: str | None) -> str:
    """What a finished child tells its parent: its id, status, and result or error.

    ``result`` and ``error`` are the stored texts of the child's row, spliced in as they are.
    """
    return (
        f'{{"run_id":{json.dumps(run_id)},"status":"{status}",'
        f'"result":{result or "null"},"error":{error or "null"}}}'
    )


@dataclass(frozen=True, slots=True)
class ChildEnd:
    """A ``child_done_payload`` read back: ``result`` is the JSON value of a COMPLETED child."""

    run_id: str
    status: str
    result: Any
    error: StoredError | None

    @classmethod
    def loads(cls, text: str) -> ChildEnd:
        data = json.loads(text)
        error = data.get("error")
        return cls(
            data["run_id"],
            data["status"],
            data.get("result"),
            StoredError.from_dict(error) if error else None,
        )

    def failure(self) -> WorkflowFailed:
        """The error the parent receives for a child that did not complete."""
        error = self.error or StoredError.from_dict({})
        return error.workflow_failed(self.run_id, self.status)


# -- user tasks and external jobs -----------------------------------------------------------
def user_task_signal(start_seq: int) -> str:
    """The signal that completes the user task whose activation started at ``start_seq``."""
    return f"durable.task#{start_seq}"


def user_task_dedupe_key(start_seq: int) -> str:
    """The dedupe key of ``user_task_signal``: a task is completed once."""
    return f"task#{start_seq}"


# Job ids must be the same every time a replayed run enqueues its step, so they are
# derived from the step's place in the run rather than drawn at random.
_JOB_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:durable:job")


def job_id_for(run_id: str, seq: int) -> str:
    """The id of the job a run enqueues at sequence number ``seq``."""
    return str(uuid.uuid5(_JOB_NAMESPACE, f"{run_id}:{seq}"))


def job_signal_name(seq: int) -> str:
    """The signal that carries the outcome of the job enqueued at ``seq`` to its run."""
    return f"durable.job#{seq}"


def is_failed_job(name: str, payload: str | None) -> bool:
    """Whether a signal wait's record (``name``, ``payload``) received a failed job."""
    if not name.startswith("durable.job#") or not payload:
        return False
    answer = json.loads(payload)
    return isinstance(answer, dict) and answer.get("ok") is False


class JobOutcome(TypedDict, total=False):
    """The payload of ``job_signal_name``: ``variables`` when ``ok``, else ``error``."""

    ok: bool
    variables: Any
    error: str
    attempt: int
    workerId: str


def job_done_payload(variables: str, attempt: int, worker_id: str) -> str:
    """The payload of the signal a completed job sends its run."""
    outcome = JobOutcome(
        ok=True, variables=json.loads(variables), attempt=attempt, workerId=worker_id
    )
    return json.dumps(outcome)


def job_failed_payload(message: str, attempt: int, worker_id: str) -> str:
    """The payload of the signal a job that failed for good sends its run."""
    return json.dumps(JobOutcome(ok=False, error=message, attempt=attempt, workerId=worker_id))
