"""Every durable error has a deliberate REST status, read from its base class."""

from __future__ import annotations

import inspect

import pytest

import durable.errors
from durable.errors import DurableError
from durable.server._errors import error_status

EXPECTED = {
    # a request names something that does not exist
    "NotFoundError": 404,
    "NotRegisteredError": 404,
    "RunNotFoundError": 404,
    "DefinitionNotFoundError": 404,
    "JobNotFoundError": 404,
    "ScheduleNotFoundError": 404,
    # a request does not fit the current state
    "ConflictError": 409,
    "RunConflictError": 409,
    "RunClosedError": 409,
    "RunStateError": 409,
    "StepNotWaitingError": 409,
    "JobConflictError": 409,
    # a request's values are refused
    "InvalidInputError": 400,
    "SerializationError": 400,
    "ValidationError": 400,
    "InvalidScheduleError": 400,
    "StoreError": 503,
    # the outcome of a run, or a failure of the server: never the caller's input
    "DurableError": 500,
    "ConfigurationError": 500,
    "WorkflowFailed": 500,
    "ActivityError": 500,
    "NonRetryableError": 500,
    "NonDeterminismError": 500,
    "DeterminismWarning": 500,
    "WaitTimeout": 500,
    "WorkflowTimeout": 500,
    "LeaseLostError": 500,
    "ExpressionError": 500,
    "FlowError": 500,
}


def _durable_errors() -> dict[str, type[DurableError]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(durable.errors, inspect.isclass)
        if issubclass(cls, DurableError)
    }


def test_every_error_class_has_a_deliberate_status() -> None:
    # A new error must be placed in the tree (and listed here) on purpose.
    assert set(_durable_errors()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_status_by_base_class(name: str) -> None:
    status, code = error_status(_durable_errors()[name])
    assert status == EXPECTED[name]
    assert (
        code
        == {
            400: "VALIDATION_ERROR",
            404: "NOT_FOUND",
            409: "CONFLICT",
            503: "STORE_UNAVAILABLE",
            500: "INTERNAL_ERROR",
        }[status]
    )
