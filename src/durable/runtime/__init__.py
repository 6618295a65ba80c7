"""The deterministic executor: context, journal, replay, suspension.

``_future`` and ``_scheduler`` drive workflow coroutines deterministically; ``_journal``
indexes a run's journal for replay; ``_context`` is the API workflows call;
``_activity`` runs one attempt of an activity call; ``_state``, ``_operations`` and
``_dispatch`` are the parts of the executor that ``_executor`` ties together for one run.
"""

from ._activity import ActivityInfo as ActivityInfo
from ._activity import activity_info as activity_info
from ._activity import heartbeat as heartbeat
from ._context import ChildHandle as ChildHandle
from ._context import Context as Context
from ._executor import RunExecutor as RunExecutor

__all__ = ["ActivityInfo", "ChildHandle", "Context", "RunExecutor", "activity_info", "heartbeat"]
