-- Queues (see the SQLite migration for the full description).
ALTER TABLE runs ADD COLUMN queue text NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN priority integer NOT NULL DEFAULT 0;
CREATE INDEX runs_claim ON runs (queue, priority DESC, runnable_at) WHERE runnable_at IS NOT NULL;
DROP INDEX runs_runnable;
CREATE INDEX runs_queue_leased ON runs (queue, runnable_at) WHERE lease_owner IS NOT NULL;

CREATE TABLE queues (
    name               text PRIMARY KEY,
    concurrency        integer,
    worker_concurrency integer,
    rate_limit         integer,
    rate_period        double precision,
    updated_at         double precision NOT NULL
);

CREATE TABLE queue_starts (
    queue text NOT NULL,
    kind  text NOT NULL,
    at    double precision NOT NULL
);
CREATE INDEX queue_starts_window ON queue_starts (queue, kind, at);

CREATE TABLE queue_slots (
    queue      text NOT NULL,
    kind       text NOT NULL,
    slot       integer NOT NULL,
    holder     text,
    token      text,
    expires_at double precision,
    PRIMARY KEY (queue, kind, slot)
);
