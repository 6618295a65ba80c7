"""The public names are a contract: a refactor must not drop one silently."""

import durable

EXPECTED = {
    "BlockedOn",
    "ChildHandle",
    "Queue",
    "WorkflowTimeout",
    "heartbeat",
    "InvalidScheduleError",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "Schedules",
    "DefinitionNotFoundError",
    "DeterminismWarning",
    "ExpressionError",
    "FlowError",
    "JobConflictError",
    "JobNotFoundError",
    "Problem",
    "StepNotWaitingError",
    "ValidationError",
    "StepExecution",
    "Activity",
    "ActivityError",
    "ActivityInfo",
    "App",
    "Cancelled",
    "ConfigurationError",
    "ConflictError",
    "InvalidInputError",
    "NotFoundError",
    "Context",
    "DurableError",
    "Handle",
    "HistoryEvent",
    "LeaseLostError",
    "NonDeterminismError",
    "NonRetryableError",
    "NotRegisteredError",
    "RetryPolicy",
    "RunClosedError",
    "RunStateError",
    "RunConflictError",
    "RunDescription",
    "RunFilter",
    "RunInfo",
    "RunNotFoundError",
    "RunPage",
    "SerializationError",
    "Status",
    "StoreError",
    "WaitTimeout",
    "Worker",
    "WorkerMetrics",
    "WorkflowFailed",
    "activity",
    "activity_info",
    "workflow",
}


def test_exports_are_pinned() -> None:
    assert set(durable.__all__) == EXPECTED
    assert sorted(durable.__all__) == durable.__all__
    for name in EXPECTED:
        assert getattr(durable, name) is not None


def test_error_tree() -> None:
    for name in EXPECTED:
        obj = getattr(durable, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, BaseException)
            and obj is not durable.Cancelled
        ):
            assert issubclass(obj, durable.DurableError), name
    assert not issubclass(durable.Cancelled, Exception)
    assert issubclass(durable.WaitTimeout, TimeoutError)


def test_status_values() -> None:
    assert [s.value for s in durable.Status] == [
        "PENDING",
        "RUNNING",
        "WAITING",
        "PAUSED",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
    ]
