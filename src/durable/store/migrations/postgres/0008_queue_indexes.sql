-- Queue indexes (see the SQLite migration for the full description).
CREATE INDEX runs_queue_due ON runs (queue, runnable_at) WHERE runnable_at IS NOT NULL;
CREATE INDEX queue_slots_free ON queue_slots (queue, kind, expires_at);
CREATE INDEX queue_slots_token ON queue_slots (token) WHERE token IS NOT NULL;
