-- Least privilege. The bot may only call match_jobs; the worker may only
-- use the queue API and its write path; everything else stays with the
-- owner that runs migrations. Functions that cross those lines are
-- SECURITY DEFINER with a pinned search_path, so callers need no table
-- rights and cannot redirect them through objects of their own.

-- Runs on every deploy (below): the CREATE OR REPLACE in the other files
-- resets these attributes, so they are applied again after them.
CREATE OR REPLACE FUNCTION jobmatch_secure_functions()
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    fn text;
    -- Called by roles that must not touch the tables directly.
    definer text[] := ARRAY[
        'match_jobs(bigint, integer)',
        'claim_embedding_batch(text, integer, interval)',
        'complete_embeddings(text, text, text[], bigint[], uuid[], vector[])',
        'fail_embeddings(text, text[], bigint[], text)',
        'release_embeddings(text, text[], bigint[])',
        'record_embedding_usage(text, bigint, bigint, bigint)',
        'enqueue_stale_embeddings(interval, integer, integer)',
        'active_embedding_model()',
        -- triggers run as whoever writes jobs or preferences: the queue is ours
        'enqueue_embeddings(text, bigint[])',
        'canonical_jobs_enqueue_changed()',
        'canonical_jobs_dequeue_deleted()',
        'user_preferences_enqueue_changed()',
        'user_preferences_dequeue_deleted()'
    ];
BEGIN
    FOREACH fn IN ARRAY definer LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = public, pg_temp', fn);
    END LOOP;
    -- PostgreSQL grants EXECUTE on new functions to PUBLIC; ours are not public.
    FOR fn IN
        SELECT p.oid::regprocedure::text
        FROM pg_proc AS p
        WHERE p.pronamespace = 'public'::regnamespace
          AND p.proname = ANY (ARRAY[
              'match_jobs', 'claim_embedding_batch', 'complete_embeddings', 'fail_embeddings',
              'release_embeddings', 'record_embedding_usage', 'enqueue_stale_embeddings',
              'enqueue_embeddings', 'requeue_dead_letters', 'set_embedding_model',
              'active_embedding_model', 'user_profile_text', 'job_profile_text',
              'job_match_reasons', 'user_keyword_query', 'user_role_query',
              'jobmatch_keyword_pool', 'jobmatch_nearest_jobs_sql', 'vector_index_ddl',
              'build_vector_index', 'record_vector_index_build',
              'canonical_jobs_enqueue_changed', 'canonical_jobs_dequeue_deleted',
              'user_preferences_enqueue_changed', 'user_preferences_dequeue_deleted',
              'jobmatch_setup_roles', 'jobmatch_secure_functions',
              'jobmatch_write_vectors', 'jobmatch_apply_vectors', 'jobmatch_sweep_stale_texts',
              'jobmatch_job_vector_is_current', 'jobmatch_user_vector_is_current',
              'jobmatch_worth_embedding', 'embedding_budget_state', 'jobmatch_claim',
              'claim_embedding_backfill', 'record_api_batch', 'finish_api_batch',
              'record_batch_usage'])
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
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
    END LOOP;

    EXECUTE format('GRANT EXECUTE ON FUNCTION match_jobs(bigint, integer) TO %I', p_bot_role);

    EXECUTE format('GRANT EXECUTE ON FUNCTION claim_embedding_batch(text, integer, interval),'
                   ' complete_embeddings(text, text, text[], bigint[], uuid[], vector[]),'
                   ' fail_embeddings(text, text[], bigint[], text),'
                   ' release_embeddings(text, text[], bigint[]),'
                   ' record_embedding_usage(text, bigint, bigint, bigint),'
                   ' enqueue_stale_embeddings(interval, integer, integer),'
                   ' active_embedding_model(),'
                   ' embedding_budget_state(text, bigint, numeric),'
                   ' claim_embedding_backfill(text, integer, interval),'
                   ' record_api_batch(text, text, text, text, text[], text[], bigint[], uuid[]),'
                   ' finish_api_batch(text, text, text),'
                   ' record_batch_usage(text, bigint, bigint) TO %I', p_worker_role);
    -- what the worker reads to check its model, its budget and its progress
    -- embedding_health: the worker's Prometheus gauges (--metrics-port)
    -- embedding_api_batches/_rows: what a restarted Batch API backfill resumes
    EXECUTE format('GRANT SELECT ON embedding_models, embedding_usage, embedding_queue,'
                   ' embedding_health, embedding_api_batches, embedding_api_batch_rows TO %I',
                   p_worker_role);
END
$$;

SELECT jobmatch_secure_functions();
