-- Least privilege. The bot may only call match_jobs, match_users and
-- next_job_alerts; the worker may only use the queue API and its write
-- path; everything else stays with the owner that runs migrations.
-- Functions that cross those lines are SECURITY DEFINER with a pinned
-- search_path, set on their own CREATE FUNCTION. This file creates roles and grants, nothing else.

-- Who may call what: the one list. Naming rule: the API has plain names,
-- internals begin with `jobmatch_` (tests/test_roles.py holds every
-- function of db/ to it). Callers: `bot` and `worker` (the roles below),
-- `owner` (the operator's commands and the triggers: nobody else), and
-- `public` for what PostgreSQL evaluates as whoever writes a job (the
-- generated keyword document of canonical_jobs).
CREATE OR REPLACE FUNCTION jobmatch_api()
RETURNS TABLE (function_name text, caller text)
LANGUAGE sql IMMUTABLE
AS $$
    VALUES
    ('match_jobs', 'bot'),
    ('match_users', 'bot'),
    ('next_job_alerts', 'bot'),
    ('claim_embedding_batch', 'worker'),
    ('claim_embedding_backfill', 'worker'),
    ('complete_embeddings', 'worker'),
    ('fail_embeddings', 'worker'),
    ('release_embeddings', 'worker'),
    ('record_embedding_usage', 'worker'),
    ('record_batch_usage', 'worker'),
    ('record_api_batch', 'worker'),
    ('finish_api_batch', 'worker'),
    ('enqueue_stale_embeddings', 'worker'),
    ('active_embedding_model', 'worker'),
    ('embedding_budget_state', 'worker'),
    ('claim_target_embeddings', 'worker'),
    ('complete_target_embeddings', 'worker'),
    ('fail_target_embeddings', 'worker'),
    ('release_target_embeddings', 'worker'),
    ('add_embedding_model', 'owner'),
    ('promote_embedding_model', 'owner'),
    ('drop_embedding_model', 'owner'),
    ('set_embedding_model', 'owner'),
    ('enqueue_embeddings', 'owner'),
    ('requeue_dead_letters', 'owner'),
    ('prune_jobs', 'owner'),
    ('vector_index_drift', 'owner'),
    ('canonical_jobs_enqueue_changed', 'owner'),
    ('canonical_jobs_dequeue_deleted', 'owner'),
    ('user_preferences_enqueue_changed', 'owner'),
    ('user_preferences_dequeue_deleted', 'owner'),
    ('jobmatch_job_document', 'public')
$$;

-- The catalog rule, run on every deploy: PostgreSQL grants EXECUTE on new
-- functions to PUBLIC; none of ours (the API above and every jobmatch_
-- function, whatever file defines it) keeps that grant unless listed as
-- `public`. Extension functions (pgvector's) are left alone.
CREATE OR REPLACE FUNCTION jobmatch_secure_functions()
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    fn regprocedure;
    v_public boolean;
BEGIN
    FOR fn, v_public IN
        SELECT p.oid::regprocedure, coalesce(a.caller = 'public', false)
        FROM pg_proc AS p
        LEFT JOIN jobmatch_api() AS a ON p.proname = a.function_name
        WHERE p.pronamespace = 'public'::regnamespace
          AND (a.function_name IS NOT NULL OR p.proname LIKE 'jobmatch\_%')
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                            AND d.deptype = 'e')
    LOOP
        IF v_public THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', fn);
        ELSE
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
        END IF;
    END LOOP;
END
$$;

-- Creates (if missing) the bot and worker roles, NOLOGIN: a DBA grants
-- them to login roles (GRANT jobmatch_bot TO whatsapp_bot). Names are
-- configurable (`jobmatch migrate --bot-role/--worker-role`).
CREATE OR REPLACE FUNCTION jobmatch_setup_roles(
    p_bot_role text DEFAULT 'jobmatch_bot',
    p_worker_role text DEFAULT 'jobmatch_worker'
)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    r text;
    fn regprocedure;
BEGIN
    FOREACH r IN ARRAY ARRAY[p_bot_role, p_worker_role] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object THEN
                NULL;  -- created concurrently by another deploy: fine
            END;
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);
        -- never CREATE: what the definer functions resolve names in
        -- (68_schema_guard.sql)
        EXECUTE format('REVOKE CREATE ON SCHEMA public FROM %I', r);
    END LOOP;

    FOR fn, r IN
        SELECT p.oid::regprocedure, CASE a.caller WHEN 'bot' THEN p_bot_role ELSE p_worker_role END
        FROM jobmatch_api() AS a
        JOIN pg_proc AS p ON p.proname = a.function_name
        WHERE a.caller IN ('bot', 'worker') AND p.pronamespace = 'public'::regnamespace
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, r);
    END LOOP;
    -- what the worker reads to check its model, its budget and its progress
    -- embedding_health: the worker's Prometheus gauges (--metrics-port)
    -- embedding_api_batches/_rows: what a restarted Batch API backfill resumes
    EXECUTE format('GRANT SELECT ON embedding_models, embedding_usage, embedding_queue,'
                   ' embedding_health, embedding_api_batches, embedding_api_batch_rows TO %I',
                   p_worker_role);
END
$$;

SELECT jobmatch_secure_functions();
