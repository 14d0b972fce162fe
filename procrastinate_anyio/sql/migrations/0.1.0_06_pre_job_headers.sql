-- Per-job headers: a JSON object of text values that travels with the job
-- (a tracing context, for one). NULL when there are none, the common case,
-- so that jobs deferred without instrumentation cost nothing more to store.
-- No default and no check: adding the column rewrites nothing.
ALTER TABLE pa_jobs ADD COLUMN headers jsonb;
