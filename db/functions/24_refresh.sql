-- The refresh: rows whose vector is missing, of another model or version,
-- too old, or of an old text, are queued at low priority by the worker's
-- periodic call of enqueue_stale_embeddings.

-- Queues rows whose vector is missing or was made by another model or
-- profile-text version, or (p_older_than) is older than that: low priority,
-- at most p_limit rows per table, so refreshing never starves new work. Then
-- the sweep: the next jobmatch_settings.stale_sweep_rows rows of each table
-- (by id, from where the last call stopped, wrapping around) whose vector is
-- of an old text are queued too. The triggers queue every text change, but
-- a session can bypass them (ALTER TABLE ... DISABLE TRIGGER,
-- session_replication_role = replica, pg_restore --disable-triggers): the
-- sweep finds such rows within one pass, at a bounded cost per call.
CREATE OR REPLACE FUNCTION enqueue_stale_embeddings(
    p_older_than interval DEFAULT NULL,
    p_priority integer DEFAULT 1,
    p_limit integer DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_model text := (active_embedding_model()).model;
    s jobmatch_settings;
    v_jobs integer;
    v_users integer;
    v_swept integer;
BEGIN
    SELECT * INTO s FROM jobmatch_settings;
    INSERT INTO embedding_queue (entity_type, entity_id, priority)
    SELECT 'job', j.id, p_priority FROM canonical_jobs AS j
    WHERE (j.job_embedding IS NULL
           OR j.job_embedding_model IS DISTINCT FROM v_model
           OR j.embedding_version IS DISTINCT FROM s.profile_text_version
           OR j.job_embedding_updated_at < now() - p_older_than)
      AND NOT EXISTS (SELECT 1 FROM embedding_queue AS q
                      WHERE q.entity_type = 'job' AND q.entity_id = j.id)
      -- a dead letter waits for a new text or requeue_dead_letters(), not a refresh
      AND NOT EXISTS (SELECT 1 FROM embedding_dead_letter AS d
                      WHERE d.entity_type = 'job' AND d.entity_id = j.id)
    ORDER BY j.posted_date DESC NULLS LAST
    LIMIT p_limit
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_jobs = ROW_COUNT;
    INSERT INTO embedding_queue (entity_type, entity_id, priority)
    SELECT 'user', u.user_id, p_priority FROM user_preferences AS u
    WHERE u.user_id IS NOT NULL
      AND (u.user_embedding IS NULL
           OR u.embedding_model IS DISTINCT FROM v_model
           OR u.embedding_version IS DISTINCT FROM s.profile_text_version
           OR u.embedding_updated_at < now() - p_older_than)
      AND NOT EXISTS (SELECT 1 FROM embedding_queue AS q
                      WHERE q.entity_type = 'user' AND q.entity_id = u.user_id)
      AND NOT EXISTS (SELECT 1 FROM embedding_dead_letter AS d
                      WHERE d.entity_type = 'user' AND d.entity_id = u.user_id)
    LIMIT p_limit
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_users = ROW_COUNT;
    v_swept := jobmatch_sweep_stale_texts(v_model, s.stale_sweep_rows, p_priority);
    IF v_jobs + v_users + v_swept > 0 THEN
        PERFORM pg_notify('jobmatch_embedding_queue', 'refresh');
    END IF;
    RETURN v_jobs + v_users + v_swept;
END
$$;

-- One step of the stale-text sweep (see enqueue_stale_embeddings): checks
-- the next p_rows rows of each table after its cursor in
-- jobmatch_stale_sweep and queues those holding a vector of the active model
-- whose hash is not their current text's. Returns the rows queued.
CREATE OR REPLACE FUNCTION jobmatch_sweep_stale_texts(
    p_model text, p_rows integer, p_priority integer
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_from bigint;
    v_last bigint;
    v_seen integer;
    v_stale bigint[];
    v_queued integer := 0;
    v_count integer;
BEGIN
    IF coalesce(p_rows, 0) < 1 THEN
        RETURN 0;
    END IF;
    -- jobs: one cursor row, locked so two workers' refreshes take turns
    SELECT c.last_id INTO v_from FROM jobmatch_stale_sweep AS c
    WHERE c.entity_type = 'job' FOR UPDATE;
    SELECT count(*), max(r.id),
           array_agg(r.id) FILTER (
               WHERE r.job_embedding_model = p_model
                 AND r.job_embedding_hash IS DISTINCT FROM jobmatch_text_hash(r.profile_text))
    INTO v_seen, v_last, v_stale
    FROM (
        SELECT j.id, j.job_embedding_model, j.job_embedding_hash,
               CASE WHEN j.job_embedding_model = p_model THEN job_profile_text(j) END
                   AS profile_text
        FROM canonical_jobs AS j
        WHERE v_from IS NULL OR j.id > v_from
        ORDER BY j.id
        LIMIT p_rows
    ) AS r;
    INSERT INTO embedding_queue (entity_type, entity_id, priority)
    SELECT 'job', id, p_priority FROM unnest(v_stale) AS id
    WHERE NOT EXISTS (SELECT 1 FROM embedding_dead_letter AS d
                      WHERE d.entity_type = 'job' AND d.entity_id = id)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_queued := v_queued + v_count;
    UPDATE jobmatch_stale_sweep
    SET last_id = CASE WHEN v_seen < p_rows THEN NULL ELSE v_last END, swept_at = now()
    WHERE entity_type = 'job';

    SELECT c.last_id INTO v_from FROM jobmatch_stale_sweep AS c
    WHERE c.entity_type = 'user' FOR UPDATE;
    SELECT count(*), max(r.user_id),
           array_agg(r.user_id) FILTER (
               WHERE r.embedding_model = p_model
                 AND r.embedding_hash IS DISTINCT FROM jobmatch_text_hash(r.profile_text))
    INTO v_seen, v_last, v_stale
    FROM (
        SELECT u.user_id, u.embedding_model, u.embedding_hash,
               CASE WHEN u.embedding_model = p_model THEN user_profile_text(u) END
                   AS profile_text
        FROM user_preferences AS u
        WHERE v_from IS NULL OR u.user_id > v_from
        ORDER BY u.user_id
        LIMIT p_rows
    ) AS r;
    INSERT INTO embedding_queue (entity_type, entity_id, priority)
    SELECT 'user', id, p_priority FROM unnest(v_stale) AS id
    WHERE NOT EXISTS (SELECT 1 FROM embedding_dead_letter AS d
                      WHERE d.entity_type = 'user' AND d.entity_id = id)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_queued := v_queued + v_count;
    UPDATE jobmatch_stale_sweep
    SET last_id = CASE WHEN v_seen < p_rows THEN NULL ELSE v_last END, swept_at = now()
    WHERE entity_type = 'user';
    RETURN v_queued;
END
$$;
