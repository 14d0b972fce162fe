-- Named queries of the PostgreSQL driver. Each block starts with
-- "-- name: <name>" and runs as one statement with psycopg's %(param)s style.
-- Block names follow the driver operations that use them.

-- name: job_defer_many
-- Bulk insert from one JSON array of jobs. Jobs with a lock are inserted
-- waiting; job_lock_rebalance_* then picks the active one. Ids are assigned
-- in input order. A job without headers has no "headers" key: NULL.
INSERT INTO pa_jobs (
    queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at, lock_waiting,
    headers
)
SELECT j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args,
       j.scheduled_at, j.lock IS NOT NULL, j.headers
FROM ROWS FROM (
    jsonb_to_recordset(%(jobs)s::jsonb) AS (
        queue_name text, task_name text, priority integer, lock text,
        queueing_lock text, args jsonb, scheduled_at timestamptz, headers jsonb
    )
) WITH ORDINALITY AS j (
    queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at, headers, n
)
ORDER BY j.n
RETURNING id;

-- name: job_lock_acquire
-- Serialises the writers of the given locks (defer, finish, cancel) for the
-- rest of the transaction. Sorted, so two writers never deadlock.
SELECT pg_advisory_xact_lock(hashtextextended('pa_jobs.lock:' || lock, 0))
FROM (SELECT DISTINCT unnest(%(locks)s::text[]) AS lock ORDER BY 1) AS locks;

-- name: job_lock_rebalance_demote
-- For each free lock (no doing job), demote an active todo job that is not
-- the lock's candidate any more (a job of higher priority arrived, say); see
-- pa_lock_candidate in schema.sql. A job retried by hand joins the line.
WITH locks AS (SELECT DISTINCT unnest(%(locks)s::text[]) AS lock),
best AS (
    SELECT locks.lock, b.id
    FROM locks
    CROSS JOIN LATERAL (SELECT pa_lock_candidate(locks.lock) AS id) AS b
    WHERE b.id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pa_jobs WHERE pa_jobs.lock = locks.lock AND status = 'doing'
    )
)
UPDATE pa_jobs SET lock_waiting = true
FROM best
WHERE pa_jobs.lock = best.lock AND pa_jobs.status = 'todo'
  AND NOT pa_jobs.lock_waiting AND pa_jobs.id <> best.id;

-- name: job_lock_rebalance_promote
-- For each lock with no active job, make its best candidate active.
WITH locks AS (SELECT DISTINCT unnest(%(locks)s::text[]) AS lock),
best AS (
    SELECT b.id
    FROM locks
    CROSS JOIN LATERAL (SELECT pa_lock_candidate(locks.lock) AS id) AS b
    WHERE b.id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pa_jobs
        WHERE pa_jobs.lock = locks.lock
          AND (status = 'doing' OR (status = 'todo' AND NOT lock_waiting))
    )
)
UPDATE pa_jobs SET lock_waiting = false
FROM best
WHERE pa_jobs.id = best.id;

-- name: job_get
SELECT * FROM pa_jobs WHERE id = %(job_id)s;

-- name: job_list
SELECT * FROM pa_jobs
WHERE (%(id)s::bigint IS NULL OR id = %(id)s::bigint)
  AND (%(queue)s::text IS NULL OR queue_name = %(queue)s::text)
  AND (%(task_name)s::text IS NULL OR task_name = %(task_name)s::text)
  AND (%(status)s::pa_job_status IS NULL OR status = %(status)s::pa_job_status)
  AND (%(lock)s::text IS NULL OR lock = %(lock)s::text)
  AND (%(queueing_lock)s::text IS NULL OR queueing_lock = %(queueing_lock)s::text)
  AND (%(worker_id)s::bigint IS NULL OR worker_id = %(worker_id)s::bigint)
ORDER BY id
LIMIT %(limit)s;

