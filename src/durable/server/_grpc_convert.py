"""Between the gRPC messages of ``workflow.v1`` (``_proto/engine.proto``) and the JSON
shapes the REST API and the store use (``docs/grpc.md``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from ._models import InstanceOut, JobOut, StepExecutionOut
from ._proto import engine_pb2 as pb

_STEP_TYPE = "STEP_TYPE_"
_TIMER = "BOUNDARY_EVENT_TYPE_"


def plain(value: Any) -> Any:
    """A Struct's JSON with whole numbers as ints: protobuf carries every number as a
    double, and ``{"n": 1}`` must not come back as ``{"n": 1.0}``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def struct_in(message: Any, field: str) -> dict[str, Any] | None:
    """The map in Struct field ``field`` of ``message``, or None when it is not set."""
    if not message.HasField(field):
        return None
    return plain(json_format.MessageToDict(getattr(message, field)))  # type: ignore[no-any-return]


def struct_out(value: dict[str, Any]) -> Struct:
    struct = Struct()
    struct.update(value)
    return struct


def stamp(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    out = Timestamp()
    out.FromDatetime(when)
    return out


def _enum(message: type[Any], prefix: str, name: Any) -> int:
    """The enum number of ``prefix + name``; 0 (UNSPECIFIED) for a name the proto lacks,
    as Rochallor's engine answers it."""
    try:
        return int(message.Value(f"{prefix}{name}"))
    except ValueError:
        return 0


# -- definitions ------------------------------------------------------------------------
def definition_in(message: pb.WorkflowDefinition) -> dict[str, Any]:
    """A definition message as the JSON step format (``docs/format.md``)."""
    document: dict[str, Any] = plain(json_format.MessageToDict(message))
    document.pop("version", None)
    for proto_step, step in zip(message.steps, document.get("steps", []), strict=True):
        if isinstance(step.get("type"), str):
            step["type"] = step["type"].removeprefix(_STEP_TYPE)
        events = step.get("boundaryEvents", [])
        for proto_event, event in zip(proto_step.boundary_events, events, strict=True):
            if isinstance(event.get("type"), str):
                event["type"] = event["type"].removeprefix(_TIMER)
            event["interrupting"] = proto_event.interrupting  # proto3 has no "unset" here
    return document


def definition_out(document: dict[str, Any], version: int) -> pb.WorkflowDefinition:
    """A stored definition as a message: the fields the proto has; others are left out
    (upload and read over REST to keep every field)."""
    fields = {k: document[k] for k in _DEFINITION_FIELDS if k in document}
    for name in ("metadata", "inputSchema"):  # a Struct holds an object only
        if not isinstance(fields.get(name, {}), dict):
            fields.pop(name)
    steps = []
    for step in document.get("steps", []):
        out = {k: step[k] for k in _STEP_FIELDS if k in step}
        out["type"] = f"{_STEP_TYPE}{step.get('type')}"
        if out["type"] not in pb.StepType.keys():  # noqa: SIM118 - an enum wrapper, not a dict
            out["type"] = "STEP_TYPE_UNSPECIFIED"
        for name in ("outputsSchema", "conditionalNextSteps", "transformations"):
            if not isinstance(out.get(name, {}), dict):
                out.pop(name)
        out["boundaryEvents"] = [
            {
                "type": f"{_TIMER}{event.get('type', 'TIMER')}",
                "duration": event.get("duration", ""),
                "interrupting": event.get("interrupting", True),
                "targetStepId": event.get("targetStepId", ""),
            }
            for event in step.get("boundaryEvents", [])
        ]
        steps.append(out)
    message = pb.WorkflowDefinition()
    json_format.ParseDict({**fields, "steps": steps}, message, ignore_unknown_fields=True)
    message.version = version
    return message


_DEFINITION_FIELDS = (
    "id",
    "name",
    "description",
    "autoStartNextWorkflow",
    "nextWorkflowId",
    "metadata",
    "inputSchema",
)
_STEP_FIELDS = (
    "id",
    "name",
    "description",
    "nextStep",
    "parallelNextSteps",
    "joinStep",
    "conditionalNextSteps",
    "transformations",
    "jobType",
    "delegateClass",
    "retryCount",
    "hitPolicy",
    "outputsSchema",
)


# -- instances and jobs -----------------------------------------------------------------
def instance_message(out: InstanceOut) -> pb.WorkflowInstance:
    return pb.WorkflowInstance(
        id=out.id,
        definition_id=out.definitionId,
        definition_version=out.definitionVersion,
        status=_enum(pb.InstanceStatus, "INSTANCE_STATUS_", out.status),  # type: ignore[arg-type]
        current_step_ids=out.currentStepIds,
        variables=struct_out(out.variables),
        started_at=stamp(out.startedAt),
        completed_at=stamp(out.completedAt),
        failure_reason=out.failureReason or "",
        business_key=out.businessKey or "",
    )


def step_message(out: StepExecutionOut) -> pb.StepExecution:
    return pb.StepExecution(
        id=out.id,
        instance_id=out.instanceId,
        step_id=out.stepId,
        step_type=_enum(pb.StepType, _STEP_TYPE, out.stepType),  # type: ignore[arg-type]
        attempt_number=out.attemptNumber,
        status=_enum(pb.StepExecutionStatus, "STEP_EXECUTION_STATUS_", out.status),  # type: ignore[arg-type]
        started_at=stamp(out.startedAt),
        ended_at=stamp(out.endedAt),
        failure_reason=out.failureReason or "",
    )


def job_message(out: JobOut) -> pb.Job:
    return pb.Job(
        id=out.id,
        job_type=out.jobType,
        instance_id=out.instanceId,
        step_id=out.stepId,
        step_execution_id=out.stepExecutionId,
        retries_remaining=out.retriesRemaining,
        variables=struct_out(out.variables),
        lock_expires_at=stamp(out.lockExpiresAt),
    )
