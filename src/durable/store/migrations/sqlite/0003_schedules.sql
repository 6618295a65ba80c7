-- Cron schedules: one row per schedule. next_fire_at is the next tick not yet started
-- (seconds since the epoch); a worker takes a due row, starts the tick's run and moves
-- next_fire_at on, in one transaction. args holds the workflow's stored arguments, as a
-- run's args does. last_fire_at is the time of the latest tick started (not when it ran).
CREATE TABLE schedules (
    id           TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    args         TEXT NOT NULL,
    missed       TEXT NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    next_fire_at REAL NOT NULL,
    last_fire_at REAL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = 0;
