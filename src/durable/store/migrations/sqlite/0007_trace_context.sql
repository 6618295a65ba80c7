-- The trace context of the span that started the run (OpenTelemetry: the JSON object the
-- propagator wrote, e.g. {"traceparent": "..."}), so the workers' spans join its trace.
ALTER TABLE runs ADD COLUMN trace_context TEXT;
