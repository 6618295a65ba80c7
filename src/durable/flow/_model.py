"""Pydantic models of the JSON step format (``docs/format.md``): the shape of each field.

The models check types and required fields, strictly (``"3"`` is not a number). Rules
that span fields or steps (references, reachability, expressions) live in
``_validate.py``. Unknown extra fields are kept and ignored, as the format requires.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

ID_PATTERN = r"^[A-Za-z0-9_:\-]+$"

STEP_TYPES = (
    "SERVICE_TASK",
    "USER_TASK",
    "DECISION",
    "DECISION_TABLE",
    "TRANSFORMATION",
    "WAIT",
    "PARALLEL_GATEWAY",
    "JOIN_GATEWAY",
    "END",
)
TIMER_HOSTS = ("SERVICE_TASK", "USER_TASK", "WAIT")


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class DefinitionModel(_Model):
    id: str = Field(min_length=1, max_length=256, pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    description: str | None = None
    autoStartNextWorkflow: bool = False
    nextWorkflowId: str | None = None
    steps: list[Any] = Field(min_length=1)
    metadata: Any = None


class TimerModel(_Model):
    type: str
    duration: str
    interrupting: bool = True
    targetStepId: str = Field(min_length=1)


class StepModel(_Model):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: str
    description: str | None = None
    boundaryEvents: list[TimerModel] = Field(default_factory=list)


class ServiceTaskModel(StepModel):
    jobType: str = Field(min_length=1)
    retryCount: int = Field(default=0, ge=0, le=1000)
    nextStep: str | None = None


class UserTaskModel(StepModel):
    nextStep: str | None = None
    jobType: str | None = None


class DecisionModel(StepModel):
    conditionalNextSteps: dict[str, str] = Field(min_length=1)


class DecisionTableModel(StepModel):
    # The grid itself (hitPolicy, inputs, outputs, rules) is checked cell by cell by
    # the decision-table compiler, which reports a path for every bad cell.
    nextStep: str | None = None


class TransformationModel(StepModel):
    transformations: dict[str, Any] = Field(min_length=1)
    nextStep: str


class WaitModel(StepModel):
    nextStep: str


class ParallelGatewayModel(StepModel):
    parallelNextSteps: list[str] = Field(min_length=2)
    joinStep: str


class JoinGatewayModel(StepModel):
    nextStep: str


class EndModel(StepModel):
    pass


STEP_MODELS: dict[str, type[StepModel]] = {
    "SERVICE_TASK": ServiceTaskModel,
    "USER_TASK": UserTaskModel,
    "DECISION": DecisionModel,
    "DECISION_TABLE": DecisionTableModel,
    "TRANSFORMATION": TransformationModel,
    "WAIT": WaitModel,
    "PARALLEL_GATEWAY": ParallelGatewayModel,
    "JOIN_GATEWAY": JoinGatewayModel,
    "END": EndModel,
}

_DURATION = TypeAdapter(timedelta)


def parse_duration(text: str) -> timedelta:
    """An ISO-8601 duration (``PT30S``, ``P1DT2H30M``, ``P7D``); ValueError when invalid.

    Years count 365 days and months 30, the usual reading for timers.
    """
    if not text.startswith("P"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration (such as PT30S or P1DT2H)")
    try:
        value = _DURATION.validate_python(text)
    except ValidationError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 duration (such as PT30S or P1DT2H)"
        ) from None
    return value
