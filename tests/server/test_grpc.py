"""The gRPC API (Rochallor's ``workflow.v1.WorkflowEngine``) of a real ``durable serve
--grpc-port`` process, called with a client generated from the same proto: a flow driven to
COMPLETED through poll/fail/complete, a user task and a signal wait, and each status code."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from rest_helpers import engine_process, free_port

from durable.server._proto import engine_pb2 as pb
from durable.server._proto import engine_pb2_grpc as pb_grpc

STEP = pb.StepType


def _flow() -> pb.WorkflowDefinition:
    return pb.WorkflowDefinition(
        id="GRPC::order",
        name="Order over gRPC",
        steps=[
            pb.WorkflowStep(
                id="charge",
                name="Charge",
                type=STEP.STEP_TYPE_SERVICE_TASK,
                job_type="grpc-charge",
                retry_count=1,
                next_step="review",
            ),
            pb.WorkflowStep(
                id="review", name="Review", type=STEP.STEP_TYPE_USER_TASK, next_step="gate"
            ),
            pb.WorkflowStep(id="gate", name="Gate", type=STEP.STEP_TYPE_WAIT, next_step="done"),
            pb.WorkflowStep(id="done", name="Done", type=STEP.STEP_TYPE_END),
        ],
    )


def _struct(**values: Any) -> Any:
    return json_format.ParseDict(values, pb.google_dot_protobuf_dot_struct__pb2.Struct())


@pytest.fixture
def engine(dsn: str, tmp_path: Path) -> Iterator[tuple[pb_grpc.WorkflowEngineStub, str]]:
    port = free_port()
    with (
        engine_process(dsn, tmp_path, "--grpc-port", str(port)) as base,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield pb_grpc.WorkflowEngineStub(channel), base


def _until(
    stub: pb_grpc.WorkflowEngineStub, iid: str, ready: Callable[[pb.WorkflowInstance], bool]
) -> pb.WorkflowInstance:
    deadline = time.monotonic() + 30
    while not ready(found := stub.GetInstance(pb.GetInstanceRequest(id=iid)).instance):
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


def _at(instance: pb.WorkflowInstance, step: str, status: int) -> bool:
    return list(instance.current_step_ids) == [step] and instance.status == status


def _poll(stub: pb_grpc.WorkflowEngineStub, worker: str) -> pb.Job:
    deadline = time.monotonic() + 30
    while True:
        request = pb.PollJobsRequest(worker_id=worker, job_types=["grpc-charge"])
        jobs = stub.PollJobs(request).jobs
        if jobs:
            [job] = jobs  # max_jobs 0 means 1 over gRPC, as in Rochallor
            return job
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _code(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def test_a_flow_runs_to_completed_over_grpc(engine: tuple[pb_grpc.WorkflowEngineStub, str]):
    stub, base = engine
    uploaded = stub.UploadDefinition(pb.UploadDefinitionRequest(definition=_flow()))
    assert (uploaded.id, uploaded.version) == ("GRPC::order", 1)
    got = stub.GetDefinition(pb.GetDefinitionRequest(id="GRPC::order")).definition
    assert got.version == 1 and [s.id for s in got.steps] == ["charge", "review", "gate", "done"]
    assert got.steps[0].type == STEP.STEP_TYPE_SERVICE_TASK and got.steps[0].retry_count == 1
    listed = stub.ListDefinitions(pb.ListDefinitionsRequest(keyword="order"))
    assert listed.total == 1 and listed.definitions[0].name == "Order over gRPC"

    started = stub.StartInstance(
        pb.StartInstanceRequest(definition_id="GRPC::order", variables=_struct(n=1))
    ).instance
    assert started.definition_version == 1
    assert started.status == pb.INSTANCE_STATUS_ACTIVE
    iid = started.id

    job = _poll(stub, "grpc-worker")
    assert job.instance_id == iid and job.step_id == "charge" and job.retries_remaining == 1
    stub.FailJob(
        pb.FailJobRequest(
            job_id=job.id, worker_id="grpc-worker", retryable=True, error_message="flaky"
        )
    )
    again = _poll(stub, "grpc-worker")
    assert again.id == job.id and again.retries_remaining == 0
    stub.CompleteJob(
        pb.CompleteJobRequest(
            job_id=job.id, worker_id="grpc-worker", variables_to_set=_struct(charged=True)
        )
    )
    # WAITING once the run has suspended at the task (what Rochallor's clients wait for)
    _until(stub, iid, lambda i: _at(i, "review", pb.INSTANCE_STATUS_WAITING))
    stub.CompleteUserTask(
        pb.CompleteUserTaskRequest(
            instance_id=iid, user_task_step_id="review", result=_struct(ok="yes")
        )
    )
    _until(stub, iid, lambda i: _at(i, "gate", pb.INSTANCE_STATUS_WAITING))
    stub.SignalWait(pb.SignalWaitRequest(instance_id=iid, wait_step_id="gate"))
    done = _until(stub, iid, lambda i: i.status == pb.INSTANCE_STATUS_COMPLETED)
    assert json_format.MessageToDict(done.variables) == {"n": 1, "charged": True, "ok": "yes"}
    assert done.completed_at.seconds > 0
    # the numbers are stored as they were sent (protobuf carries every number as a double)
    assert httpx.get(f"{base}/v1/instances/{iid}").json()["variables"]["n"] == 1
    assert isinstance(httpx.get(f"{base}/v1/instances/{iid}").json()["variables"]["n"], int)

    history = stub.GetInstanceHistory(pb.GetInstanceHistoryRequest(id=iid)).executions
    assert [(e.step_id, e.status) for e in history] == [
        ("charge", pb.STEP_EXECUTION_STATUS_COMPLETED),
        ("review", pb.STEP_EXECUTION_STATUS_COMPLETED),
        ("gate", pb.STEP_EXECUTION_STATUS_COMPLETED),
        ("done", pb.STEP_EXECUTION_STATUS_COMPLETED),
    ]
    assert history[0].step_type == STEP.STEP_TYPE_SERVICE_TASK and history[0].attempt_number == 2
    completed = stub.ListInstances(
        pb.ListInstancesRequest(definition_id="GRPC::order", status=pb.INSTANCE_STATUS_COMPLETED)
    )
    assert completed.total == 1 and completed.instances[0].id == iid

    # cancel another one: CANCELLED; cancelling it again is a state conflict
    other = stub.StartInstance(pb.StartInstanceRequest(definition_id="GRPC::order")).instance
    cancelled = stub.CancelInstance(pb.CancelInstanceRequest(id=other.id, reason="test"))
    assert cancelled.instance.status == pb.INSTANCE_STATUS_CANCELLED
    _until(stub, other.id, lambda i: i.status == pb.INSTANCE_STATUS_CANCELLED)
    code, _ = _code(lambda: stub.CancelInstance(pb.CancelInstanceRequest(id=other.id)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION


def test_grpc_errors_have_rochallors_status_codes(engine: tuple[pb_grpc.WorkflowEngineStub, str]):
    stub, _ = engine
    stub.UploadDefinition(pb.UploadDefinitionRequest(definition=_flow()))
    not_found = [
        lambda: stub.GetInstance(pb.GetInstanceRequest(id="nope")),
        lambda: stub.GetDefinition(pb.GetDefinitionRequest(id="nope")),
        lambda: stub.GetDefinition(pb.GetDefinitionRequest(id="GRPC::order", version=9)),
        lambda: stub.StartInstance(pb.StartInstanceRequest(definition_id="nope")),
        lambda: stub.CompleteJob(pb.CompleteJobRequest(job_id="nope", worker_id="w")),
        lambda: stub.SignalWait(pb.SignalWaitRequest(instance_id="nope", wait_step_id="gate")),
    ]
    for call in not_found:
        assert _code(call)[0] == grpc.StatusCode.NOT_FOUND

    broken = _flow()
    broken.steps[0].next_step = "nowhere"
    code, details = _code(
        lambda: stub.UploadDefinition(pb.UploadDefinitionRequest(definition=broken))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "steps[0].nextStep" in details
    invalid = [
        lambda: stub.UploadDefinition(pb.UploadDefinitionRequest()),
        lambda: stub.PollJobs(pb.PollJobsRequest(job_types=["grpc-charge"])),
        lambda: stub.PollJobs(pb.PollJobsRequest(worker_id="w")),
        lambda: stub.PollJobs(pb.PollJobsRequest(worker_id="w", job_types=["x"], lease_seconds=1)),
        lambda: stub.StartInstance(pb.StartInstanceRequest()),
        lambda: stub.CompleteUserTask(pb.CompleteUserTaskRequest(instance_id="x")),
        lambda: stub.ListInstances(pb.ListInstancesRequest(page_size=500)),
    ]
    for call in invalid:
        assert _code(call)[0] == grpc.StatusCode.INVALID_ARGUMENT

    iid = stub.StartInstance(pb.StartInstanceRequest(definition_id="GRPC::order")).instance.id
    job = _poll(stub, "w1")
    code, details = _code(
        lambda: stub.CompleteJob(pb.CompleteJobRequest(job_id=job.id, worker_id="w2"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and job.id in details
    code, _ = _code(
        lambda: stub.SignalWait(pb.SignalWaitRequest(instance_id=iid, wait_step_id="gate"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION  # not waiting there yet
    code, details = _code(
        lambda: stub.RetryStep(pb.RetryStepRequest(instance_id=iid, step_id="charge"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not FAILED" in details


def test_retry_step_runs_the_failed_step_again(engine: tuple[pb_grpc.WorkflowEngineStub, str]):
    stub, _ = engine
    flow = _flow()
    flow.steps[0].retry_count = 0
    stub.UploadDefinition(pb.UploadDefinitionRequest(definition=flow))
    iid = stub.StartInstance(pb.StartInstanceRequest(definition_id="GRPC::order")).instance.id
    job = _poll(stub, "w1")
    stub.FailJob(pb.FailJobRequest(job_id=job.id, worker_id="w1", error_message="no card"))
    failed = _until(stub, iid, lambda i: i.status == pb.INSTANCE_STATUS_FAILED)
    assert "no card" in failed.failure_reason

    def retry(step_id: str, **variables: Any) -> Any:
        request = pb.RetryStepRequest(instance_id=iid, step_id=step_id)
        if variables:
            request.variables.CopyFrom(_struct(**variables))
        return stub.RetryStep(request)

    code, details = _code(lambda: retry("review"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "'charge'" in details
    assert _code(lambda: retry("charge", fixed=True))[0] == grpc.StatusCode.INVALID_ARGUMENT
    nowhere = pb.RetryStepRequest(instance_id="nope", step_id="charge")
    assert _code(lambda: stub.RetryStep(nowhere))[0] == grpc.StatusCode.NOT_FOUND
    assert retry("charge").instance.status != pb.INSTANCE_STATUS_FAILED
    again = _poll(stub, "w2")
    assert again.step_id == "charge" and again.instance_id == iid
    stub.CompleteJob(pb.CompleteJobRequest(job_id=again.id, worker_id="w2"))
    _until(stub, iid, lambda i: list(i.current_step_ids) == ["review"])


@pytest.mark.parametrize("dsn", ["sqlite"], indirect=True)
def test_grpc_needs_the_token_when_the_server_has_one(dsn: str, tmp_path: Path):
    port = free_port()
    options = ("--grpc-port", str(port), "--token", "t0k3n")
    with (
        engine_process(dsn, tmp_path, *options),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        stub = pb_grpc.WorkflowEngineStub(channel)
        request = pb.ListDefinitionsRequest()
        assert _code(lambda: stub.ListDefinitions(request))[0] == grpc.StatusCode.UNAUTHENTICATED
        wrong = (("authorization", "Bearer nope"),)
        code, _ = _code(lambda: stub.ListDefinitions(request, metadata=wrong))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        right = (("authorization", "Bearer t0k3n"),)
        assert stub.ListDefinitions(request, metadata=right).total == 0


def test_definitions_keep_their_meaning_through_the_proto():
    from durable.server._grpc_convert import definition_in, definition_out

    document = {
        "id": "GRPC::shapes",
        "name": "Shapes",
        "description": "every step type the proto carries",
        "steps": [
            {"id": "set", "name": "Set", "type": "TRANSFORMATION",
             "transformations": {"n": 1, "label": "x", "deep": {"a": [1, 2]}},
             "nextStep": "split"},
            {"id": "split", "name": "Split", "type": "PARALLEL_GATEWAY",
             "parallelNextSteps": ["remote", "wait"], "joinStep": "join"},
            {"id": "remote", "name": "Remote", "type": "SERVICE_TASK", "jobType": "j",
             "retryCount": 2, "nextStep": "join",
             "boundaryEvents": [{"type": "TIMER", "duration": "PT1M", "targetStepId": "join"}]},
            {"id": "wait", "name": "Wait", "type": "WAIT", "nextStep": "join",
             "boundaryEvents": [{"type": "TIMER", "duration": "PT2M", "interrupting": False,
                                 "targetStepId": "join"}]},
            {"id": "join", "name": "Join", "type": "JOIN_GATEWAY", "nextStep": "pick"},
            {"id": "pick", "name": "Pick", "type": "DECISION",
             "conditionalNextSteps": {"n > 0": "done", "true": "done"}},
            {"id": "done", "name": "Done", "type": "END"},
        ],
    }  # fmt: skip
    message = definition_out(document, 3)
    assert message.version == 3
    back = definition_in(pb.WorkflowDefinition.FromString(message.SerializeToString()))
    remote_events = back["steps"][2]["boundaryEvents"]
    assert remote_events == [
        {"type": "TIMER", "duration": "PT1M", "interrupting": True, "targetStepId": "join"}
    ]
    document["steps"][2]["boundaryEvents"][0]["interrupting"] = True  # the default, spelled out
    assert back == document
