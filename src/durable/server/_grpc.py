"""Rochallor's ``workflow.v1.WorkflowEngine`` gRPC service (``docs/grpc.md``), served
beside the REST API by ``durable serve --grpc-port``. Every RPC calls what the REST route
calls (``_engine``, ``App.definitions``) and validates its input with the same models;
errors map by their REST status: 400 INVALID_ARGUMENT, 404 NOT_FOUND, 409
FAILED_PRECONDITION, 401 UNAUTHENTICATED, 503 UNAVAILABLE.

Needs the grpc extra: ``pip install 'durable[server,grpc]'``.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
import pydantic

from ..errors import DurableError
from . import _grpc_convert as convert
from ._definitions import check_name
from ._engine import Engine, jobs_to_hand_out
from ._errors import ApiError, error_status
from ._models import CompleteJobIn, FailJobIn, InstanceStatus, PollIn, StartInstanceIn
from ._proto import engine_pb2 as pb
from ._proto import engine_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("durable.server")

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    503: grpc.StatusCode.UNAVAILABLE,
}
"""The gRPC status answering each REST status (Rochallor's engine uses these)."""
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200

Reply = TypeVar("Reply")
Handler = Callable[[Any, Any, Any], Awaitable[Reply]]


def _problems(exc: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'request'}: {e.get('msg')}"
        for e in exc.errors()
    )


def rpc(method: Handler[Reply]) -> Handler[Reply]:
    """Check the token, run the RPC, and turn a refusal into its gRPC status."""

    @functools.wraps(method)
    async def call(self: WorkflowEngine, request: Any, context: Any) -> Reply:
        if not self.authorized(context):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "send the server's token as 'authorization: Bearer <token>' metadata",
            )
        try:
            return await method(self, request, context)
        except ApiError as exc:
            status, message = exc.status, exc.message
        except pydantic.ValidationError as exc:
            status, message = 400, f"the request is invalid: {_problems(exc)}"
        except DurableError as exc:
            status, message = error_status(type(exc))[0], str(exc)
            if status >= 500:
                log.error("gRPC %s failed", method.__name__, exc_info=exc)
        except Exception as exc:  # never a crashed server: INTERNAL, logged
            log.error("gRPC %s failed", method.__name__, exc_info=exc)
            status, message = 500, "the server failed; see its log"
        await context.abort(_CODES.get(status, grpc.StatusCode.INTERNAL), message)
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    return call


def _page(page: int, page_size: int) -> tuple[int, int]:
    size = page_size or DEFAULT_PAGE_SIZE
    if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(
            400, "VALIDATION_ERROR", f"page must be >= 0 and page_size 1..{MAX_PAGE_SIZE}"
        )
    return page, size


def _required(**fields: str) -> None:
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise ApiError(400, "VALIDATION_ERROR", f"{' and '.join(missing)} required")


