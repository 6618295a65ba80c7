-- The queue and priority of the runs a schedule starts (as App.start takes them; the
-- workflow's own queue unless the schedule names one).
ALTER TABLE schedules ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE schedules ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
