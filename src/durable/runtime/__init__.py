"""The deterministic executor: context, journal, replay, suspension.

``_executor`` is the loop that replays a claimed run and runs it live; it is composed of
parts that own their state: ``_cursor`` (numbering operations against the journal, which
``_journal`` indexes), ``_outbox`` (what the next commit writes), ``_mailbox`` (signals),
``_dispatch`` (pending operations, timers, activity attempts), ``_operations`` (the
``WorkflowHost`` that workflow code calls) and ``_writer`` (commits, outcomes, logs).
``_load`` reads what a claim needs; ``_scheduler`` steps workflow coroutines
deterministically; ``_context`` is the API workflows call; ``_activity`` runs one attempt
of an activity; ``_guard`` warns about non-deterministic workflow code.
"""

from .._current import ActivityInfo as ActivityInfo
from ._activity import activity_info as activity_info
from ._activity import heartbeat as heartbeat
from ._context import ChildHandle as ChildHandle
from ._context import Context as Context
from ._executor import RunExecutor as RunExecutor
from ._guard import strict as strict
from ._journal import failure_seq as failure_seq
from ._journal import fork_prefix as fork_prefix
from ._journal import superseded as superseded
from ._state import ReplayReport as ReplayReport

__all__ = [
    "ActivityInfo",
    "ChildHandle",
    "Context",
    "ReplayReport",
    "RunExecutor",
    "activity_info",
    "failure_seq",
    "fork_prefix",
    "heartbeat",
    "strict",
    "superseded",
]
