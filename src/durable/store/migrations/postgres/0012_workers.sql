-- Workers: one row per running worker process, written when it starts, touched by each of
-- its lease heartbeats and deleted when it stops cleanly. A row whose heartbeat_at is
-- older than stale_after seconds belongs to a worker that died without stopping.
-- queues is a JSON array of names; workflows a JSON object: {"workflows": {name: [[param,
-- kind], ...]}, "flows": bool}, the signatures the worker's code registered.
CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          integer NOT NULL,
    queues       TEXT NOT NULL,
    version      TEXT NOT NULL,
    workflows    TEXT NOT NULL,
    stale_after  double precision NOT NULL,
    started_at   double precision NOT NULL,
    heartbeat_at double precision NOT NULL
);
