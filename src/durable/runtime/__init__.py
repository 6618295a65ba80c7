"""The deterministic executor: context, journal, replay, suspension.

``_future`` and ``_scheduler`` drive workflow coroutines deterministically; ``_journal``
indexes a run's journal for replay; ``_context`` is the API workflows call;
``_activity`` runs one activity call; ``_executor`` ties them together for one run.
"""

from ._activity import ActivityInfo as ActivityInfo
from ._activity import activity_info as activity_info
from ._context import Context as Context
from ._executor import RunExecutor as RunExecutor

__all__ = ["ActivityInfo", "Context", "RunExecutor", "activity_info"]
