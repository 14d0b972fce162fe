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

-- The starts of rate-limited jobs: one row per claim and per rate limit
-- that covers some of the jobs it claimed, with how many; the claim sums
-- them within each limit's period (exactly: a claim's starts share one time).
CREATE TABLE pa_limit_starts (
    limit_key text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    starts integer NOT NULL,
    CONSTRAINT pa_limit_starts_starts_check CHECK (starts > 0)
);
CREATE INDEX pa_limit_starts_key_idx ON pa_limit_starts (limit_key, started_at);

-- The claim under global limits, in one call: up to p_count jobs from the
-- best p_scan ready ones (of p_queues; all when NULL), the first that every
-- limit of p_limits covering them has room for (the walk of _limits.pick).
-- p_limits: [{key, scope ("task"/"queue"), names, concurrency, rate,
-- period (seconds)}], concurrency or rate NULL when the limit has none.
-- First the limits' advisory locks, sorted (no deadlock): two claims never
-- both see a limit's last free place. Every later statement takes its own
-- snapshot (a VOLATILE function under READ COMMITTED), so it sees the
-- claims committed while this one waited for the locks. The head is read
-- without row locks (the limited claims are serialised); the UPDATE leaves
-- out a job claimed meanwhile by a claim outside these locks.
CREATE FUNCTION pa_claim_limited(
    p_worker_id bigint, p_count integer, p_scan integer, p_queues text[], p_limits jsonb
) RETURNS SETOF pa_jobs
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    limit_keys text[];
    rated boolean[];
    free integer[];
    started integer[];
    cover_names text[];
    cover_limits integer[];
    picked bigint[] := '{}';
    paused text[];
    none_paused boolean;
    head refcursor;
    candidate record;
    fits boolean;
    i integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('pa_limit:' || sorted.key, 0))
    FROM (
        SELECT DISTINCT l.key FROM jsonb_to_recordset(p_limits) AS l (key text) ORDER BY 1
    ) AS sorted;

    -- Each limit's room: its free places, and its starts left in the period.
    SELECT array_agg(l.key ORDER BY l.n),
           array_agg(l.rate IS NOT NULL ORDER BY l.n),
           array_agg(greatest(0, least(
               CASE WHEN l.concurrency IS NOT NULL THEN l.concurrency - (
                   SELECT count(*) FROM pa_jobs AS j
                   WHERE j.status = 'doing'
                     AND (CASE WHEN l.scope = 'task' THEN j.task_name ELSE j.queue_name END)
                         = ANY(l.names)
               ) END,
               CASE WHEN l.rate IS NOT NULL THEN l.rate - (
                   SELECT coalesce(sum(s.starts), 0) FROM pa_limit_starts AS s
                   WHERE s.limit_key = l.key
                     AND s.started_at > now() - make_interval(secs => l.period)
               ) END
           ))::integer ORDER BY l.n),
           array_agg(0 ORDER BY l.n)
        INTO limit_keys, rated, free, started
    FROM ROWS FROM (
        jsonb_to_recordset(p_limits) AS (
            key text, scope text, names text[], concurrency integer, rate integer,
            period float8
        )
    ) WITH ORDINALITY AS l (key, scope, names, concurrency, rate, period, n);

    -- Which limit (by position) covers a job of task "task:<name>" or of
    -- queue "queue:<name>".
    SELECT array_agg(c.name), array_agg(c.n::integer)
        INTO cover_names, cover_limits
    FROM (
        SELECT DISTINCT l.scope || ':' || covered.name AS name, l.n
        FROM ROWS FROM (
            jsonb_to_recordset(p_limits) AS (scope text, names text[])
        ) WITH ORDINALITY AS l (scope, names, n)
        CROSS JOIN LATERAL unnest(l.names) AS covered (name)
    ) AS c;

    IF p_queues IS NULL THEN
        -- Paused queues, read once. "none_paused OR": with a single queue
        -- name in the table, the planner would count "queue_name <> ALL
        -- (...)" as matching no row and read the whole table; this way the
        -- filter folds away (none paused) or is estimated as half.
        paused := ARRAY(SELECT queue_name FROM pa_queue_pauses);
        none_paused := cardinality(paused) = 0;
        OPEN head FOR
            SELECT j.id, ARRAY(
                SELECT c.n FROM unnest(cover_names, cover_limits) AS c (name, n)
                WHERE c.name IN ('task:' || j.task_name, 'queue:' || j.queue_name)
            ) AS covering
            FROM pa_jobs AS j
            WHERE j.status = 'todo' AND NOT j.lock_waiting
              AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
              AND (none_paused OR j.queue_name <> ALL (paused))
            ORDER BY j.priority DESC, j.id
            LIMIT p_scan;
    ELSE
        -- The best p_scan of each queue (an ordered index scan each), then
        -- the best p_scan of those.
        OPEN head FOR
            SELECT j.id, ARRAY(
                SELECT c.n FROM unnest(cover_names, cover_limits) AS c (name, n)
                WHERE c.name IN ('task:' || j.task_name, 'queue:' || j.queue_name)
            ) AS covering
            FROM (
                SELECT unnest(p_queues) EXCEPT SELECT queue_name FROM pa_queue_pauses
            ) AS queue (name)
            CROSS JOIN LATERAL (
                SELECT id, priority, task_name, queue_name FROM pa_jobs
                WHERE queue_name = queue.name AND status = 'todo' AND NOT lock_waiting
                  AND (scheduled_at IS NULL OR scheduled_at <= now())
                ORDER BY priority DESC, id
                LIMIT p_scan
            ) AS j
            ORDER BY j.priority DESC, j.id
            LIMIT p_scan;
    END IF;
    LOOP
        EXIT WHEN cardinality(picked) >= p_count;
        FETCH head INTO candidate;
        EXIT WHEN NOT FOUND;
        fits := true;
        FOREACH i IN ARRAY candidate.covering LOOP
            IF free[i] <= 0 THEN
                fits := false;
                EXIT;
            END IF;
        END LOOP;
        IF fits THEN
            FOREACH i IN ARRAY candidate.covering LOOP
                free[i] := free[i] - 1;
                IF rated[i] THEN
                    started[i] := started[i] + 1;
                END IF;
            END LOOP;
            picked := picked || candidate.id;
        END IF;
    END LOOP;
    CLOSE head;
    IF cardinality(picked) = 0 THEN
        RETURN;
    END IF;

    RETURN QUERY
        UPDATE pa_jobs
        SET status = 'doing', worker_id = p_worker_id, started_at = now(),
            abort_requested = false
        WHERE id = ANY(picked) AND status = 'todo' AND NOT lock_waiting
        RETURNING pa_jobs.*;
    INSERT INTO pa_limit_starts (limit_key, starts)
    SELECT s.key, s.starts FROM unnest(limit_keys, started) AS s (key, starts)
    WHERE s.starts > 0;
END;
$$;

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
