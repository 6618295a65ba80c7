"""Public data types describing runs: status, run metadata, descriptions and history."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InvalidInputError


class Status(enum.StrEnum):
    """The state of a run."""

    PENDING = "PENDING"
    """Started, not yet picked up by a worker."""
    RUNNING = "RUNNING"
    """Held by a worker."""
    WAITING = "WAITING"
    """Suspended on a timer or signal (or parked until fixed code is deployed)."""
    PAUSED = "PAUSED"
    """Paused by an operator (``Handle.pause``) or by a retry policy with
    ``on_exhausted="pause"``: nothing starts until ``Handle.resume``."""
    COMPLETED = "COMPLETED"
    """Ended with a result."""
    FAILED = "FAILED"
    """Ended with an error (``RunDescription.error`` says which)."""
    CANCELLED = "CANCELLED"
    """Ended by a cancellation."""

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED: the run has ended for good."""
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a workflow knows about its own run (``ctx.info``)."""

    run_id: str
    workflow: str
    attempt: int
    """How many times a worker has claimed this run (1 on the first execution)."""
    replaying: bool
    """True while the workflow is re-executing recorded steps."""


BLOCKED_KINDS = (
    "signal",
    "user_task",
    "job",
    "timer",
    "retry_backoff",
    "child",
    "queue_limit",
    "paused",
    "parked",
    "no_worker",
    "lease",
)
"""The kinds of ``BlockedOn``."""


@dataclass(frozen=True, slots=True)
class BlockedOn:
    """What an open run is waiting for (``RunDescription.blocked_on``).

    ``kind`` is one of ``"signal"``, ``"user_task"``, ``"job"``, ``"timer"``,
    ``"retry_backoff"``, ``"child"``, ``"queue_limit"``, ``"paused"``, ``"parked"``,
    ``"no_worker"`` (no live worker serves its queue, or all that do are busy) and
    ``"lease"`` (a worker holds the run: it is running, or its worker died and the
    lease has yet to run out). ``message`` says it in words, with times in UTC;
    ``since`` is when the wait began, where known.
    """

    kind: str
    message: str
    since: datetime | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class RunDescription:
    """A snapshot of a run (``Handle.describe()``, ``App.list_runs()``)."""

    run_id: str
    workflow: str
    status: Status
    created_at: datetime
    updated_at: datetime
    result: Any
    """The JSON form of the result when COMPLETED, else None."""
    error: dict[str, Any] | None
    """``{"type", "message", "traceback"}`` when FAILED or CANCELLED."""
    parked_reason: str | None
    """Why the run is parked (a non-determinism report), else None."""
    cancel_requested: bool
    business_key: str | None = None
    """The business key a flow run was started with."""
    flow_version: int | None = None
    """For a run of a JSON flow: the definition version (``workflow`` is its id)."""
    current_steps: tuple[str, ...] = ()
    """For a flow run: the ids of the steps active now, in the order they started."""
    variables: dict[str, Any] | None = None
    """For a flow run: its variables as of its last commit."""
    parent_id: str | None = None
    """The run that started this one with ``ctx.child``, if any."""
    children: tuple[str, ...] = ()
    """The runs this one started with ``ctx.child``, oldest first."""
    queue: str = "default"
    """The queue the run waits in for a worker."""
    priority: int = 0
    """Its priority within the queue (higher is claimed first)."""
    tags: dict[str, str] = field(default_factory=dict)
    """The run's tags (``tags=`` on start, ``ctx.set_tags``)."""
    forked_from: tuple[str, int | str | None] | None = None
    """For a fork (``Handle.fork``): the run it was forked from, and where: the journal seq
    (code-first) or the step id (flows) of the first operation it ran again."""
    paused_reason: str | None = None
    """Why the run is paused (``Handle.pause``, or the error that exhausted a retry policy
    with ``on_exhausted="pause"``); None when it is not paused."""
    blocked_on: BlockedOn | None = None
    """What the run waits for while it is open (``Handle.describe`` only; None in the
    results of ``list_runs`` and once the run has ended)."""

    @property
    def failure_reason(self) -> str | None:
        """Why the run failed or was cancelled, in one line."""
        return None if self.error is None else str(self.error.get("message", ""))


