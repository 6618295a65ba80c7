-- Retention (App.prune): deleting a finished run deletes its signals, found by run id.
-- The other per-run tables are keyed by run id already (journal, events, jobs, run_tags);
-- signals had only partial indexes (pending ones, dedupe keys).
CREATE INDEX signals_run ON signals (run_id);

-- Named leases: work that one process of many does at a time (the background retention
-- sweep of App(retention=)). A lease is held by owner until expires_at; its holder
-- renews it, anyone may take it once it has expired.
CREATE TABLE leases (
    name       text PRIMARY KEY,
    owner      text NOT NULL,
    expires_at double precision NOT NULL
);
