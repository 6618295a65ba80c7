-- Parked runs: found at every worker start and by every heartbeat's look for runs parked
-- because the worker that claimed them did not know their workflow.
CREATE INDEX runs_parked ON runs (workflow) WHERE parked_reason IS NOT NULL;
