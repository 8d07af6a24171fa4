-- The refresh: rows whose vector is missing, of another model or version,
-- too old, or of an old text, are queued at low priority by the worker's
-- periodic call of enqueue_stale_embeddings.

-- Queues rows whose vector is missing or was made by another model or
-- profile-text version, or (p_older_than) is older than that (jobs only
-- while they can still be matched): low priority,
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
    -- A refresh is low priority (1 or more: what claim_embedding_backfill
    -- takes, after fresh edits): below 1 it would jump the edits, and below 0
    -- no claim ever hands a row out, while the refresh and a model switch find
    -- it queued already. The limit, if any, is a positive number of rows.
    IF p_priority IS NULL OR p_priority < 1 OR p_priority > 32767 OR p_limit < 1 THEN
        RAISE EXCEPTION 'enqueue_stale_embeddings: priority must be 1-32767 and limit at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO s FROM jobmatch_settings;
    INSERT INTO embedding_queue (entity_type, entity_id, priority, reembed)
    SELECT 'job', j.id, p_priority,
           coalesce(j.job_embedding_updated_at < now() - p_older_than, false)
    FROM canonical_jobs AS j
    WHERE (j.job_embedding IS NULL
           OR j.job_embedding_model IS DISTINCT FROM v_model
           OR j.embedding_version IS DISTINCT FROM s.profile_text_version
           OR j.job_embedding_updated_at < now() - p_older_than)
      -- only jobs that can still be matched (jobmatch_worth_embedding)
      AND j.posted_date >= current_date - s.match_window_days - s.embed_margin_days
      AND NOT EXISTS (SELECT 1 FROM embedding_queue AS q
                      WHERE q.entity_type = 'job' AND q.entity_id = j.id)
      -- a dead letter waits for a new text or requeue_dead_letters(), not a refresh
      AND NOT EXISTS (SELECT 1 FROM embedding_dead_letter AS d
                      WHERE d.entity_type = 'job' AND d.entity_id = j.id)
    ORDER BY j.posted_date DESC NULLS LAST
    LIMIT p_limit
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_jobs = ROW_COUNT;
    INSERT INTO embedding_queue (entity_type, entity_id, priority, reembed)
    SELECT 'user', u.user_id, p_priority,
           coalesce(u.embedding_updated_at < now() - p_older_than, false)
    FROM user_preferences AS u
    WHERE u.user_id IS NOT NULL
      -- a hash without a vector: a seeker with nothing to embed
      AND ((u.user_embedding IS NULL AND u.embedding_hash IS NULL)
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

-- Is a row's vector made from its current text? Yes if the row was not
-- modified since its vector was written (its xmin is still the stamp the
-- write-back left), otherwise if its stored hash is its current text's.
-- The stamp saves rebuilding the text of every untouched row.
CREATE OR REPLACE FUNCTION jobmatch_job_vector_is_current(j canonical_jobs, row_xmin xid)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(row_xmin = j.job_embedding_xmin, false)
        OR coalesce(j.job_embedding_hash = jobmatch_text_hash(jobmatch_job_profile_text(j)), false)
$$;

CREATE OR REPLACE FUNCTION jobmatch_user_vector_is_current(u user_preferences, row_xmin xid)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(row_xmin = u.embedding_xmin, false)
        OR coalesce(u.embedding_hash = jobmatch_text_hash(jobmatch_user_profile_text(u)), false)
$$;

-- One step of the stale-text sweep (see enqueue_stale_embeddings): looks at
-- the next p_rows rows of each table after its cursor in
-- jobmatch_stale_sweep. Rows holding a vector of the active model that were
-- modified since it was written are checked: of an old text -> queued; still
-- current -> stamped, so they are not checked again. Rows another
-- transaction holds wait for the next pass. Returns the rows queued.
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
    WITH scanned AS MATERIALIZED (
        SELECT j.id,
               j.job_embedding_model = p_model
               AND j.xmin IS DISTINCT FROM j.job_embedding_xmin AS modified
        FROM canonical_jobs AS j
        WHERE v_from IS NULL OR j.id > v_from
        ORDER BY j.id
        LIMIT p_rows
    ), checked AS MATERIALIZED (
        SELECT j.id, jobmatch_job_vector_is_current(j, NULL) AS current
        FROM canonical_jobs AS j
        WHERE j.id IN (SELECT s.id FROM scanned AS s WHERE s.modified)
        FOR NO KEY UPDATE OF j SKIP LOCKED
    ), stamped AS (
        UPDATE canonical_jobs AS j
        SET job_embedding_xmin = pg_current_xact_id()::xid
        FROM checked AS c
        WHERE j.id = c.id AND c.current
    )
    SELECT (SELECT count(*) FROM scanned), (SELECT max(s.id) FROM scanned AS s),
           (SELECT array_agg(c.id) FROM checked AS c WHERE NOT c.current)
    INTO v_seen, v_last, v_stale;
    INSERT INTO embedding_queue (entity_type, entity_id, priority)
    SELECT 'job', i.id, p_priority FROM unnest(v_stale) AS i (id)
    WHERE NOT EXISTS (SELECT 1 FROM embedding_dead_letter AS d
                      WHERE d.entity_type = 'job' AND d.entity_id = i.id)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_queued := v_queued + v_count;
    UPDATE jobmatch_stale_sweep
    SET last_id = CASE WHEN v_seen < p_rows THEN NULL ELSE v_last END, swept_at = now()
    WHERE entity_type = 'job';

    SELECT c.last_id INTO v_from FROM jobmatch_stale_sweep AS c
    WHERE c.entity_type = 'user' FOR UPDATE;
    WITH scanned AS MATERIALIZED (
        SELECT u.user_id,
               u.embedding_model = p_model
               AND u.xmin IS DISTINCT FROM u.embedding_xmin AS modified
        FROM user_preferences AS u
        WHERE v_from IS NULL OR u.user_id > v_from
        ORDER BY u.user_id
        LIMIT p_rows
    ), checked AS MATERIALIZED (
        SELECT u.user_id, jobmatch_user_vector_is_current(u, NULL) AS current
        FROM user_preferences AS u
        WHERE u.user_id IN (SELECT s.user_id FROM scanned AS s WHERE s.modified)
        FOR NO KEY UPDATE OF u SKIP LOCKED
    ), stamped AS (
        UPDATE user_preferences AS u
        SET embedding_xmin = pg_current_xact_id()::xid
        FROM checked AS c
        WHERE u.user_id = c.user_id AND c.current
    )
    SELECT (SELECT count(*) FROM scanned), (SELECT max(s.user_id) FROM scanned AS s),
           (SELECT array_agg(c.user_id) FROM checked AS c WHERE NOT c.current)
    INTO v_seen, v_last, v_stale;
    INSERT INTO embedding_queue (entity_type, entity_id, priority)
    SELECT 'user', i.id, p_priority FROM unnest(v_stale) AS i (id)
    WHERE NOT EXISTS (SELECT 1 FROM embedding_dead_letter AS d
                      WHERE d.entity_type = 'user' AND d.entity_id = i.id)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_queued := v_queued + v_count;
    UPDATE jobmatch_stale_sweep
    SET last_id = CASE WHEN v_seen < p_rows THEN NULL ELSE v_last END, swept_at = now()
    WHERE entity_type = 'user';
    RETURN v_queued;
END
$$;
