-- Tags of runs (``tags=`` on start, ``ctx.set_tags``): one row per key, found by
-- (key, value) when ``list_runs`` or ``bulk`` filters by tag.
CREATE TABLE run_tags (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_tags_by_value ON run_tags (key, value, run_id);
