"""The built-in workflow that runs every JSON flow, and the cache of compiled graphs."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from .._current import current_host
from ..errors import DefinitionNotFoundError
from ..registry import Registry, Workflow
from ..runtime import Context
from ..store import RunRecord, Store
from ._graph import FlowGraph
from ._handlers import store_activities
from ._interpreter import FlowPlan, FlowRun
from ._validate import compile_definition

FLOW_WORKFLOW = "durable.flow"
_CACHE_SIZE = 256


class FlowRunner:
    """Runs flow runs for one worker: one workflow object, graphs compiled once per version."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._graphs: OrderedDict[tuple[str, int], FlowGraph] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Task[FlowGraph]] = {}

        async def run_flow(
            ctx: Context, variables: dict[str, Any], fork: dict[str, Any] | None = None
        ) -> dict[str, Any]:
            return await FlowRun(current_host(), registry, variables, fork).run()

        self.workflow: Workflow[Any, dict[str, Any]] = Workflow(run_flow, FLOW_WORKFLOW, None)
        self.workflow.prepare = self.plan

    async def plan(self, store: Store, run: RunRecord) -> FlowPlan:
        """What a run of a flow needs before replay (the ``prepare`` hook of its workflow)."""
        graph = await self.graph_of(store, run)
        return FlowPlan(graph, store_activities(store), run.business_key, run.queue, run.priority)

    async def graph_of(self, store: Store, run: RunRecord) -> FlowGraph:
        """The compiled graph a run is pinned to (definitions never change once stored)."""
        assert run.flow_version is not None
        key = (run.workflow, run.flow_version)
        graph = self._graphs.get(key)
        if graph is not None:
            self._graphs.move_to_end(key)
            return graph
        # Many runs of a new version are often claimed at once: load and compile it once.
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(_load(store, run, key))
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        graph = await asyncio.shield(loading)
        self._graphs[key] = graph
        if len(self._graphs) > _CACHE_SIZE:
            self._graphs.popitem(last=False)
        return graph


async def _load(store: Store, run: RunRecord, key: tuple[str, int]) -> FlowGraph:
    record = await store.get_definition(*key)
    if record is None:
        raise DefinitionNotFoundError(
            f"run {run.id!r} needs version {key[1]} of definition {key[0]!r}, which is not stored"
        )
    return replace(compile_definition(json.loads(record.document)), version=record.version)
