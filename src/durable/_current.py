"""Context variables telling code whether it runs inside a workflow or an activity."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime._activity import ActivityInfo
    from .runtime._context import Context

workflow_context: ContextVar[Context | None] = ContextVar("durable_workflow", default=None)
activity_info: ContextVar[ActivityInfo | None] = ContextVar("durable_activity", default=None)
