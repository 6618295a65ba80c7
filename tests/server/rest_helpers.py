"""Plain helpers for the server tests: definitions to upload."""

from __future__ import annotations

from typing import Any


def step(step_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "type": kind, **fields}


def definition(definition_id: str = "TEST::flow", *steps: dict[str, Any]) -> dict[str, Any]:
    body = steps or (step("remote", "SERVICE_TASK", jobType="rest-test", nextStep="done"),)
    return {"id": definition_id, "name": "Test flow", "steps": [*body, step("done", "END")]}
