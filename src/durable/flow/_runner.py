"""The built-in workflow that runs every JSON flow, and the cache of compiled graphs."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from ..errors import DefinitionNotFoundError
from ..registry import Registry, Workflow
from ..runtime import Context
from ..store.base import RunRecord, Store
from ._graph import FlowGraph
from ._interpreter import FlowRun
from ._validate import compile_definition

FLOW_WORKFLOW = "durable.flow"
_CACHE_SIZE = 256


class FlowRunner:
    """Runs flow runs for one worker: one workflow object, graphs compiled once per version."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._graphs: OrderedDict[tuple[str, int], FlowGraph] = OrderedDict()

        async def run_flow(ctx: Context, variables: dict[str, Any]) -> dict[str, Any]:
            graph: FlowGraph = ctx._executor.prepared
            return await FlowRun(ctx, graph, registry, variables).run()

        self.workflow: Workflow[Any, dict[str, Any]] = Workflow(run_flow, FLOW_WORKFLOW, None)
        self.workflow.prepare = self.graph_of

    async def graph_of(self, store: Store, run: RunRecord) -> FlowGraph:
        """The compiled graph a run is pinned to (definitions never change once stored)."""
        assert run.flow_version is not None
        key = (run.workflow, run.flow_version)
        graph = self._graphs.get(key)
        if graph is not None:
            self._graphs.move_to_end(key)
            return graph
        record = await store.get_definition(run.workflow, run.flow_version)
        if record is None:
            raise DefinitionNotFoundError(
                f"run {run.id!r} needs version {run.flow_version} of definition "
                f"{run.workflow!r}, which is not stored"
            )
        graph = replace(compile_definition(json.loads(record.document)), version=record.version)
        self._graphs[key] = graph
        if len(self._graphs) > _CACHE_SIZE:
            self._graphs.popitem(last=False)
        return graph
