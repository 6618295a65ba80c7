-- Cron schedules (see the SQLite migration for what each column holds).
CREATE TABLE schedules (
    id           text PRIMARY KEY,
    workflow     text NOT NULL,
    cron         text NOT NULL,
    timezone     text NOT NULL,
    args         text NOT NULL,
    missed       text NOT NULL,
    paused       boolean NOT NULL DEFAULT false,
    next_fire_at double precision NOT NULL,
    last_fire_at double precision,
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE NOT paused;
