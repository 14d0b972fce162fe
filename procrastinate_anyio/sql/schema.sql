-- procrastinate_anyio schema: the whole current schema in one file.
--
-- Every object is prefixed with pa_ so that it can live in the same database
-- as Procrastinate's procrastinate_* objects. The migration runner applies
-- this file to an empty database and the files of migrations/ to an older one;
-- tests/migration/ checks that both give the same catalog.

CREATE TABLE pa_schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE pa_job_status AS ENUM (
    'todo', 'doing', 'succeeded', 'failed', 'cancelled', 'aborted'
);

CREATE TABLE pa_workers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    queues text[],
    started_at timestamptz NOT NULL DEFAULT now(),
    last_heartbeat timestamptz NOT NULL DEFAULT now()
);

-- worker_id deliberately has no foreign key: pruning a dead worker must not
-- rewrite every job row that ever referenced it.
--
-- lock_waiting: for each lock, at most one job is "active" (doing, or todo
-- and not waiting); the others wait behind it with lock_waiting = true and are
-- invisible to the claim, so a claim never walks a lock's backlog. The
-- driver's rebalance step picks the next active job when a lock frees up.
CREATE TABLE pa_jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_name text NOT NULL,
    task_name text NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    lock text,
    queueing_lock text,
    args jsonb NOT NULL DEFAULT '{}',
    status pa_job_status NOT NULL DEFAULT 'todo',
    lock_waiting boolean NOT NULL DEFAULT false,
    scheduled_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    abort_requested boolean NOT NULL DEFAULT false,
    worker_id bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    result jsonb,
    error_type text,
    error_message text,
    error_traceback text,
    -- Times the job's worker died while running it (stalled-job recovery).
    recoveries integer NOT NULL DEFAULT 0,
    -- Metadata that travels with the job (a tracing context); NULL: none.
    headers jsonb,
    CONSTRAINT pa_jobs_queue_name_check CHECK (char_length(queue_name) BETWEEN 1 AND 255),
    CONSTRAINT pa_jobs_task_name_check CHECK (char_length(task_name) BETWEEN 1 AND 255),
    CONSTRAINT pa_jobs_args_check CHECK (jsonb_typeof(args) = 'object')
) WITH (
    -- Rows change often: leave room for HOT updates, and keep statistics
    -- fresh so the planner keeps using the ready-set index.
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);

-- The ready set: what the claim reads. Small because finished and
-- lock-waiting jobs are outside it.
CREATE INDEX pa_jobs_ready_idx ON pa_jobs (priority DESC, id)
    WHERE status = 'todo' AND NOT lock_waiting;
CREATE INDEX pa_jobs_ready_queue_idx ON pa_jobs (queue_name, priority DESC, id)
    WHERE status = 'todo' AND NOT lock_waiting;
-- At most one active job per lock; at most one waiting job per queueing lock.
-- Both leave out the rows without a lock, so that they stay small and the
-- planner never prefers them to the ready-set index for the claim.
CREATE UNIQUE INDEX pa_jobs_lock_active_idx ON pa_jobs (lock)
    WHERE lock IS NOT NULL AND (status = 'doing' OR (status = 'todo' AND NOT lock_waiting));
CREATE INDEX pa_jobs_lock_todo_idx ON pa_jobs (lock, priority DESC, id)
    WHERE status = 'todo' AND lock IS NOT NULL;
CREATE UNIQUE INDEX pa_jobs_queueing_lock_idx ON pa_jobs (queueing_lock)
    WHERE status = 'todo' AND queueing_lock IS NOT NULL;
CREATE INDEX pa_jobs_doing_worker_idx ON pa_jobs (worker_id)
    WHERE status = 'doing';
-- Future-scheduled jobs: when the next one is due, which locked ones are due.
CREATE INDEX pa_jobs_scheduled_idx ON pa_jobs (scheduled_at)
    WHERE status = 'todo' AND scheduled_at IS NOT NULL;

-- Callers waiting for a job to finish (wait_for_job): the completer only
-- sends a notification for jobs someone waits for, which keeps NOTIFY (a
-- global lock at commit) off the hot path. Unlogged: after a crash, waiters
-- fall back to polling.
CREATE UNLOGGED TABLE pa_job_waiters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pa_job_waiters_job_idx ON pa_job_waiters (job_id);

-- One row per periodic tick: the primary key makes a tick deferred once,
-- however many workers try.
CREATE TABLE pa_periodic_defers (
    task_name text NOT NULL,
    periodic_id text NOT NULL DEFAULT '',
    defer_timestamp bigint NOT NULL,
    job_id bigint,
    PRIMARY KEY (task_name, periodic_id, defer_timestamp)
);

-- Paused queues: workers claim no job of a queue listed here; deferring to
-- it still works.
CREATE TABLE pa_queue_pauses (
    queue_name text PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pa_queue_pauses_queue_name_check CHECK (char_length(queue_name) BETWEEN 1 AND 255)
);

-- The starts of rate-limited jobs, one row per start and per limit, which
-- the claim counts within each limit's period.
CREATE TABLE pa_limit_starts (
    limit_key text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pa_limit_starts_key_idx ON pa_limit_starts (limit_key, started_at);

-- The job that should be the active one of a free lock: the active job if it
-- waits for its retry (a job keeps its lock until it ends for good), else the
-- best due job (by priority, then id), else the earliest scheduled one (it
-- must be active to be claimed once due, since nothing rebalances a lock
-- when time passes). Used by the driver's rebalance step.
CREATE FUNCTION pa_lock_candidate(p_lock text) RETURNS bigint
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT id FROM pa_jobs
         WHERE lock = p_lock AND status = 'todo' AND NOT lock_waiting AND attempts > 0),
        (SELECT id FROM pa_jobs
         WHERE lock = p_lock AND status = 'todo'
           AND (attempts > 0 OR scheduled_at IS NULL OR scheduled_at <= now())
         ORDER BY priority DESC, id
         LIMIT 1),
        (SELECT id FROM pa_jobs
         WHERE lock = p_lock AND status = 'todo'
         ORDER BY scheduled_at, priority DESC, id
         LIMIT 1)
    )
$$;

-- One NOTIFY per INSERT statement, whatever the number of rows: the payload
-- lists the queues that got jobs, or omits them when the list would not fit
-- in a notification (then every worker wakes up).
CREATE FUNCTION pa_notify_jobs_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    SELECT json_build_object('t', 'defer', 'q', json_agg(DISTINCT queue_name))::text
        INTO payload FROM new_jobs HAVING count(*) > 0;
    IF payload IS NULL THEN  -- an INSERT of no row
        RETURN NULL;
    END IF;
    IF octet_length(payload) > 7000 THEN
        payload := '{"t":"defer"}';
    END IF;
    PERFORM pg_notify('pa_events', payload);
    RETURN NULL;
END;
$$;

CREATE TRIGGER pa_jobs_notify_inserted
    AFTER INSERT ON pa_jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION pa_notify_jobs_inserted();
