-- Retention (App.prune): deleting a finished run deletes its signals, found by run id.
-- On SQLite the unique index signals_dedupe (run_id, dedupe_key) covers every row and
-- serves that lookup already; this version only keeps both stores' numbers in step.

-- Named leases: work that one process of many does at a time (the background retention
-- sweep of App(retention=)). A lease is held by owner until expires_at; its holder
-- renews it, anyone may take it once it has expired.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL
);
