"""durable: durable execution for Python.

Layout (where to find things):

- ``registry``  the ``@workflow`` / ``@activity`` decorators
- ``app``       ``App``: start runs, handles, workers;  ``handle``: one run's client view
- ``_services`` what ``App`` hands the objects it makes;  ``_start``: how a run is created
- ``schedules`` cron schedules, client side;  ``_cron``: cron arithmetic
- ``queues``    ``Queue``: named queues of runs and activities, their limits
- ``runtime/``  the deterministic executor: journal, replay, suspension, the ``Context``
- ``worker/``   the claim loop, leases, heartbeats, shutdown, queue slots, schedule loop
- ``flow/``     JSON step graphs: validation, expressions, the built-in flow workflow
- ``store/``    the Store protocol and its SQLite and Postgres backends (all SQL lives here)
- ``serde``     argument and result conversion;  ``errors``  the exception tree
- ``info``      the public record types;  ``_describe``: store records in that form
- ``testing``   ``TestEnv`` (a clock that skips idle time), mocks, replay checks
"""

from .app import App as App
from .errors import ActivityError as ActivityError
from .errors import Cancelled as Cancelled
from .errors import ConfigurationError as ConfigurationError
from .errors import ConflictError as ConflictError
from .errors import DefinitionNotFoundError as DefinitionNotFoundError
from .errors import DeterminismWarning as DeterminismWarning
from .errors import DurableError as DurableError
from .errors import ExpressionError as ExpressionError
from .errors import FlowError as FlowError
from .errors import InvalidInputError as InvalidInputError
from .errors import InvalidScheduleError as InvalidScheduleError
from .errors import JobConflictError as JobConflictError
from .errors import JobNotFoundError as JobNotFoundError
from .errors import LeaseLostError as LeaseLostError
from .errors import NonDeterminismError as NonDeterminismError
from .errors import NonRetryableError as NonRetryableError
from .errors import NotFoundError as NotFoundError
from .errors import NotRegisteredError as NotRegisteredError
from .errors import Problem as Problem
from .errors import RunClosedError as RunClosedError
from .errors import RunConflictError as RunConflictError
from .errors import RunNotFoundError as RunNotFoundError
from .errors import RunStateError as RunStateError
from .errors import ScheduleNotFoundError as ScheduleNotFoundError
from .errors import SerializationError as SerializationError
from .errors import StepNotWaitingError as StepNotWaitingError
from .errors import StoreError as StoreError
from .errors import ValidationError as ValidationError
from .errors import WaitTimeout as WaitTimeout
from .errors import WorkflowFailed as WorkflowFailed
from .errors import WorkflowTimeout as WorkflowTimeout
from .handle import Handle as Handle
from .info import BlockedOn as BlockedOn
from .info import HistoryEvent as HistoryEvent
from .info import RunDescription as RunDescription
from .info import RunFilter as RunFilter
from .info import RunInfo as RunInfo
from .info import RunPage as RunPage
from .info import Status as Status
from .info import StepExecution as StepExecution
from .policy import RetryPolicy as RetryPolicy
from .queues import Queue as Queue
from .registry import Activity as Activity
from .registry import Workflow as Workflow
from .registry import activity as activity
from .registry import workflow as workflow
from .runtime import ActivityInfo as ActivityInfo
from .runtime import ChildHandle as ChildHandle
from .runtime import Context as Context
from .runtime import activity_info as activity_info
from .runtime import heartbeat as heartbeat
from .schedules import ScheduleInfo as ScheduleInfo
from .schedules import Schedules as Schedules
from .worker import Worker as Worker
from .worker import WorkerMetrics as WorkerMetrics

__all__ = [
    "Activity",
    "ActivityError",
    "ActivityInfo",
    "App",
    "BlockedOn",
    "Cancelled",
    "ChildHandle",
    "ConfigurationError",
    "ConflictError",
    "Context",
    "DefinitionNotFoundError",
    "DeterminismWarning",
    "DurableError",
    "ExpressionError",
    "FlowError",
    "Handle",
    "HistoryEvent",
    "InvalidInputError",
    "InvalidScheduleError",
    "JobConflictError",
    "JobNotFoundError",
    "LeaseLostError",
    "NonDeterminismError",
    "NonRetryableError",
    "NotFoundError",
    "NotRegisteredError",
    "Problem",
    "Queue",
    "RetryPolicy",
    "RunClosedError",
    "RunConflictError",
    "RunDescription",
    "RunFilter",
    "RunInfo",
    "RunNotFoundError",
    "RunPage",
    "RunStateError",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "Schedules",
    "SerializationError",
    "Status",
    "StepExecution",
    "StepNotWaitingError",
    "StoreError",
    "ValidationError",
    "WaitTimeout",
    "Worker",
    "WorkerMetrics",
    "WorkflowFailed",
    "WorkflowTimeout",
    "activity",
    "activity_info",
    "heartbeat",
    "workflow",
]
