-- Runs of JSON flows: the caller's business key (listed and filtered by it) and the
-- version of the definition the run executes (runs.workflow holds the definition's id).
ALTER TABLE runs ADD COLUMN business_key TEXT;
ALTER TABLE runs ADD COLUMN flow_version INTEGER;
CREATE INDEX runs_business_key ON runs (business_key, created_at) WHERE business_key IS NOT NULL;

-- A signal sent with a dedupe key is stored once per run: a repeated request is a no-op.
-- SQLite treats NULLs as distinct in a unique index, so keyless signals never collide.
ALTER TABLE signals ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX signals_dedupe ON signals (run_id, dedupe_key);

-- Flow definitions: every upload of an id is a new version, 1, 2, 3...
CREATE TABLE definitions (
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    document    TEXT NOT NULL,
    uploaded_at REAL NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;

-- External jobs: SERVICE_TASK steps that workers outside the run poll for. available_at
-- is set exactly when a poller may take the job: QUEUED jobs (since they were queued),
-- RUNNING jobs (their lease expiry, so a dead worker's job returns to the queue). NULL
-- once the job is closed, so the poll index holds only jobs that can ever be handed out
-- and a poll never walks past the leases still held.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    run_id            TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    step_id           TEXT NOT NULL,
    job_type          TEXT NOT NULL,
    status            TEXT NOT NULL,
    variables         TEXT NOT NULL,
    retries_remaining INTEGER NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 1,
    worker_id         TEXT,
    lock_expires_at   REAL,
    error             TEXT,
    available_at      REAL,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    UNIQUE (run_id, seq)
);
CREATE INDEX jobs_available ON jobs (job_type, available_at) WHERE available_at IS NOT NULL;
