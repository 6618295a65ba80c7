-- Runs: one row per workflow run. runnable_at is set exactly when a worker should look at
-- the run: PENDING runs (creation time), WAITING runs with a due timer, leased runs (the
-- lease expiry, so a dead worker's run becomes claimable again). NULL otherwise.
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    status           TEXT NOT NULL,
    args             TEXT NOT NULL,
    result           TEXT,
    error            TEXT,
    parked_reason    TEXT,
    runnable_at      REAL,
    lease_owner      TEXT,
    epoch            INTEGER NOT NULL DEFAULT 0,
    wait_signals     TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    mailbox_version  INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL
);
CREATE INDEX runs_runnable ON runs (runnable_at) WHERE runnable_at IS NOT NULL;
CREATE INDEX runs_status_workflow ON runs (status, workflow, created_at);
CREATE INDEX runs_workflow_created ON runs (workflow, created_at);
CREATE INDEX runs_created ON runs (created_at);

-- The journal: append-only, ordered by pos within a run.
CREATE TABLE journal (
    run_id      TEXT NOT NULL,
    pos         INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    event       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    fingerprint TEXT,
    payload     TEXT,
    created_at  REAL NOT NULL,
    PRIMARY KEY (run_id, pos)
) WITHOUT ROWID;

-- Signals: buffered until a wait consumes them, in id order.
CREATE TABLE signals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    consumed_seq INTEGER,
    created_at   REAL NOT NULL
);
CREATE INDEX signals_pending ON signals (run_id, id) WHERE consumed_seq IS NULL;
