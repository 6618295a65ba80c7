-- Operating runs by hand. paused_reason is set while a run is paused (Handle.pause, or a
-- retry policy with on_exhausted="pause"): a paused run is never runnable, and what would
-- wake it (a signal, a timer, a child's end) waits for resume. forked_from and fork_at
-- name the run and the point (JSON: a journal seq or a flow step id) a fork was cut from.
ALTER TABLE runs ADD COLUMN paused_reason TEXT;
ALTER TABLE runs ADD COLUMN forked_from TEXT;
ALTER TABLE runs ADD COLUMN fork_at TEXT;
