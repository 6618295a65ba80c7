"""Property tests from the server's own OpenAPI document (schemathesis): for generated
valid and invalid requests to every operation, no 5xx, and every answer — status code,
content type and body — is the one the document declares. SQLite, a server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_helpers import server_process
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    with server_process(f"sqlite:///{folder / 'durable.db'}", folder) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        schema.config.generation.update(allow_x00=True)
        yield schema


# schemathesis.pytest.from_fixture does not run on pytest 9, so each operation's
# strategy is driven here with hypothesis directly.
def _operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_answers_match_the_document(
    api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    operations = _operations(api_schema)
    assert len(operations) >= 16
    unsatisfiable: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # negative mode: an operation without inputs has no invalid request to make
            assert mode is GenerationMode.NEGATIVE, operation.label
            unsatisfiable.append(operation.label)
    # ... or only a free-form string in its path, which cannot be invalid either
    assert set(unsatisfiable) <= {
        "GET /healthz",
        "GET /metrics",
        "GET /v1/definitions/{definition_id}",
        "GET /v1/instances/{instance_id}",
        "GET /v1/instances/{instance_id}/history",
        "GET /v1/runs/{run_id}",
        "POST /v1/runs/{run_id}/resume",
        "POST /v1/runs/{run_id}/retry",
        "GET /v1/workers",
    }, unsatisfiable