-- name: job_cancel
-- One job: todo -> cancelled (or deleted); doing + abort -> abort requested,
-- with a notification so that the worker running it hears at once.
-- Returns one row when the job exists: cancelled is true when this call
-- cancelled (or deleted) it or asked it to abort.
WITH target AS (
    SELECT id, status FROM pa_jobs WHERE id = %(job_id)s FOR UPDATE
),
deleted AS (
    DELETE FROM pa_jobs USING target
    WHERE pa_jobs.id = target.id AND target.status = 'todo' AND %(delete_job)s
    RETURNING pa_jobs.id
),
cancelled AS (
    UPDATE pa_jobs SET status = 'cancelled', finished_at = now(), lock_waiting = false
    FROM target
    WHERE pa_jobs.id = target.id AND target.status = 'todo' AND NOT %(delete_job)s
    RETURNING pa_jobs.id
),
aborted AS (
    UPDATE pa_jobs SET abort_requested = true
    FROM target
    WHERE pa_jobs.id = target.id AND target.status = 'doing' AND %(abort)s
    RETURNING pa_jobs.id, pg_notify('pa_events', json_build_object('t', 'abort', 'j', pa_jobs.id)::text)
)
SELECT EXISTS (SELECT 1 FROM deleted) OR EXISTS (SELECT 1 FROM cancelled)
       OR EXISTS (SELECT 1 FROM aborted) AS cancelled,
       target.status = 'todo' AS was_todo
FROM target;

