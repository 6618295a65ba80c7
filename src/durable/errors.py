"""The one exception hierarchy of durable.

::

    DurableError                      every error durable raises derives from this
    ├── NotFoundError                 what a call names does not exist (REST: 404)
    │   ├── NotRegisteredError        no workflow or activity under that name
    │   ├── RunNotFoundError          no run with that id
    │   ├── DefinitionNotFoundError   no flow definition with that id (and version)
    │   ├── JobNotFoundError          no external job with that id
    │   └── ScheduleNotFoundError     no cron schedule with that id
    ├── ConflictError                 the call does not fit the current state (REST: 409)
    │   ├── RunConflictError          the id is taken by a run of another workflow
    │   ├── RunClosedError            the run has finished and takes no more signals
    │   ├── StepNotWaitingError       a user task or wait step is not waiting and never was
    │   └── JobConflictError          the job is held by another worker, or closed otherwise
    ├── InvalidInputError             a value given to durable is refused (REST: 400)
    │   ├── SerializationError        a value cannot be converted to or from its stored form
    │   ├── ValidationError           a JSON flow definition is invalid (``problems`` lists all)
    │   └── InvalidScheduleError (ValueError) a schedule's cron, timezone or option is invalid
    ├── StoreError                    the database failed; the message names the operation (503)
    ├── ConfigurationError            a bad DSN (a database or role the server does not know,
    │                                 a wrong password), option or setup
    ├── WorkflowFailed                the run ended FAILED or CANCELLED (``error_type`` says why)
    ├── ActivityError                 an activity failed for good; raised inside the workflow
    ├── NonRetryableError             raised by an activity to fail at once, without retries
    ├── NonDeterminismError           the code no longer matches the run's journal
    ├── DeterminismWarning (UserWarning) workflow code read the clock, drew randomness, ...
    ├── WaitTimeout (TimeoutError)    a durable wait ran past its timeout
    ├── WorkflowTimeout (TimeoutError) a run ran past its execution timeout; it ends FAILED
    ├── LeaseLostError                another worker now holds the run (fencing)
    ├── ExpressionError               a flow expression failed to parse or evaluate (``kind``)
    └── FlowError                     a step of a JSON flow failed; the message names the step

    BaseException
    ├── Cancelled                     the run was cancelled; raised at the next durable await
    └── ContinueAsNew                 raised by ``ctx.continue_as_new``; ends this journal

``Cancelled`` derives from ``BaseException`` so that a broad ``except Exception`` in a
workflow does not swallow a cancellation by accident (trio does the same).

The three intermediate bases say what kind of mistake a caller made, whatever the
operation: catch ``NotFoundError`` rather than each lookup's own error. The REST server
answers by base class (``docs/rest.md``), so a new error under one of them gets the right
status without a change there; the errors under none of them describe a run's outcome
or a failure of the system, never bad input.
"""

from __future__ import annotations

from dataclasses import dataclass


class DurableError(Exception):
    """Base class of every error raised by durable."""


class ConfigurationError(DurableError):
    """A DSN, option or registration is invalid."""


class NotFoundError(DurableError):
    """What the call names does not exist: a run, definition, job, schedule, workflow.

    Every "not found" error derives from it; the REST API answers 404.
    """


class ConflictError(DurableError):
    """The call does not fit the current state: an id taken, a run finished, a job or task
    no longer the caller's. The REST API answers 409."""


class InvalidInputError(DurableError):
    """A value given to durable is refused: arguments that cannot be stored, an invalid
    definition or schedule. The REST API answers 400."""


class NotRegisteredError(NotFoundError):
    """No workflow or activity is registered under the requested name."""


class SerializationError(InvalidInputError):
    """A value cannot be converted to its stored form, or back.

    The message names the workflow or activity and the argument at fault.
    """


class RunNotFoundError(NotFoundError):
    """No run has the requested id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class RunClosedError(ConflictError):
    """The run has finished; it accepts no more signals (nor a pause or a resume)."""

    def __init__(self, run_id: str, status: str, refused: str = "accepts no more signals") -> None:
        super().__init__(f"run {run_id!r} is {status} and {refused}")
        self.run_id = run_id
        self.status = status


class RunConflictError(ConflictError):
    """A start reused the id of a run of another workflow."""


class RunStateError(ConflictError):
    """The run's status does not allow the operation (``retry()`` of a run that did not fail)."""

    def __init__(self, run_id: str, status: str, message: str) -> None:
        super().__init__(f"run {run_id!r} is {status}: {message}")
        self.run_id = run_id
        self.status = status


class WorkflowFailed(DurableError):
    """The run ended FAILED (or CANCELLED); raised by ``Handle.result()`` and ``ctx.child``.

    Attributes:
        run_id: The run that ended.
        status: ``"FAILED"`` or ``"CANCELLED"``.
        error_type: The type name of the workflow's exception (``"ActivityError"``,
            ``"WorkflowTimeout"``, ``"Cancelled"``, ...).
        error_message: Its message.
        traceback: The formatted traceback, as recorded by the worker.
    """

    def __init__(
        self, run_id: str, status: str, error_type: str, message: str, traceback: str = ""
    ) -> None:
        super().__init__(f"run {run_id!r} {status.lower()}: {error_type}: {message}")
        self.run_id = run_id
        self.status = status
        self.error_type = error_type
        self.error_message = message
        self.traceback = traceback


