-- Runs of JSON flows: the caller's business key (listed and filtered by it) and the
-- version of the definition the run executes (runs.workflow holds the definition's id).
ALTER TABLE runs ADD COLUMN business_key text;
ALTER TABLE runs ADD COLUMN flow_version integer;
CREATE INDEX runs_business_key ON runs (business_key, created_at) WHERE business_key IS NOT NULL;

-- A signal sent with a dedupe key is stored once per run: a repeated request is a no-op.
ALTER TABLE signals ADD COLUMN dedupe_key text;
CREATE UNIQUE INDEX signals_dedupe ON signals (run_id, dedupe_key) WHERE dedupe_key IS NOT NULL;

-- Flow definitions: every upload of an id is a new version, 1, 2, 3...
CREATE TABLE definitions (
    id          text NOT NULL,
    version     integer NOT NULL,
    name        text NOT NULL,
    document    text NOT NULL,
    uploaded_at double precision NOT NULL,
    PRIMARY KEY (id, version)
);

-- External jobs (see the SQLite migration for when available_at is set).
CREATE TABLE jobs (
    id                text PRIMARY KEY,
    run_id            text NOT NULL,
    seq               integer NOT NULL,
    step_id           text NOT NULL,
    job_type          text NOT NULL,
    status            text NOT NULL,
    variables         text NOT NULL,
    retries_remaining integer NOT NULL,
    attempt           integer NOT NULL DEFAULT 1,
    worker_id         text,
    lock_expires_at   double precision,
    error             text,
    available_at      double precision,
    created_at        double precision NOT NULL,
    updated_at        double precision NOT NULL,
    UNIQUE (run_id, seq)
);
CREATE INDEX jobs_available ON jobs (job_type, available_at) WHERE available_at IS NOT NULL;
