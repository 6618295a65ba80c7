"""``History``: a run's recorded journal and metadata, as ``durable runs export`` writes it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .._describe import history_event, when
from .._wire import Event, Kind, StoredError
from ..errors import DurableError, RunNotFoundError
from ..info import HistoryEvent, Status
from ..serde import dumps, loads
from ..store import JournalEntry, RunRecord

if TYPE_CHECKING:
    from ..app import App

FORMAT = "durable-history"
"""The ``format`` field of an exported history file."""
VERSION = 1


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class History:
    """A run's journal with what replaying it needs: the workflow name and arguments.

    ``durable runs export`` writes one as a JSON file; :func:`durable.testing.replay`
    checks workflow code against it. Get one from a file (:meth:`load`), from a run in a
    store (:meth:`fetch`), or from events (:meth:`from_events`).

    Example::

        history = await History.fetch(app, "order-7")
        history.save("order-7.json")
        durable.testing.replay(order, History.load("order-7.json"))
    """

    run_id: str
    workflow: str
    args: Any
    """The run's arguments in their stored JSON form (an object by parameter name)."""
    events: tuple[HistoryEvent, ...]
    """The journal, oldest first."""
    status: Status = Status.RUNNING
    """The run's status when the history was taken."""
    error: dict[str, Any] | None = None
    """The stored error of a FAILED or CANCELLED run."""
    flow_version: int | None = None
    """Set for a run of a JSON flow (those replay against their pinned definition)."""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    # -- building -------------------------------------------------------------------
    @classmethod
    def from_events(
        cls,
        events: Sequence[HistoryEvent],
        *,
        workflow: str,
        args: Any = None,
        run_id: str = "replay",
        status: Status = Status.RUNNING,
    ) -> History:
        """A history of ``events`` (``Handle.history()``) with the run's stored arguments."""
        return cls(run_id, workflow, {} if args is None else args, tuple(events), status)

    @classmethod
    def from_run(cls, run: RunRecord, entries: Sequence[JournalEntry]) -> History:
        """The history of a run record and its journal as a store returns them."""
        events = tuple(history_event(e) for e in entries)
        return cls(
            run.id,
            run.workflow,
            loads(run.args),
            events,
            run.status,
            StoredError.loads(run.error).to_dict() if run.error else None,
            run.flow_version,
            when(run.created_at),
        )

    @classmethod
    async def fetch(cls, app: App, run_id: str) -> History:
        """The history of run ``run_id`` in ``app``'s store, as of now.

        Raises:
            durable.RunNotFoundError: no such run.
        """
        run = await app.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return cls.from_run(run, await app.store.read_journal(run_id))

    # -- files ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The exported form: ``{"format", "version", "run": {...}, "journal": [...]}``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "run": {
                "id": self.run_id,
                "workflow": self.workflow,
                "status": str(self.status),
                "args": self.args,
                "error": self.error,
                "flow_version": self.flow_version,
                "created_at": _iso(self.created_at),
            },
            "journal": [
                {
                    "position": e.position,
                    "seq": e.seq,
                    "event": e.event,
                    "kind": e.kind,
                    "name": e.name,
                    "fingerprint": e.fingerprint,
                    "payload": e.payload,
                    "at": _iso(e.at),
                }
                for e in self.events
            ],
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str = "history") -> History:
        """Read the exported form back.

        Raises:
            durable.DurableError: ``data`` is not an exported history; names what is wrong.
        """
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"it is not a {FORMAT!r} document (no such 'format' field)")
            if data.get("version") != VERSION:
                raise ValueError(f"its version {data.get('version')!r} is not {VERSION}")
            run = data["run"]
            events = tuple(
                HistoryEvent(
                    position=int(e["position"]),
                    seq=int(e["seq"]),
                    event=Event(str(e["event"])).value,
                    kind=Kind(str(e["kind"])).value,
                    name=str(e["name"]),
                    payload=e.get("payload"),
                    at=datetime.fromtimestamp(_stamp(e["at"]), UTC),
                    fingerprint=e.get("fingerprint"),
                )
                for e in data["journal"]
            )
            return cls(
                str(run["id"]),
                str(run["workflow"]),
                run.get("args") or {},
                events,
                Status(run.get("status", "RUNNING")),
                run.get("error"),
                run.get("flow_version"),
                datetime.fromtimestamp(_stamp(run["created_at"]), UTC),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise DurableError(f"{source} is not a run history export: {detail}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """Read a file written by :meth:`save` or ``durable runs export``.

        Raises:
            durable.DurableError: the file cannot be read or is not a history export.
        """
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DurableError(f"cannot read the history file {os.fspath(path)!r}: {exc}") from None
        return cls.from_json(data, source=f"the file {os.fspath(path)!r}")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the history as JSON (what ``durable runs export -o FILE`` writes)."""
        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.to_json(), file, indent=2, ensure_ascii=False)
            file.write("\n")

    # -- replay ---------------------------------------------------------------------
    def entries(self) -> list[JournalEntry]:
        """The journal rows the executor replays."""
        return [
            JournalEntry(
                e.position,
                e.seq,
                Event(e.event),
                Kind(e.kind),
                e.name,
                e.fingerprint,
                None if e.payload is None else dumps(e.payload),
                e.at.timestamp(),
            )
            for e in self.events
        ]
