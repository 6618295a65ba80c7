"""A payload codec applied at the store's edge (``App(codec=)``).

:func:`apply_codec` rebinds the methods of a store that write or read payloads: what they
write is encoded (``durable.codecs.encode_text``) and what they read decoded, so the
runtime, the client and the flow interpreter see plain JSON text and the database holds
only encoded values. Without a codec nothing is rebound and no call pays for it.

What is encoded: a run's arguments, result and error; journal payloads (an operation's
result or error, a retry's error, a flow step's ``output`` variables, but not timers,
child ids or step timings, which the stores' metrics read); signal payloads; events;
child start arguments; job variables; schedule arguments. The store itself splices a
finished child's result and error into the signal its parent receives, and a completed
job's variables into the signal of its run: those parts are decoded on read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .._wire import Event, Kind
from ..codecs import Codec, decode_text, encode_text, is_encoded
from ..info import Status
from ._composed import Composed
from ._diagnosis import Diagnosis
from ._records import (
    Commit,
    Finish,
    ForkStart,
    JobAnswer,
    JobRecord,
    JournalEntry,
    Outcome,
    QueueClaim,
    Restart,
    RunRecord,
    ScheduleRecord,
    SignalRecord,
)

_PLAIN_EVENTS = frozenset({Event.TIMER, Event.START, Event.CANCEL})
"""Journal records whose payload is no user data: a due time, a child's id."""
_CHILD_SIGNAL = "durable.child:"
_JOB_SIGNAL = "durable.job#"


def apply_codec(store: Composed, codec: Codec) -> None:
    """Encode every payload ``store`` writes and decode every payload it reads."""
    layer = _Layer(store, codec)
    store.create_run = layer.create_run
    store.get_run = layer.get_run
    store.list_runs = layer.list_runs
    store.read_journal = layer.read_journal
    store.send_signal = layer.send_signal
    store.request_cancel = layer.request_cancel
    store.pending_signals = layer.pending_signals
    store.commit = layer.commit
    store.get_event = layer.get_event
    store.claim = layer.claim
    store.enqueue_job = layer.enqueue_job
    store.poll_jobs = layer.poll_jobs
    store.complete_job = layer.complete_job
    store.get_job = layer.get_job
    store.put_schedule = layer.put_schedule
    store.get_schedule = layer.get_schedule
    store.list_schedules = layer.list_schedules
    store.list_flow_runs = layer.list_flow_runs
    store.read_journals = layer.read_journals
    store.request_pause = layer.request_pause
    store.resume = layer.resume
    store.retry_run = layer.retry_run
    store.fork_run = layer.fork_run
    store.diagnose = layer.diagnose


