-- Children: a run started with ctx.child names its parent; the parent hears when it ends.
ALTER TABLE runs ADD COLUMN parent_id TEXT;
CREATE INDEX runs_parent ON runs (parent_id, created_at) WHERE parent_id IS NOT NULL;

-- Events: the latest value a run published under each key (ctx.set_event).
CREATE TABLE events (
    run_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
