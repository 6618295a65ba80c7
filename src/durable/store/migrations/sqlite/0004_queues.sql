-- Queues. Every run belongs to one (runs.queue, 'default' unless the workflow or the start
-- names another) and has a priority (higher is claimed first; FIFO by runnable_at within
-- a priority). runs_claim serves the claim: per queue and priority band, the due runs in
-- runnable_at order, so a claim reads only the rows it takes even with many runs
-- sleeping or leased (their runnable_at lies in the future, at the end of each band).
ALTER TABLE runs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_claim ON runs (queue, priority DESC, runnable_at) WHERE runnable_at IS NOT NULL;
-- It replaces the index on runnable_at alone, which a claim must not use: ordered by
-- runnable_at across queues and bands, it would read past every run it may not take.
DROP INDEX runs_runnable;
-- The runs of a queue that are leased (runnable_at is then the lease expiry): counted
-- against a queue's global concurrency limit.
CREATE INDEX runs_queue_leased ON runs (queue, runnable_at) WHERE lease_owner IS NOT NULL;

-- The limits each queue was last declared with (upserted when a worker starts). NULL
-- means no such limit. Claims read the global limits from here.
CREATE TABLE queues (
    name               TEXT PRIMARY KEY,
    concurrency        INTEGER,
    worker_concurrency INTEGER,
    rate_limit         INTEGER,
    rate_period        REAL,
    updated_at         REAL NOT NULL
) WITHOUT ROWID;

-- Starts counted by a queue's rate limit (kind 'run': a run's first claim), kept for one
-- rate period.
CREATE TABLE queue_starts (
    queue TEXT NOT NULL,
    kind  TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE INDEX queue_starts_window ON queue_starts (queue, kind, at);

-- Activity slots of limited queues. kind 'concurrency': slot 0..N-1 of the global limit,
-- held by `holder` until expires_at (a lease renewed while the activity runs; NULL when
-- free). kind 'rate': slot 0..N-1 of the rate limit, busy until expires_at (the start
-- plus the period). A slot is taken by one UPDATE of a free or expired row.
CREATE TABLE queue_slots (
    queue      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    slot       INTEGER NOT NULL,
    holder     TEXT,
    token      TEXT,
    expires_at REAL,
    PRIMARY KEY (queue, kind, slot)
) WITHOUT ROWID;