class _Layer:
    def __init__(self, store: Composed, codec: Codec) -> None:
        self.inner = {
            name: getattr(store, name)
            for name in (
                "create_run", "get_run", "list_runs", "read_journal", "send_signal",
                "request_cancel", "pending_signals", "commit", "get_event", "claim",
                "enqueue_job", "poll_jobs", "complete_job", "get_job", "put_schedule",
                "get_schedule", "list_schedules", "list_flow_runs", "read_journals",
                "request_pause", "resume", "retry_run", "fork_run", "diagnose",
            )
        }  # fmt: skip
        self.codec = codec

    # -- texts ----------------------------------------------------------------------
    def enc(self, text: str) -> str:
        return encode_text(self.codec, text)

    def enc_opt(self, text: str | None) -> str | None:
        return None if text is None else encode_text(self.codec, text)

    def dec(self, text: str) -> str:
        return decode_text(self.codec, text)

    def dec_opt(self, text: str | None) -> str | None:
        return None if text is None else decode_text(self.codec, text)

    def run(self, run: RunRecord) -> RunRecord:
        return replace(
            run,
            args=self.dec(run.args),
            result=self.dec_opt(run.result),
            error=self.dec_opt(run.error),
        )

    def entry_out(self, entry: JournalEntry) -> JournalEntry:
        if entry.payload is None or entry.event in _PLAIN_EVENTS:
            return entry
        if entry.kind == Kind.STEP:  # only the variables: metrics read the rest
            record = json.loads(entry.payload)
            if "output" not in record:
                return entry
            record["output"] = json.loads(self.enc(json.dumps(record["output"])))
            return replace(entry, payload=json.dumps(record))
        return replace(entry, payload=self.enc(entry.payload))

    def entry_in(self, entry: JournalEntry) -> JournalEntry:
        payload = entry.payload
        if payload is None or entry.event in _PLAIN_EVENTS:
            return entry
        if entry.kind == Kind.STEP:
            record = json.loads(payload)
            output = record.get("output")
            if not (isinstance(output, str) and is_encoded(json.dumps(output))):
                return entry
            record["output"] = json.loads(self.dec(json.dumps(output)))
            return replace(entry, payload=json.dumps(record))
        return replace(entry, payload=self.dec(payload))

    def signal_in(self, signal: SignalRecord) -> SignalRecord:
        payload = signal.payload
        if is_encoded(payload):
            return replace(signal, payload=self.dec(payload))
        name = signal.name
        if name.startswith(_CHILD_SIGNAL):
            return replace(signal, payload=self._inner(payload, ("result", "error")))
        if name.startswith(_JOB_SIGNAL):
            return replace(signal, payload=self._inner(payload, ("variables",)))
        return signal

    def _inner(self, payload: str, keys: tuple[str, ...]) -> str:
        """A store-made payload with encoded parts spliced in: decode those parts."""
        data = json.loads(payload)
        for key in keys:
            value = data.get(key)
            if isinstance(value, str) and is_encoded(json.dumps(value)):
                data[key] = json.loads(self.dec(json.dumps(value)))
        return json.dumps(data)

    def job(self, job: JobRecord) -> JobRecord:
        return replace(job, variables=self.dec(job.variables))

    def schedule(self, record: ScheduleRecord) -> ScheduleRecord:
        return replace(record, args=self.dec(record.args))

    def outcome(self, outcome: Outcome | None) -> Outcome | None:
        if isinstance(outcome, Finish):
            return replace(
                outcome, result=self.enc_opt(outcome.result), error=self.enc_opt(outcome.error)
            )
        if isinstance(outcome, Restart):
            return replace(outcome, args=self.enc(outcome.args))
        return outcome

    # -- the rebound methods ----------------------------------------------------------
    async def create_run(
        self,
        run_id: str,
        workflow: str,
        args: str,
        *,
        business_key: str | None = None,
        flow_version: int | None = None,
        queue: str = "default",
        priority: int = 0,
        trace_context: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> tuple[RunRecord, bool]:
        run, created = await self.inner["create_run"](
            run_id,
            workflow,
            self.enc(args),
            business_key=business_key,
            flow_version=flow_version,
            queue=queue,
            priority=priority,
            trace_context=trace_context,
            tags=tags,
        )
        return self.run(run), created

    async def get_run(self, run_id: str) -> RunRecord | None:
        run = await self.inner["get_run"](run_id)
        return None if run is None else self.run(run)

    async def list_runs(self, **options: Any) -> list[RunRecord]:
        return [self.run(run) for run in await self.inner["list_runs"](**options)]

    async def read_journal(self, run_id: str) -> list[JournalEntry]:
        return [self.entry_in(e) for e in await self.inner["read_journal"](run_id)]

    async def send_signal(
        self, run_id: str, name: str, payload: str, *, dedupe_key: str | None = None
    ) -> bool:
        sent: bool = await self.inner["send_signal"](
            run_id, name, self.enc(payload), dedupe_key=dedupe_key
        )
        return sent

    async def request_cancel(self, run_id: str) -> RunRecord:
        return self.run(await self.inner["request_cancel"](run_id))

    async def pending_signals(self, run_id: str, after_id: int) -> list[SignalRecord]:
        return [self.signal_in(s) for s in await self.inner["pending_signals"](run_id, after_id)]

    async def commit(self, commit: Commit) -> bool:
        encoded = replace(
            commit,
            entries=[self.entry_out(e) for e in commit.entries],
            outcome=self.outcome(commit.outcome),
            children=[replace(c, args=self.enc(c.args)) for c in commit.children],
            events=[(key, self.enc(value)) for key, value in commit.events],
        )
        pause: bool = await self.inner["commit"](encoded)
        return pause

    async def get_event(self, run_id: str, key: str) -> str | None:
        return self.dec_opt(await self.inner["get_event"](run_id, key))

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        queues: Sequence[QueueClaim] | None = None,
    ) -> list[RunRecord]:
        runs = await self.inner["claim"](owner, limit, lease_seconds, queues)
        return [self.run(run) for run in runs]

    async def enqueue_job(
        self, run_id: str, seq: int, step_id: str, job_type: str, variables: str, retries: int
    ) -> JobRecord:
        job = await self.inner["enqueue_job"](
            run_id, seq, step_id, job_type, self.enc(variables), retries
        )
        return self.job(job)

    async def poll_jobs(
        self, worker_id: str, job_types: Sequence[str], limit: int, lease_seconds: float
    ) -> list[JobRecord]:
        jobs = await self.inner["poll_jobs"](worker_id, job_types, limit, lease_seconds)
        return [self.job(job) for job in jobs]

    async def complete_job(self, job_id: str, worker_id: str, variables: str) -> JobAnswer:
        answer: JobAnswer = await self.inner["complete_job"](job_id, worker_id, self.enc(variables))
        return answer

    async def get_job(self, job_id: str) -> JobRecord | None:
        job = await self.inner["get_job"](job_id)
        return None if job is None else self.job(job)

    async def put_schedule(self, schedule_id: str, *, args: str, **options: Any) -> ScheduleRecord:
        record = await self.inner["put_schedule"](schedule_id, args=self.enc(args), **options)
        return self.schedule(record)

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        record = await self.inner["get_schedule"](schedule_id)
        return None if record is None else self.schedule(record)

    async def list_schedules(self) -> list[ScheduleRecord]:
        return [self.schedule(r) for r in await self.inner["list_schedules"]()]

    async def list_flow_runs(
        self,
        *,
        definition_id: str | None = None,
        statuses: Sequence[Status] | None = None,
        business_key: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[RunRecord], int]:
        runs, total = await self.inner["list_flow_runs"](
            definition_id=definition_id,
            statuses=statuses,
            business_key=business_key,
            offset=offset,
            limit=limit,
        )
        return [self.run(run) for run in runs], total

    async def read_journals(
        self, run_ids: Sequence[str], *, kinds: Sequence[str] | None = None
    ) -> dict[str, list[JournalEntry]]:
        journals = await self.inner["read_journals"](run_ids, kinds=kinds)
        return {rid: [self.entry_in(e) for e in entries] for rid, entries in journals.items()}

    async def request_pause(self, run_id: str, reason: str | None = None) -> RunRecord:
        return self.run(await self.inner["request_pause"](run_id, reason))

    async def resume(self, run_id: str) -> RunRecord:
        return self.run(await self.inner["resume"](run_id))

    async def retry_run(self, run_id: str) -> RunRecord:
        return self.run(await self.inner["retry_run"](run_id))

    async def fork_run(self, fork: ForkStart) -> RunRecord:
        encoded = replace(
            fork,
            args=self.enc(fork.args),
            entries=[self.entry_out(e) for e in fork.entries],
            events=[(key, self.enc(value)) for key, value in fork.events],
        )
        return self.run(await self.inner["fork_run"](encoded))

    async def diagnose(self, run_id: str) -> Diagnosis | None:
        found: Diagnosis | None = await self.inner["diagnose"](run_id)
        if found is None:
            return None
        records = tuple(self.entry_in(e) for e in found.open_records)
        return replace(found, run=self.run(found.run), open_records=records)