@dataclass(frozen=True, slots=True)
class StepExecution:
    """One activation of a flow step (``Handle.steps()``): the flow's step history."""

    id: str
    step_id: str
    step_type: str
    status: str
    """``RUNNING``, ``COMPLETED``, ``FAILED`` or ``CANCELLED``."""
    attempt: int
    started_at: datetime
    ended_at: datetime | None = None
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One journal record of a run (``Handle.history()``)."""

    position: int
    seq: int
    event: str
    """``result``, ``error``, ``timer`` (a timer was scheduled), ``retry`` (an attempt failed
    and the next is scheduled), ``start`` (a child run was started), ``cancel`` or
    ``retried`` (the failed run was retried; the payload is the error it had failed with)."""
    kind: str
    """``activity``, ``sleep``, ``signal``, ``child``, ``now``, ``random``, ``uuid4``,
    ``patch``, ``event``, ``step`` (a flow step), ``tags``, ``cancel`` or ``run``."""
    name: str
    payload: Any
    at: datetime
    fingerprint: str | None = None
    """A short hash of the call's arguments (activities, children); replay compares it."""
    superseded: bool = False
    """The record belongs to a failure that ``Handle.retry`` replaced (or is that retry's
    own record): replay skips it; it stays for the record."""


# -- tags and filters ---------------------------------------------------------------------
MAX_TAGS = 32
"""At most this many tags in one ``tags=`` or ``ctx.set_tags`` call."""
MAX_TAG_VALUE = 256
"""A tag value has at most this many characters."""
_TAG_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,63}")


def check_tags(tags: Mapping[str, str] | None, subject: str) -> tuple[tuple[str, str], ...]:
    """``tags`` as sorted (key, value) pairs, or InvalidInputError naming ``subject`` and the key.

    A key is 1 to 64 letters, digits and ``_ . : / -`` (not starting with a punctuation
    mark other than ``_``); a value is a string of at most 256 characters; at most 32 tags.
    """
    if not tags:
        return ()
    if not isinstance(tags, Mapping):
        raise InvalidInputError(f"tags of {subject} must be a dict of strings, got {tags!r}")
    if len(tags) > MAX_TAGS:
        raise InvalidInputError(f"{subject} has {len(tags)} tags; at most {MAX_TAGS} are allowed")
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
            raise InvalidInputError(
                f"tag key {key!r} of {subject} is invalid: use 1 to 64 letters, digits"
                " and _ . : / - (starting with a letter, digit or _)"
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise InvalidInputError(
                f"tag {key!r} of {subject} must have a string value of at most"
                f" {MAX_TAG_VALUE} characters, got {value!r:.80}"
            )
    return tuple(sorted(tags.items()))


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs ``App.list_runs`` and ``App.bulk`` take: every condition given holds.

    Example::

        flt = durable.RunFilter(status="WAITING", tags={"tenant": "acme"})
        page = await app.list_runs(flt, limit=50)
    """

    status: Status | str | None = None
    workflow: str | None = None
    """A workflow name, or a flow definition id."""
    tags: Mapping[str, str] | None = None
    """Tags the run must all carry, with these values."""
    business_key: str | None = None
    queue: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def __post_init__(self) -> None:
        if self.status is not None:
            object.__setattr__(self, "status", Status(self.status))
        check_tags(self.tags, "the filter")
        for name in ("created_after", "created_before"):
            when = getattr(self, name)
            if when is not None and when.tzinfo is None:
                raise InvalidInputError(f"RunFilter.{name} must be an aware datetime, got {when}")


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of ``App.list_runs(filter, limit=, cursor=)``, newest first."""

    runs: list[RunDescription]
    next_cursor: str | None
    """Pass it as ``cursor=`` for the next page; None when this page is the last."""
