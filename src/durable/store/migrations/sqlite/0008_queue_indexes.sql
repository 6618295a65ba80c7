-- Indexes for the queue queries whose cost must follow the runs that are due, not the
-- runs sleeping or leased.
--
-- runs_queue_due: a queue's runs in runnable_at order. Its due runs (runnable_at <= now)
-- are one range at the start of the queue's entries, whatever their priorities, so a
-- claim that has walked a few priority bands of runs_claim without filling its room
-- takes the rest from this range, and the next wake-up of a queue is one probe.
CREATE INDEX runs_queue_due ON runs (queue, runnable_at) WHERE runnable_at IS NOT NULL;

-- queue_slots_free: a queue's activity slots by expiry, so a free slot (NULL: never held
-- or released; an expiry in the past: lapsed) and the next one to free are one probe
-- each, whatever the limit.
CREATE INDEX queue_slots_free ON queue_slots (queue, kind, expires_at);

-- queue_slots_token: a held slot by its token (renewal and release).
CREATE INDEX queue_slots_token ON queue_slots (token) WHERE token IS NOT NULL;
