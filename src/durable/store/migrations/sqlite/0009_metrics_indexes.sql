-- What /metrics reads to bucket flow step durations without scanning the journal.
--
-- journal_steps logs every step record (kind 'step') in commit order. SQLite commits one
-- writer at a time, so the ids a reader sees are always every id up to the largest: a
-- server reads the ids past the last one it read, and a step record committed long after
-- it was made (a step's end rides with the next commit, e.g. after the next activity)
-- is still read exactly once. Rows are never updated; the table grows with the journal.
CREATE TABLE journal_steps (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    pos    INTEGER NOT NULL
);
CREATE TRIGGER journal_steps_log AFTER INSERT ON journal WHEN NEW.kind = 'step'
BEGIN
    INSERT INTO journal_steps (run_id, pos) VALUES (NEW.run_id, NEW.pos);
END;

-- The step records made since a time: a server's first scrape reads those made since it
-- started (the index holds (created_at, run_id, pos): WITHOUT ROWID appends the key).
CREATE INDEX journal_step_created ON journal (created_at) WHERE kind = 'step';