-- name: job_fetch_many
-- The batch claim: up to %(limit)s ready jobs in one round trip.
WITH picked AS MATERIALIZED (
    SELECT id FROM pa_jobs
    WHERE status = 'todo' AND NOT lock_waiting
      AND (scheduled_at IS NULL OR scheduled_at <= now())
      -- Paused queues: one read of the (tiny) table, not one per row. The
      -- NOT EXISTS first: with one queue name in the table, the planner
      -- takes "<> ALL" to exclude nearly every row and sorts the whole
      -- ready set instead of reading its index (47 ms instead of 0.2 ms per
      -- claim at 100,000 jobs).
      AND (NOT EXISTS (SELECT FROM pa_queue_pauses)
           OR queue_name <> ALL (ARRAY(SELECT queue_name FROM pa_queue_pauses)))
    ORDER BY priority DESC, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE pa_jobs
SET status = 'doing', worker_id = %(worker_id)s, started_at = now(),
    abort_requested = false
FROM picked
WHERE pa_jobs.id = picked.id
  -- By primary key: a generic plan would otherwise join a full table scan.
  AND pa_jobs.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING pa_jobs.*;

-- name: job_fetch_many_queues
-- The batch claim restricted to some queues: the best %(limit)s of each queue
-- (an ordered index scan each, so the cost does not grow with the backlog),
-- then the best %(limit)s of those. Rows locked but not picked are released
-- at commit.
WITH picked AS MATERIALIZED (
    SELECT candidate.id
    -- EXCEPT removes duplicates (a queue listed twice would yield its rows
    -- twice) and the paused queues.
    FROM (
        SELECT unnest(%(queues)s::text[]) EXCEPT SELECT queue_name FROM pa_queue_pauses
    ) AS queue (name)
    CROSS JOIN LATERAL (
        SELECT id, priority FROM pa_jobs
        WHERE queue_name = queue.name AND status = 'todo' AND NOT lock_waiting
          AND (scheduled_at IS NULL OR scheduled_at <= now())
        ORDER BY priority DESC, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS candidate
    ORDER BY candidate.priority DESC, candidate.id
    LIMIT %(limit)s
)
UPDATE pa_jobs
SET status = 'doing', worker_id = %(worker_id)s, started_at = now(),
    abort_requested = false
FROM picked
WHERE pa_jobs.id = picked.id
  -- By primary key: a generic plan would otherwise join a full table scan.
  AND pa_jobs.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING pa_jobs.*;

-- name: job_finish_many
-- Batched completion: one statement for many outcomes, guarded by the
-- current status (and owner and attempt token, when given) so that a job
-- finished elsewhere, or recovered and claimed again (even by the same
-- worker), is left alone: its id is returned in "refused". A retried job goes back to
-- todo; it keeps its place on its lock unless the retry moves it to another
-- lock. One notification lists the finished jobs that someone waits for
-- (wait_for_job); none is sent when nobody waits.
WITH outcome AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(%(outcomes)s::jsonb) AS o (
        id bigint, status pa_job_status, result jsonb, error_type text,
        error_message text, error_traceback text, retry_at timestamptz,
        retry_priority integer, retry_queue text, retry_lock text,
        delete_job boolean, worker_id bigint, started_at timestamptz,
        recovered boolean, released boolean
    )
),
deleted AS (
    DELETE FROM pa_jobs USING outcome AS o
    WHERE pa_jobs.id = o.id AND o.delete_job AND pa_jobs.status = 'doing'
      AND pa_jobs.id = ANY(ARRAY(SELECT id FROM outcome WHERE delete_job))
      AND (o.worker_id IS NULL OR pa_jobs.worker_id = o.worker_id)
      AND (o.started_at IS NULL OR pa_jobs.started_at = o.started_at)
    RETURNING pa_jobs.id
),
updated AS (
    UPDATE pa_jobs SET
        status = o.status,
        -- Counts the attempts that ended (Procrastinate's meaning): 0 while
        -- the first one runs. A released job (claimed, never started) did
        -- not attempt.
        attempts = pa_jobs.attempts + CASE WHEN o.released THEN 0 ELSE 1 END,
        result = o.result,
        error_type = o.error_type,
        error_message = o.error_message,
        error_traceback = o.error_traceback,
        finished_at = CASE WHEN o.status = 'todo' THEN NULL ELSE now() END,
        -- A retried job is due at its retry time (now, when none): the
        -- start of its wait in the queue.
        scheduled_at = CASE WHEN o.status = 'todo' THEN coalesce(o.retry_at, now())
                       ELSE pa_jobs.scheduled_at END,
        priority = CASE WHEN o.status = 'todo' THEN coalesce(o.retry_priority, pa_jobs.priority)
                   ELSE pa_jobs.priority END,
        queue_name = CASE WHEN o.status = 'todo' THEN coalesce(o.retry_queue, pa_jobs.queue_name)
                     ELSE pa_jobs.queue_name END,
        lock = CASE WHEN o.status = 'todo' THEN coalesce(o.retry_lock, pa_jobs.lock)
               ELSE pa_jobs.lock END,
        lock_waiting = o.status = 'todo' AND o.retry_lock IS NOT NULL
                       AND o.retry_lock IS DISTINCT FROM pa_jobs.lock,
        recoveries = pa_jobs.recoveries + CASE WHEN o.recovered THEN 1 ELSE 0 END
    FROM outcome AS o
    WHERE pa_jobs.id = o.id AND o.delete_job IS NOT TRUE AND pa_jobs.status = 'doing'
      -- By primary key, whatever the planner thinks of the doing rows.
      AND pa_jobs.id = ANY(ARRAY(SELECT id FROM outcome WHERE delete_job IS NOT TRUE))
      AND (o.worker_id IS NULL OR pa_jobs.worker_id = o.worker_id)
      AND (o.started_at IS NULL OR pa_jobs.started_at = o.started_at)
    RETURNING pa_jobs.id, pa_jobs.status
),
finished AS (
    SELECT id FROM deleted
    UNION ALL
    SELECT id FROM updated WHERE status <> 'todo'
),
payload AS (
    SELECT json_build_object('t', 'finished', 'j', json_agg(f.id))::text AS p
    FROM finished AS f
    WHERE EXISTS (SELECT 1 FROM pa_job_waiters AS w WHERE w.job_id = f.id)
    HAVING count(*) > 0
)
SELECT
    ARRAY(
        SELECT id FROM outcome
        EXCEPT SELECT id FROM deleted
        EXCEPT SELECT id FROM updated
    ) AS refused,
    (SELECT pg_notify(
        'pa_events', CASE WHEN octet_length(p) > 7000 THEN '{"t":"finished"}' ELSE p END
    ) FROM payload) IS NULL AS silent;

-- name: job_abort_requested_many
SELECT id FROM pa_jobs WHERE id = ANY(%(job_ids)s::bigint[]) AND abort_requested;

-- name: listen
LISTEN pa_events;

-- name: job_wait_begin
INSERT INTO pa_job_waiters (job_id) VALUES (%(job_id)s) RETURNING id;

-- name: job_wait_end
DELETE FROM pa_job_waiters WHERE id = %(waiter_id)s;

-- name: job_waiters_prune
-- Waiters that vanished without saying so (a killed process).
DELETE FROM pa_job_waiters WHERE created_at < now() - interval '1 day';

-- name: job_retry_conflicts
-- Jobs about to be retried whose queueing lock is taken by a waiting job, or
-- by a retrying job of the same batch with a smaller id: they fail instead
-- of going back to todo (the waiting job will do the same work).
SELECT j.id FROM pa_jobs AS j
WHERE j.id = ANY(%(job_ids)s::bigint[]) AND j.queueing_lock IS NOT NULL
  AND (
      EXISTS (
          SELECT 1 FROM pa_jobs AS t
          WHERE t.queueing_lock = j.queueing_lock AND t.status = 'todo'
      )
      OR EXISTS (
          SELECT 1 FROM pa_jobs AS e
          WHERE e.id = ANY(%(job_ids)s::bigint[]) AND e.id < j.id
            AND e.queueing_lock = j.queueing_lock
      )
  );

-- name: job_retry
-- Manual retry of a failed, aborted or cancelled job. A job with a lock
-- joins its lock's line (the caller rebalances the lock). Due at retry_at,
-- or now: the start of its wait in the queue.
UPDATE pa_jobs SET
    status = 'todo',
    scheduled_at = coalesce(%(retry_at)s, now()),
    priority = coalesce(%(priority)s, priority),
    queue_name = coalesce(%(queue)s, queue_name),
    lock = coalesce(%(lock)s, lock),
    lock_waiting = coalesce(%(lock)s, lock) IS NOT NULL,
    finished_at = NULL,
    abort_requested = false
WHERE id = %(job_id)s AND status IN ('failed', 'aborted', 'cancelled')
RETURNING id, lock,
    pg_notify('pa_events', json_build_object('t', 'defer', 'q', json_build_array(queue_name))::text);

-- name: job_stats
-- Job counts by status per queue, task or lock, sorted by code point
-- (whatever the database's collation), like the in-memory driver.
SELECT * FROM (
    SELECT
        CASE %(group_by)s WHEN 'queue' THEN queue_name WHEN 'task' THEN task_name ELSE lock END
            AS name,
        count(*) AS jobs_count,
        count(*) FILTER (WHERE status = 'todo') AS todo,
        count(*) FILTER (WHERE status = 'doing') AS doing,
        count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
        count(*) FILTER (WHERE status = 'aborted') AS aborted
    FROM pa_jobs
    WHERE (%(group_by)s <> 'lock' OR lock IS NOT NULL)
      AND (%(queue)s::text IS NULL OR queue_name = %(queue)s::text)
      AND (%(task_name)s::text IS NULL OR task_name = %(task_name)s::text)
      AND (%(status)s::pa_job_status IS NULL OR status = %(status)s::pa_job_status)
      AND (%(lock)s::text IS NULL OR lock = %(lock)s::text)
    GROUP BY 1
) AS groups
ORDER BY name COLLATE "C"
LIMIT %(limit)s;

-- name: job_delete_old
WITH deleted AS (
    DELETE FROM pa_jobs
    WHERE status = ANY(%(statuses)s::pa_job_status[])
      AND finished_at < now() - %(older_than)s::interval
      AND (%(queue)s::text IS NULL OR queue_name = %(queue)s::text)
    RETURNING 1
)
SELECT count(*) AS deleted FROM deleted;

-- name: job_next_scheduled_at
SELECT min(scheduled_at) AS next FROM pa_jobs
WHERE status = 'todo' AND scheduled_at > now()
  AND (%(queues)s::text[] IS NULL OR queue_name = ANY(%(queues)s::text[]))
  AND (NOT EXISTS (SELECT FROM pa_queue_pauses)
       OR queue_name <> ALL (ARRAY(SELECT queue_name FROM pa_queue_pauses)));

-- name: job_locks_due
-- Locks with a never-started job that just became due and no active job:
-- those jobs were not candidates when their lock was last rebalanced.
SELECT DISTINCT w.lock FROM pa_jobs AS w
WHERE w.status = 'todo' AND w.lock_waiting AND w.attempts = 0
  AND w.scheduled_at <= now()
  AND NOT EXISTS (
      SELECT 1 FROM pa_jobs AS a
      WHERE a.lock = w.lock AND (a.status = 'doing' OR (a.status = 'todo' AND NOT a.lock_waiting))
  )
LIMIT 100;

-- name: periodic_tick_claim
-- Exactly once per tick: the primary key lets one worker in.
INSERT INTO pa_periodic_defers (task_name, periodic_id, defer_timestamp)
VALUES (%(task_name)s, %(periodic_id)s, %(defer_timestamp)s)
ON CONFLICT DO NOTHING
RETURNING defer_timestamp;

-- name: periodic_tick_done
WITH done AS (
    UPDATE pa_periodic_defers SET job_id = %(job_id)s
    WHERE task_name = %(task_name)s AND periodic_id = %(periodic_id)s
      AND defer_timestamp = %(defer_timestamp)s
)
DELETE FROM pa_periodic_defers
WHERE task_name = %(task_name)s AND periodic_id = %(periodic_id)s
  AND defer_timestamp < %(keep_after)s;

-- name: maintenance_try_lock
-- One maintenance pass at a time across workers; the others skip theirs.
SELECT pg_try_advisory_xact_lock(hashtextextended('pa_maintenance', 0)) AS leader;

-- name: job_list_stalled
-- Doing jobs whose worker stopped heartbeating (or whose row is gone).
SELECT * FROM pa_jobs AS j
WHERE status = 'doing'
  AND NOT EXISTS (
      SELECT 1 FROM pa_workers AS w
      WHERE w.id = j.worker_id
        AND w.last_heartbeat > now() - make_interval(secs => %(seconds)s)
  )
ORDER BY id
FOR UPDATE SKIP LOCKED;

-- name: worker_prune_dead
WITH pruned AS (
    DELETE FROM pa_workers
    WHERE last_heartbeat < now() - make_interval(secs => %(seconds)s)
    RETURNING id
)
SELECT count(*) AS pruned FROM pruned;

-- name: worker_register
INSERT INTO pa_workers (name, queues) VALUES (%(name)s, %(queues)s) RETURNING id;

-- name: worker_register_again
-- A live worker whose row was pruned takes its id back, so its running jobs
-- still point at it.
INSERT INTO pa_workers (id, name, queues) OVERRIDING SYSTEM VALUE
VALUES (%(worker_id)s, %(name)s, %(queues)s)
ON CONFLICT (id) DO UPDATE SET last_heartbeat = now()
RETURNING id;

-- name: worker_heartbeat
UPDATE pa_workers SET last_heartbeat = now() WHERE id = %(worker_id)s RETURNING id;

-- name: worker_unregister
DELETE FROM pa_workers WHERE id = %(worker_id)s;

-- name: schema_applied_migrations
SELECT name FROM pa_schema_migrations ORDER BY name;

-- name: schema_table_exists
SELECT to_regclass(%(name)s) IS NOT NULL AS exists;

-- name: schema_record_migrations
INSERT INTO pa_schema_migrations (name)
SELECT unnest(%(names)s::text[])
ON CONFLICT (name) DO NOTHING;

-- name: schema_lock
SELECT pg_advisory_xact_lock(hashtextextended('pa_schema_migrations', 0));

-- name: queue_pause
-- Workers skip a paused queue's jobs from their next claim on; deferring to
-- it still works. True when this call paused it.
INSERT INTO pa_queue_pauses (queue_name) VALUES (%(queue)s)
ON CONFLICT (queue_name) DO NOTHING
RETURNING queue_name;

-- name: queue_resume
-- Its jobs may be ready: wake the listening workers of that queue.
WITH resumed AS (
    DELETE FROM pa_queue_pauses WHERE queue_name = %(queue)s RETURNING queue_name
)
SELECT pg_notify('pa_events', json_build_object('t', 'defer', 'q', json_build_array(queue_name))::text)
FROM resumed;

-- name: queue_list_paused
SELECT queue_name, paused_at FROM pa_queue_pauses ORDER BY convert_to(queue_name, 'UTF8');

-- name: job_fetch_limited
-- The claim under global limits, in one round trip: see pa_claim_limited
-- in schema.sql (the limits' locks, their room, the pick, the claim and the
-- starts, in the statement's own transaction).
SELECT * FROM pa_claim_limited(
    %(worker_id)s, %(limit)s, %(scan)s, %(queues)s::text[], %(limits)s::jsonb
);

-- name: job_limit_starts_prune
-- Starts older than the longest rate period (an hour) count for nothing.
DELETE FROM pa_limit_starts WHERE started_at < now() - interval '61 minutes';

-- name: connection_backend_pid
-- The server process behind this connection: a pooler (PgBouncer) gives its
-- clients a backend key of its own, so this differs from the one libpq got.
SELECT pg_backend_pid() AS pid;

-- name: listen_probe
-- Sent from another connection right after LISTEN: the listener must hear it,
-- which it does not through a pooler in transaction mode.
SELECT pg_notify('pa_events', %(payload)s);

-- Moving Procrastinate's waiting jobs into ours (job_move_from_procrastinate).
-- They read Procrastinate 3.x's own tables, which are not ours: only this
-- operation touches them, in one transaction.

-- name: procrastinate_move_tables
SELECT to_regclass('pa_jobs') IS NOT NULL AS pa_jobs,
       to_regclass('procrastinate_jobs') IS NOT NULL AS procrastinate_jobs,
       to_regclass('procrastinate_events') IS NOT NULL AS procrastinate_events,
       to_regclass('procrastinate_periodic_defers') IS NOT NULL
           AS procrastinate_periodic_defers,
       to_regclass('procrastinate_workers') IS NOT NULL AS procrastinate_workers;

-- name: procrastinate_move_active_workers
SELECT count(*) AS active FROM procrastinate_workers
WHERE last_heartbeat > now() - make_interval(secs => %(seconds)s);

-- name: procrastinate_move_doing
-- Running jobs stay where they are; their locks keep the waiting jobs of
-- the same lock there too (moved, they could run beside them).
SELECT count(*) AS doing,
       coalesce(array_agg(DISTINCT lock) FILTER (WHERE lock IS NOT NULL), '{}') AS locks
FROM procrastinate_jobs WHERE status = 'doing';

-- name: procrastinate_move_candidates
-- Row locks: a Procrastinate worker (whose claim skips locked rows) cannot
-- take them meanwhile, and a second move waits, then finds them gone.
SELECT id, lock, queueing_lock,
       coalesce(scheduled_at > now(), false) AS future,
       char_length(queue_name) BETWEEN 1 AND 255
           AND char_length(task_name) BETWEEN 1 AND 255
           AND jsonb_typeof(args) = 'object' AS valid
FROM procrastinate_jobs
WHERE status = 'todo'
ORDER BY id
FOR UPDATE;

-- name: procrastinate_move_queueing_locks_taken
SELECT queueing_lock FROM pa_jobs
WHERE status = 'todo' AND queueing_lock = ANY (%(locks)s::text[]);

-- name: procrastinate_move_jobs
-- Ids are assigned in Procrastinate's id order; attempts keep their meaning
-- (ours count the ended attempts, as Procrastinate's); created_at is when
-- Procrastinate recorded the defer. Jobs with a lock are inserted waiting,
-- as by job_defer_many.
INSERT INTO pa_jobs (
    queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at,
    attempts, created_at, lock_waiting
)
SELECT j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args,
       j.scheduled_at, j.attempts,
       coalesce(
           (SELECT min(e.at) FROM procrastinate_events AS e
            WHERE e.job_id = j.id AND e.type = 'deferred'),
           now()
       ),
       j.lock IS NOT NULL
FROM procrastinate_jobs AS j
WHERE j.id = ANY (%(ids)s::bigint[])
ORDER BY j.id
RETURNING id;

-- name: procrastinate_move_periodic_count
SELECT count(*) AS ticks FROM procrastinate_periodic_defers AS p
WHERE p.defer_timestamp IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM pa_periodic_defers AS o
    WHERE o.task_name = p.task_name AND o.periodic_id = p.periodic_id
      AND o.defer_timestamp = p.defer_timestamp
);

-- name: procrastinate_move_periodic
-- The deferred ticks, so that our periodic deferrer does not defer them
-- again; a moved tick's job is its new id. Procrastinate's rows stay.
INSERT INTO pa_periodic_defers (task_name, periodic_id, defer_timestamp, job_id)
SELECT p.task_name, p.periodic_id, p.defer_timestamp, m.new_id
FROM procrastinate_periodic_defers AS p
LEFT JOIN unnest(%(old_ids)s::bigint[], %(new_ids)s::bigint[]) AS m (old_id, new_id)
    ON m.old_id = p.job_id
WHERE p.defer_timestamp IS NOT NULL
ON CONFLICT DO NOTHING
RETURNING defer_timestamp;

-- name: procrastinate_move_delete
DELETE FROM procrastinate_jobs WHERE id = ANY (%(ids)s::bigint[]);
