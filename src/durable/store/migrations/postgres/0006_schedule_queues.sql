-- The queue and priority of the runs a schedule starts (see the SQLite migration).
ALTER TABLE schedules ADD COLUMN queue text NOT NULL DEFAULT 'default';
ALTER TABLE schedules ADD COLUMN priority integer NOT NULL DEFAULT 0;
