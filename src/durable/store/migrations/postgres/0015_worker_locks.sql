-- Liveness locks: holds_lock says the worker takes its liveness lock before it registers
-- (set by every worker that does). Only such rows are looked at for dead peers and taken
-- over when their lock is free. A row written by a version without liveness locks keeps
-- false: its lock is always free, so its runs are left to their leases, as that version
-- expects (a rolling upgrade).
ALTER TABLE workers ADD COLUMN holds_lock boolean NOT NULL DEFAULT false;
