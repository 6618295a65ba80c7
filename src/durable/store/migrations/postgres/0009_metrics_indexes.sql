-- What /metrics reads to bucket flow step durations without scanning the journal.
--
-- tx_id is the transaction that inserted the row (set by the default; NULL for rows
-- written before this migration). A server keeps the snapshot of its last read and next
-- reads the step records whose transaction that snapshot did not see: commit order, so a
-- step record committed long after it was made (a step's end rides with the next commit,
-- e.g. after the next activity) is read exactly once. Added without a default first, so
-- existing rows are not rewritten. Needs Postgres 13 (xid8, pg_current_xact_id).
ALTER TABLE journal ADD COLUMN tx_id xid8;
ALTER TABLE journal ALTER COLUMN tx_id SET DEFAULT pg_current_xact_id();
CREATE INDEX journal_step_tx ON journal (tx_id) WHERE kind = 'step';

-- The step records made since a time: a server's first scrape reads those made since it
-- started.
CREATE INDEX journal_step_created ON journal (created_at) WHERE kind = 'step';
