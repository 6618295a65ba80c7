"""/metrics over several scrapes: step durations counted once, from the server's start;
one read of the store serving scrapes for ``metrics_max_age`` seconds."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import httpx
import pytest
from rest_helpers import definition, step

import durable
from durable.server import create_app

pytestmark = pytest.mark.anyio

GATE: dict[str, asyncio.Event] = {}


@durable.activity(name="metrics-quick")
async def quick(task: dict[str, Any]) -> dict[str, Any]:
    return {}


@durable.activity(name="metrics-gated")
async def gated(task: dict[str, Any]) -> dict[str, Any]:
    GATE["entered"].set()
    await GATE["open"].wait()
    return {}


CHAIN = definition(
    "METRICS::chain",
    step("first", "SERVICE_TASK", jobType="metrics-quick", nextStep="second"),
    step("second", "SERVICE_TASK", jobType="metrics-gated", nextStep="pause"),
    step("pause", "WAIT", nextStep="done"),
)
"""Two in-process tasks, then a signal wait (a step with a start and an end record)."""


def _client(app: durable.App, max_age: float = 0) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(app, metrics_max_age=max_age))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def _steps(text: str, workflow: str = "METRICS::chain") -> dict[str, float]:
    """``durable_step_duration_seconds_count`` by step type, for one workflow."""
    counts = {}
    for line in text.splitlines():
        if line.startswith("durable_step_duration_seconds_count{") and workflow in line:
            labels, value = line.split("} ")
            step_type = labels.split('step_type="')[1].split('"')[0]
            counts[step_type] = float(value)
    return counts


async def _finish(app: durable.App, count: int) -> None:
    """Start ``count`` runs of CHAIN, let their tasks through and signal their waits."""
    handles = [await app.start_flow("METRICS::chain") for _ in range(count)]
    GATE["open"].set()
    with anyio.fail_after(20):
        for handle in handles:
            while "pause" not in (await handle.describe()).current_steps:
                await anyio.sleep(0.02)
            await handle.signal("pause", {})
            while not (await handle.describe()).status.is_terminal:
                await anyio.sleep(0.02)


async def test_steps_are_counted_once_across_scrapes(app: durable.App):
    GATE.update(open=asyncio.Event(), entered=asyncio.Event())
    await app.definitions.upload(CHAIN)
    async with app.worker(poll_interval=0.05), _client(app) as client:
        assert _steps((await client.get("/metrics")).text) == {}

        # a scrape while the second task runs: the first task's end is committed with
        # the second's result, after this scrape, and must still be counted once
        handle = await app.start_flow("METRICS::chain")
        with anyio.fail_after(20):
            await GATE["entered"].wait()
        await client.get("/metrics")
        GATE["open"].set()
        with anyio.fail_after(20):
            while "pause" not in (await handle.describe()).current_steps:
                await anyio.sleep(0.02)
            await handle.signal("pause", {})
            while not (await handle.describe()).status.is_terminal:
                await anyio.sleep(0.02)
        one = {"SERVICE_TASK": 2.0, "WAIT": 1.0, "END": 1.0}
        assert _steps((await client.get("/metrics")).text) == one
        assert _steps((await client.get("/metrics")).text) == one  # nothing new: no change

        await _finish(app, 3)
        text = (await client.get("/metrics")).text
        assert _steps(text) == {"SERVICE_TASK": 8.0, "WAIT": 4.0, "END": 4.0}
        wait = 'step_type="WAIT",workflow="METRICS::chain"'
        assert f'durable_step_duration_seconds_bucket{{le="+Inf",{wait}}} 4.0' in text
        assert f'durable_step_duration_seconds_bucket{{le="604800.0",{wait}}} 4.0' in text


async def test_steps_count_from_the_server_start(app: durable.App):
    GATE.update(open=asyncio.Event(), entered=asyncio.Event())
    await app.definitions.upload(CHAIN)
    async with app.worker(poll_interval=0.05):
        await _finish(app, 2)  # before the server: not counted
        async with _client(app) as client:
            assert _steps((await client.get("/metrics")).text) == {}
            await _finish(app, 1)
            answer = (await client.get("/metrics")).text
            assert _steps(answer) == {"SERVICE_TASK": 2.0, "WAIT": 1.0, "END": 1.0}
            started = 'durable_runs_started_total{workflow="METRICS::chain"} 3.0'
            assert started in answer  # run counts are the database's: every run


async def test_one_read_serves_scrapes_for_max_age(app: durable.App):
    await app.definitions.upload(definition())
    async with _client(app, max_age=3600) as cached, _client(app) as fresh:
        before = (await cached.get("/metrics")).text
        await app.start_flow("TEST::flow")
        answers = await asyncio.gather(*(cached.get("/metrics") for _ in range(5)))
        assert {a.text for a in answers} == {before}
        assert (
            'durable_runs_started_total{workflow="TEST::flow"} 1.0'
            in (await fresh.get("/metrics")).text
        )
