-- Runs: runnable_at is set exactly when a worker should look at the run (see the SQLite
-- migration for the full rule). Times are seconds since the epoch, by the server's clock.
CREATE TABLE runs (
    id               text PRIMARY KEY,
    workflow         text NOT NULL,
    status           text NOT NULL,
    args             text NOT NULL,
    result           text,
    error            text,
    parked_reason    text,
    runnable_at      double precision,
    lease_owner      text,
    epoch            integer NOT NULL DEFAULT 0,
    wait_signals     text[],
    cancel_requested boolean NOT NULL DEFAULT false,
    mailbox_version  integer NOT NULL DEFAULT 0,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL
);
CREATE INDEX runs_runnable ON runs (runnable_at) WHERE runnable_at IS NOT NULL;
CREATE INDEX runs_status_workflow ON runs (status, workflow, created_at);
CREATE INDEX runs_workflow_created ON runs (workflow, created_at);
CREATE INDEX runs_created ON runs (created_at);

CREATE TABLE journal (
    run_id      text NOT NULL,
    pos         integer NOT NULL,
    seq         integer NOT NULL,
    event       text NOT NULL,
    kind        text NOT NULL,
    name        text NOT NULL,
    fingerprint text,
    payload     text,
    created_at  double precision NOT NULL,
    PRIMARY KEY (run_id, pos)
);

CREATE TABLE signals (
    id           bigserial PRIMARY KEY,
    run_id       text NOT NULL,
    name         text NOT NULL,
    payload      text NOT NULL,
    consumed_seq integer,
    created_at   double precision NOT NULL
);
CREATE INDEX signals_pending ON signals (run_id, id) WHERE consumed_seq IS NULL;
