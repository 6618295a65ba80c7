"""The wire shapes of the REST API (``docs/rest.md``) as pydantic models; the OpenAPI
document is generated from them.

Request models are strict (``"5"`` is not a number, ``"true"`` not a boolean) and ignore
fields they do not know, as the Rochallor engine does. Free-text fields refuse NUL
characters and unpaired surrogates, which no database column can hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..flow._model import ID_PATTERN, STEP_TYPES

MAX_INT = 2**31 - 1
"""The largest version or page number accepted (the database's integer columns)."""


def _storable(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it holds an unpaired surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_storable)]
Name = Annotated[str, Field(min_length=1), AfterValidator(_storable)]
Variables = dict[str, Any]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _Response(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# -- errors ----------------------------------------------------------------------------
class ProblemOut(_Response):
    path: str
    """Where the problem is: a JSON path into the body (``steps[3].nextStep``) or a
    parameter (``query.pageSize``)."""
    message: str
    stepId: str | None = None


class ErrorOut(_Response):
    """Every error: a code, a human message, and for invalid input the list of problems."""

    error: str = Field(examples=["VALIDATION_ERROR"])
    message: str
    problems: list[ProblemOut] | None = None


# -- definitions -----------------------------------------------------------------------
class StepIn(BaseModel):
    """A step (``docs/format.md``); the fields of each type are checked by the validator."""

    model_config = ConfigDict(extra="allow", title="Step")
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: Literal[STEP_TYPES]  # type: ignore[valid-type]


class DefinitionIn(BaseModel):
    """A JSON flow definition (``docs/format.md``). Unknown fields are kept."""

    model_config = ConfigDict(extra="allow", title="Definition")
    id: str = Field(min_length=1, max_length=256, pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    description: str | None = None
    autoStartNextWorkflow: bool = False
    nextWorkflowId: str | None = None
    steps: list[StepIn] = Field(min_length=1)
    metadata: Any = None


class StoredDefinitionOut(DefinitionIn):
    """A stored definition: the document as uploaded, plus its version and upload time."""

    model_config = ConfigDict(extra="allow", title="StoredDefinition")
    version: int
    uploadedAt: datetime


class DefinitionSummary(_Response):
    id: str
    version: int
    name: str
    uploadedAt: datetime


class DefinitionPage(_Response):
    items: list[DefinitionSummary]
    page: int
    pageSize: int
    total: int


# -- instances -------------------------------------------------------------------------
InstanceStatus = Literal["ACTIVE", "WAITING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"]
StepStatus = Literal["RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SKIPPED"]


class StartInstanceIn(_Request):
    definitionId: Name
    definitionVersion: int | None = Field(default=None, ge=1, le=MAX_INT)
    variables: Variables | None = None
    businessKey: Text | None = None
    tags: dict[str, str] | None = None
    """An addition to the compatible body: the run's tags (docs/operating.md)."""


class BulkCancelIn(_Request):
    status: Literal["PENDING", "RUNNING", "WAITING"] | None = None
    workflow: Name | None = None
    tags: dict[str, str] | None = None
    businessKey: Text | None = None
    queue: Name | None = None
    createdAfter: datetime | None = None
    createdBefore: datetime | None = None
    dryRun: bool = False


class BulkCancelOut(_Response):
    count: int
    """How many runs were cancelled (with ``dryRun``: would be)."""
    dryRun: bool


class CancelIn(_Request):
    reason: Text | None = None


class RetryStepIn(_Request):
    variables: Variables | None = None
    """Refused when not empty: a retry cannot merge variables (fork the instance)."""


class CompleteUserTaskIn(_Request):
    variables: Variables | None = None
    result: Variables | None = None
    """An alias of ``variables``; when both are given they are merged, ``variables`` last."""
    completedBy: Text | None = None


class InstanceOut(_Response):
    id: str
    definitionId: str
    definitionVersion: int
    status: InstanceStatus
    currentStepIds: list[str]
    variables: Variables
    startedAt: datetime
    completedAt: datetime | None = None
    failureReason: str | None = None
    businessKey: str | None = None


class InstancePage(_Response):
    items: list[InstanceOut]
    total: int


class StepExecutionOut(_Response):
    id: str
    instanceId: str
    stepId: str
    stepType: str
    attemptNumber: int
    status: StepStatus
    startedAt: datetime
    endedAt: datetime | None = None
    failureReason: str | None = None


class HistoryOut(_Response):
    items: list[StepExecutionOut]


# -- jobs ------------------------------------------------------------------------------
class PollIn(_Request):
    workerId: Name
    jobTypes: list[Name] = Field(min_length=1, max_length=100)
    maxJobs: int = 1
    """0 or less means 10; a poll hands out at most 100 whatever it asks (Rochallor's SDKs
    send their concurrency here)."""
    leaseSeconds: int = Field(default=60, ge=5, le=3600)


class CompleteJobIn(_Request):
    workerId: Name
    variables: Variables | None = None


class FailJobIn(_Request):
    workerId: Name
    retryable: bool = False
    errorMessage: Text = ""


class JobOut(_Response):
    id: str
    jobType: str
    instanceId: str
    stepId: str
    stepExecutionId: str
    retriesRemaining: int
    variables: Variables
    lockExpiresAt: datetime


class JobsOut(_Response):
    jobs: list[JobOut]


class HealthOut(_Response):
    status: Literal["ok", "unavailable"]


MAX_AGE = 100 * 366 * 86400.0
"""The largest age a prune takes, in seconds (a century)."""


class PruneIn(_Request):
    olderThanSeconds: Annotated[float, Field(ge=0, le=MAX_AGE, allow_inf_nan=False)]
    """Delete runs that finished longer ago than this."""
    status: list[Literal["COMPLETED", "FAILED", "CANCELLED"]] | None = None
    dryRun: bool = False


class PruneOut(_Response):
    count: int
    """How many runs were deleted (with ``dryRun``: would be)."""
    dryRun: bool