class WorkflowEngine(pb_grpc.WorkflowEngineServicer):
    """The service over ``engine`` (instances, jobs) and ``app.definitions``."""

    def __init__(self, app: App, engine: Engine, token: str | None) -> None:
        self.app = app
        self.engine = engine
        self.token = f"Bearer {token}".encode() if token else None

    def authorized(self, context: Any) -> bool:
        if self.token is None:
            return True
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, value = str(given).partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            f"Bearer {value.strip()}".encode(), self.token
        )

    # -- definitions ----------------------------------------------------------------------
    @rpc
    async def UploadDefinition(self, request: Any, context: Any) -> pb.UploadDefinitionResponse:
        if not request.HasField("definition"):
            raise ApiError(400, "VALIDATION_ERROR", "definition required")
        document = convert.definition_in(request.definition)
        check_name(document)
        ref = await self.app.definitions.upload(document)
        return pb.UploadDefinitionResponse(
            id=ref.id, version=ref.version, uploaded_at=convert.stamp(ref.uploaded_at)
        )

    @rpc
    async def GetDefinition(self, request: Any, context: Any) -> pb.GetDefinitionResponse:
        _required(id=request.id)
        stored = await self.app.definitions.get(request.id, request.version or None)
        message = convert.definition_out(stored.document, stored.version)
        return pb.GetDefinitionResponse(definition=message)

    @rpc
    async def ListDefinitions(self, request: Any, context: Any) -> pb.ListDefinitionsResponse:
        page, size = _page(request.page, request.page_size)
        found, total = await self.app.definitions.list(
            keyword=request.keyword or None, offset=page * size, limit=size
        )
        items = [convert.definition_out(d.document, d.version) for d in found]
        return pb.ListDefinitionsResponse(definitions=items, total=total)

    # -- instances ------------------------------------------------------------------------
    @rpc
    async def StartInstance(self, request: Any, context: Any) -> pb.StartInstanceResponse:
        body = StartInstanceIn.model_validate(
            {
                "definitionId": request.definition_id,
                "definitionVersion": request.definition_version or None,
                "variables": convert.struct_in(request, "variables"),
                "businessKey": request.business_key or None,
            }
        )
        out = await self.engine.start_instance(
            body.definitionId,
            variables=body.variables,
            business_key=body.businessKey,
            version=body.definitionVersion,
        )
        return pb.StartInstanceResponse(instance=convert.instance_message(out))

    @rpc
    async def GetInstance(self, request: Any, context: Any) -> pb.GetInstanceResponse:
        _required(id=request.id)
        out = await self.engine.instance(request.id)
        return pb.GetInstanceResponse(instance=convert.instance_message(out))

    @rpc
    async def GetInstanceHistory(self, request: Any, context: Any) -> pb.GetInstanceHistoryResponse:
        _required(id=request.id)
        history = await self.engine.history(request.id)
        steps = [convert.step_message(step) for step in history.items]
        return pb.GetInstanceHistoryResponse(executions=steps)

    @rpc
    async def CancelInstance(self, request: Any, context: Any) -> pb.CancelInstanceResponse:
        _required(id=request.id)
        out = await self.engine.cancel(request.id, request.reason or None)
        return pb.CancelInstanceResponse(instance=convert.instance_message(out))

    @rpc
    async def ListInstances(self, request: Any, context: Any) -> pb.ListInstancesResponse:
        page, size = _page(request.page, request.page_size)
        status: InstanceStatus | None = None
        if request.status:
            name = pb.InstanceStatus.Name(request.status).removeprefix("INSTANCE_STATUS_")
            status = cast(InstanceStatus, name)
        found = await self.engine.list_instances(
            definition_id=request.definition_id or None,
            status=status,
            business_key=request.business_key or None,
            page=page,
            page_size=size,
        )
        items = [convert.instance_message(out) for out in found.items]
        return pb.ListInstancesResponse(instances=items, total=found.total)

    # -- jobs -----------------------------------------------------------------------------
    @rpc
    async def PollJobs(self, request: Any, context: Any) -> pb.PollJobsResponse:
        body = PollIn.model_validate(
            {
                "workerId": request.worker_id,
                "jobTypes": list(request.job_types),
                "maxJobs": request.max_jobs,
                "leaseSeconds": request.lease_seconds or 60,
            }
        )
        count = jobs_to_hand_out(body.maxJobs, default=1)  # 0 means 1 over gRPC, as there
        found = await self.engine.poll(body.workerId, body.jobTypes, count, body.leaseSeconds)
        return pb.PollJobsResponse(jobs=[convert.job_message(job) for job in found.jobs])

    @rpc
    async def CompleteJob(self, request: Any, context: Any) -> pb.CompleteJobResponse:
        _required(job_id=request.job_id)
        body = CompleteJobIn.model_validate(
            {
                "workerId": request.worker_id,
                "variables": convert.struct_in(request, "variables_to_set"),
            }
        )
        await self.engine.complete_job(request.job_id, body.workerId, body.variables)
        return pb.CompleteJobResponse()

    @rpc
    async def FailJob(self, request: Any, context: Any) -> pb.FailJobResponse:
        _required(job_id=request.job_id)
        body = FailJobIn.model_validate(
            {
                "workerId": request.worker_id,
                "retryable": request.retryable,
                "errorMessage": request.error_message,
            }
        )
        await self.engine.fail_job(request.job_id, body.workerId, body.errorMessage, body.retryable)
        return pb.FailJobResponse()

    # -- user tasks and signals -----------------------------------------------------------
    @rpc
    async def CompleteUserTask(self, request: Any, context: Any) -> pb.CompleteUserTaskResponse:
        _required(instance_id=request.instance_id, user_task_step_id=request.user_task_step_id)
        variables = convert.struct_in(request, "result")
        await self.engine.complete_user_task(
            request.instance_id, request.user_task_step_id, variables
        )
        return pb.CompleteUserTaskResponse()

    @rpc
    async def SignalWait(self, request: Any, context: Any) -> pb.SignalWaitResponse:
        _required(instance_id=request.instance_id, wait_step_id=request.wait_step_id)
        variables = convert.struct_in(request, "variables")
        await self.engine.signal_wait(request.instance_id, request.wait_step_id, variables)
        return pb.SignalWaitResponse()

    @rpc
    async def RetryStep(self, request: Any, context: Any) -> pb.RetryStepResponse:
        _required(instance_id=request.instance_id, step_id=request.step_id)
        variables = convert.struct_in(request, "variables")
        out = await self.engine.retry_step(request.instance_id, request.step_id, variables)
        return pb.RetryStepResponse(instance=convert.instance_message(out))


async def start_grpc(
    app: App, engine: Engine, *, host: str, port: int, token: str | None
) -> grpc.aio.Server:
    """Serve the service on ``host:port`` on the running event loop; the caller stops it."""
    server = grpc.aio.server()
    service = WorkflowEngine(app, engine, token)
    pb_grpc.add_WorkflowEngineServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the gRPC port {host}:{port}")
    await server.start()
    log.info("gRPC WorkflowEngine on %s:%d", host, bound)
    return server
