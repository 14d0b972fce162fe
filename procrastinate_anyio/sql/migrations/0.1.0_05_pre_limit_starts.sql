-- Migration 0.1.0_05: global limits: the starts of rate-limited jobs, and
-- the claim under limits.

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
