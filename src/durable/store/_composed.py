"""A Store made of one object per role: each protocol call goes straight to its object.

The backends build their store from a connection holder and one object per record
family (runs, queues, flows, schedules, operator queries); this class binds each
method of the ``Store`` protocol to the object that implements it, once, at
construction. A call through the store is then one attribute read, as a method of the
class would be: no delegating coroutine on the hot path (``commit``, ``claim``,
``renew``). mypy checks each object against its role.
"""

from __future__ import annotations

from ._completed import CompletedResults
from ._protocol import (
    AdminStore,
    ControlStore,
    DiagnosisStore,
    FlowStore,
    Notifications,
    QueueStore,
    RetentionStore,
    RunStore,
    ScheduleStore,
    WorkerStore,
)


class Composed:
    """The methods of every role but ``open`` and ``close``, bound to their objects."""

    def __init__(
        self,
        *,
        runs: RunStore,
        queues: QueueStore,
        flows: FlowStore,
        schedules: ScheduleStore,
        admin: AdminStore,
        workers: WorkerStore,
        control: ControlStore,
        diagnosis: DiagnosisStore,
        retention: RetentionStore,
        notifications: Notifications,
    ) -> None:
        self.completed = CompletedResults()
        # RunStore
        self.create_run = runs.create_run
        self.get_run = runs.get_run
        self.list_runs = runs.list_runs
        self.bulk_cancel = runs.bulk_cancel
        self.read_journal = runs.read_journal
        self.send_signal = runs.send_signal
        self.request_cancel = runs.request_cancel
        self.renew = runs.renew
        self.pending_signals = runs.pending_signals
        self.commit = runs.commit
        self.get_event = runs.get_event
        self.child_ids = runs.child_ids
        # QueueStore
        self.claim = queues.claim
        self.next_wake_at = queues.next_wake_at
        self.put_queues = queues.put_queues
        self.get_queues = queues.get_queues
        self.queue_depths = queues.queue_depths
        self.acquire_queue_slot = queues.acquire_queue_slot
        self.renew_queue_slots = queues.renew_queue_slots
        self.release_queue_slot = queues.release_queue_slot
        # FlowStore
        self.put_definition = flows.put_definition
        self.get_definition = flows.get_definition
        self.list_definitions = flows.list_definitions
        self.enqueue_job = flows.enqueue_job
        self.poll_jobs = flows.poll_jobs
        self.complete_job = flows.complete_job
        self.fail_job = flows.fail_job
        self.get_job = flows.get_job
        self.cancel_jobs = flows.cancel_jobs
        # ScheduleStore
        self.put_schedule = schedules.put_schedule
        self.get_schedule = schedules.get_schedule
        self.list_schedules = schedules.list_schedules
        self.set_schedule_paused = schedules.set_schedule_paused
        self.delete_schedule = schedules.delete_schedule
        self.fire_schedules = schedules.fire_schedules
        self.next_schedule_at = schedules.next_schedule_at
        # AdminStore
        self.list_flow_runs = admin.list_flow_runs
        self.read_journals = admin.read_journals
        self.fleet_metrics = admin.fleet_metrics
        self.step_durations = admin.step_durations
        self.ping = admin.ping
        self.unpark = admin.unpark
        # WorkerStore
        self.register_worker = workers.register_worker
        self.heartbeat_worker = workers.heartbeat_worker
        self.unregister_worker = workers.unregister_worker
        self.list_workers = workers.list_workers
        self.liveness_lock = workers.liveness_lock
        self.take_over = workers.take_over
        # ControlStore
        self.request_pause = control.request_pause
        self.resume = control.resume
        self.bulk_pause = control.bulk_pause
        self.bulk_resume = control.bulk_resume
        self.retry_run = control.retry_run
        self.fork_run = control.fork_run
        self.bulk_retry = control.bulk_retry
        # DiagnosisStore
        self.diagnose = diagnosis.diagnose
        # RetentionStore
        self.prune_runs = retention.prune_runs
        self.take_lease = retention.take_lease
        self.drop_lease = retention.drop_lease
        # Notifications
        self.publish = notifications.publish
        self.subscribe = notifications.subscribe
