-- The trace context of the span that started the run (see the SQLite migration).
ALTER TABLE runs ADD COLUMN trace_context text;