class ActivityError(DurableError):
    """An activity failed after its last attempt.

    Raised inside the workflow at the ``await`` of the activity, the same way on the first
    execution and on replay.

    Attributes:
        activity: The activity's name.
        error_type: The type name of the activity's own exception.
        error_message: Its message.
        attempts: How many times the activity ran.
        causes: The chain of exceptions behind it, as ``(type, message)`` pairs,
            outermost first, as ``raise ... from`` built it.
        traceback: The formatted traceback of the last attempt.
    """

    def __init__(
        self,
        activity: str,
        error_type: str,
        message: str,
        attempts: int,
        *,
        causes: tuple[tuple[str, str], ...] = (),
        traceback: str = "",
    ) -> None:
        plural = "s" if attempts != 1 else ""
        super().__init__(
            f"activity {activity!r} failed after {attempts} attempt{plural}: "
            f"{error_type}: {message}"
        )
        self.activity = activity
        self.error_type = error_type
        self.error_message = message
        self.attempts = attempts
        self.causes = causes
        self.traceback = traceback


class NonRetryableError(DurableError):
    """Raise from an activity to fail it at once, whatever its retry policy says."""


class NonDeterminismError(DurableError):
    """Workflow code asked for a different operation than its journal recorded.

    The run is parked, not failed: deploy code that matches the journal and a worker
    resumes it.
    """

    def __init__(
        self, run_id: str, seq: int, recorded: str, requested: str, *, replay: bool = False
    ) -> None:
        advice = (
            "A worker running this code would park the run; keep the same calls in the "
            "same order (use ctx.patched() for intended changes)."
            if replay  # found by durable.testing.replay, not by a worker
            else "The run is parked; deploy code that makes the same calls in the same order "
            "(use ctx.patched() for intended changes) and a worker resumes it."
        )
        super().__init__(
            f"run {run_id!r} is not deterministic at sequence number {seq}: "
            f"the journal holds {recorded}, the code asked for {requested}. {advice}"
        )
        self.run_id = run_id
        self.seq = seq
        self.recorded = recorded
        self.requested = requested


class DeterminismWarning(DurableError, UserWarning):
    """Workflow code did something replay cannot repeat (read the clock, drew a random
    number, made network I/O, slept on the event loop).

    The message names the call and its deterministic replacement (``ctx.now()``,
    ``ctx.random()``, ``ctx.uuid4()``, an activity, ``ctx.sleep()``). Turn it into an
    error with ``-W error::durable.DeterminismWarning`` (pytest: ``filterwarnings``).
    """


class WaitTimeout(DurableError, TimeoutError):
    """A durable wait (``ctx.wait_signal(..., timeout=)``) timed out."""


class WorkflowTimeout(DurableError, TimeoutError):
    """A run was still going when its workflow's ``execution_timeout`` passed.

    The run ends FAILED with this as its error; its unfinished children are cancelled.
    """


class LeaseLostError(DurableError):
    """The run's lease was taken over by another worker; this worker's write was refused."""


class StoreError(DurableError):
    """The database failed; the message names the operation."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of an invalid definition: where it is and what is wrong."""

    path: str
    """A JSON path into the document, such as ``steps[3].nextStep``."""
    message: str
    step_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.path} (step {self.step_id!r})" if self.step_id else self.path
        return f"{where}: {self.message}"


class ValidationError(InvalidInputError):
    """A flow definition is invalid; ``problems`` lists every problem found, not only the first."""

    def __init__(self, problems: list[Problem], subject: str = "definition") -> None:
        count = len(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"{subject} is invalid ({count} problem{'s' if count != 1 else ''}):\n{lines}"
        )
        self.problems = problems


class ExpressionError(DurableError):
    """A flow expression could not be parsed or evaluated.

    ``kind`` is one of ``syntax``, ``undefined``, ``type``, ``division``, ``boolean``,
    ``forbidden`` or ``too_complex``; ``expression`` is the source text.
    """

    def __init__(self, kind: str, message: str, expression: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.expression = expression


class FlowError(DurableError):
    """A step of a JSON flow failed (no branch matched, a handler failed for good, ...).

    The message names the step; the run ends FAILED with it as the failure reason.
    """

    def __init__(self, step_id: str, step_type: str, reason: str) -> None:
        super().__init__(f"step {step_id!r} ({step_type}) failed: {reason}")
        self.step_id = step_id
        self.step_type = step_type
        self.reason = reason


class DefinitionNotFoundError(NotFoundError):
    """No flow definition has the requested id (or version)."""


class StepNotWaitingError(ConflictError):
    """A user task or wait step was addressed that is not waiting and never was."""


class JobNotFoundError(NotFoundError):
    """No external job has the requested id."""


class JobConflictError(ConflictError):
    """The external job is held by another worker now, or was closed another way."""


class ScheduleNotFoundError(NotFoundError):
    """No cron schedule has the requested id."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule with id {schedule_id!r}; app.schedules.list() shows them")
        self.schedule_id = schedule_id


class InvalidScheduleError(InvalidInputError, ValueError):
    """A schedule was given a bad cron expression, time zone or option.

    ``field`` names the option at fault (``cron``, ``timezone``, ``missed``, ``id``, ...).
    """

    def __init__(self, schedule_id: str, field: str, problem: str) -> None:
        super().__init__(f"schedule {schedule_id!r}: {field} {problem}")
        self.schedule_id = schedule_id
        self.field = field
        self.problem = problem


class Cancelled(BaseException):
    """The run was cancelled. Raised inside the workflow at its next durable await.

    Catch it only to clean up (``finally`` or ``except durable.Cancelled: ...; raise``).
    """


class ContinueAsNew(BaseException):
    """Raised by ``ctx.continue_as_new``: the run restarts with a fresh journal.

    Derives from ``BaseException`` so that ``except Exception`` in a workflow lets it pass.
    """

    def __init__(self, args_text: str) -> None:
        super().__init__("the workflow continues as new")
        self.args_text = args_text
