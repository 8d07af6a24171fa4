-- The embedding queue API. Triggers enqueue; the worker claims a batch,
-- embeds it outside any transaction, then completes or fails it.

CREATE OR REPLACE FUNCTION active_embedding_model()
RETURNS embedding_models
LANGUAGE sql STABLE
AS $$
    SELECT m FROM embedding_models AS m WHERE m.is_active
$$;

-- Records the model the database embeds with. The first call activates it;
-- a later call naming another model is refused unless p_switch, because
-- vectors of two models can never be compared.
CREATE OR REPLACE FUNCTION set_embedding_model(
    p_model text,
    p_provider text,
    p_dimensions integer,
    p_similarity_threshold double precision DEFAULT NULL,
    p_switch boolean DEFAULT FALSE
)
RETURNS embedding_models
LANGUAGE plpgsql
AS $$
DECLARE
    v_active embedding_models;
    v_row embedding_models;
BEGIN
    IF p_model IS NULL OR btrim(p_model) = '' OR p_dimensions IS NULL THEN
        RAISE EXCEPTION 'set_embedding_model: model and dimensions are required'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_active := active_embedding_model();
    SELECT * INTO v_row FROM embedding_models WHERE model = p_model;
    IF FOUND AND v_row.dimensions <> p_dimensions THEN
        RAISE EXCEPTION 'embedding model % is recorded with % dimensions, not %',
            p_model, v_row.dimensions, p_dimensions
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a distinct model name for another dimension, e.g. '
                         || p_model || '@' || p_dimensions;
    END IF;
    IF v_active.model IS NOT NULL AND v_active.model <> p_model AND NOT p_switch THEN
        RAISE EXCEPTION 'this database embeds with % (% dimensions), not %',
            v_active.model, v_active.dimensions, p_model
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Configure the worker for ' || v_active.model
                         || ', or switch models explicitly (every row is then re-embedded).';
    END IF;
    INSERT INTO embedding_models (model, provider, dimensions, similarity_threshold)
    VALUES (p_model, p_provider, p_dimensions, coalesce(p_similarity_threshold, 0.65))
    ON CONFLICT (model) DO UPDATE
        SET similarity_threshold = coalesce(p_similarity_threshold,
                                            embedding_models.similarity_threshold);
    IF v_active.model IS DISTINCT FROM p_model THEN
        UPDATE embedding_models SET is_active = false WHERE is_active;
        UPDATE embedding_models SET is_active = true WHERE model = p_model;
        IF v_active.model IS NOT NULL THEN
            PERFORM enqueue_stale_embeddings(NULL, 1);
        END IF;
    END IF;
    RETURN active_embedding_model();
END
$$;

-- Queues entities whose text changed. Coalesces with a pending row and
-- resets its backoff: a new text deserves a fresh try. One small NOTIFY per
-- call, not per row.
CREATE OR REPLACE FUNCTION enqueue_embeddings(
    p_entity_type text, p_entity_ids bigint[]
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_count integer;
BEGIN
    IF coalesce(cardinality(p_entity_ids), 0) = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO embedding_queue AS q (entity_type, entity_id)
    SELECT p_entity_type, id FROM unnest(p_entity_ids) AS id WHERE id IS NOT NULL
    ON CONFLICT (entity_type, entity_id) DO UPDATE
        SET priority = 0, attempts = 0, run_after = now(), last_error = NULL,
            -- the batch in flight holds the old text: its complete or fail
            -- must not touch the new one, and anyone may claim it now
            locked_by = NULL, locked_until = NULL,
            enqueued_at = CASE WHEN q.priority > 0 THEN now() ELSE q.enqueued_at END;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF EXISTS (SELECT 1 FROM embedding_dead_letter WHERE entity_type = p_entity_type) THEN
        DELETE FROM embedding_dead_letter
        WHERE entity_type = p_entity_type AND entity_id = ANY (p_entity_ids);
    END IF;
    IF v_count > 0 THEN
        PERFORM pg_notify('jobmatch_embedding_queue', p_entity_type);
    END IF;
    RETURN v_count;
END
$$;

-- Queues rows whose vector is missing or was made by another model or
-- profile-text version, or (p_older_than) is older than that: low priority,
-- at most p_limit rows, so refreshing never starves new work.
CREATE OR REPLACE FUNCTION enqueue_stale_embeddings(
    p_older_than interval DEFAULT NULL,
    p_priority integer DEFAULT 1,
    p_limit integer DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_model text := (active_embedding_model()).model;
    v_version integer := (SELECT profile_text_version FROM jobmatch_settings);
    v_jobs integer;
    v_users integer;
BEGIN
    INSERT INTO embedding_queue (entity_type, entity_id, priority)
    SELECT 'job', j.id, p_priority FROM canonical_jobs AS j
    WHERE (j.job_embedding IS NULL
           OR j.job_embedding_model IS DISTINCT FROM v_model
           OR j.embedding_version IS DISTINCT FROM v_version
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
           OR u.embedding_version IS DISTINCT FROM v_version
           OR u.embedding_updated_at < now() - p_older_than)
      AND NOT EXISTS (SELECT 1 FROM embedding_queue AS q
                      WHERE q.entity_type = 'user' AND q.entity_id = u.user_id)
      AND NOT EXISTS (SELECT 1 FROM embedding_dead_letter AS d
                      WHERE d.entity_type = 'user' AND d.entity_id = u.user_id)
    LIMIT p_limit
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_users = ROW_COUNT;
    IF v_jobs + v_users > 0 THEN
        PERFORM pg_notify('jobmatch_embedding_queue', 'refresh');
    END IF;
    RETURN v_jobs + v_users;
END
$$;

-- Leases up to p_limit ready rows in one statement (SKIP LOCKED, so
-- concurrent workers never get the same row) and returns the text to embed
-- with its hash. The caller commits at once and embeds outside the
-- transaction; the lease keeps others off until it expires.
CREATE OR REPLACE FUNCTION claim_embedding_batch(
    p_worker text,
    p_limit integer DEFAULT 100,
    p_lease interval DEFAULT '5 minutes'
)
RETURNS TABLE (
    entity_type text,
    entity_id bigint,
    profile_text text,
    text_hash uuid,
    attempts integer
)
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_worker IS NULL OR p_limit IS NULL OR p_lease IS NULL
       OR p_limit < 1 OR p_lease <= interval '0' THEN
        RAISE EXCEPTION 'claim_embedding_batch: worker, a positive limit and a positive lease are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH ready AS (
        SELECT q.entity_type, q.entity_id
        FROM embedding_queue AS q
        WHERE q.run_after <= now()
          AND (q.locked_until IS NULL OR q.locked_until <= now())
        ORDER BY q.priority, q.run_after
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE embedding_queue AS q
        SET locked_by = p_worker, locked_until = now() + p_lease
        FROM ready AS r
        WHERE q.entity_type = r.entity_type AND q.entity_id = r.entity_id
        RETURNING q.entity_type, q.entity_id, q.attempts
    ), texts AS MATERIALIZED (  -- computed once per row, not once per use
        SELECT l.entity_type, l.entity_id, l.attempts,
               CASE l.entity_type
                   WHEN 'job' THEN (SELECT job_profile_text(j) FROM canonical_jobs AS j
                                    WHERE j.id = l.entity_id)
                   ELSE (SELECT user_profile_text(u) FROM user_preferences AS u
                         WHERE u.user_id = l.entity_id)
               END AS profile_text
        FROM leased AS l
    )
    SELECT t.entity_type, t.entity_id, t.profile_text,
           jobmatch_text_hash(t.profile_text), t.attempts
    FROM texts AS t
    WHERE t.profile_text IS NOT NULL
    ORDER BY t.entity_type, t.entity_id;

    -- Rows whose entity vanished (a TRUNCATE, a race with DELETE) are done.
    DELETE FROM embedding_queue AS q
    WHERE q.locked_by = p_worker AND q.locked_until > now()
      AND ((q.entity_type = 'job'
            AND NOT EXISTS (SELECT 1 FROM canonical_jobs AS j WHERE j.id = q.entity_id))
        OR (q.entity_type = 'user'
            AND NOT EXISTS (SELECT 1 FROM user_preferences AS u WHERE u.user_id = q.entity_id)));
END
$$;

-- Writes vectors back, but only where the entity's current text still hashes
-- to the claimed hash; a row whose text changed meanwhile stays queued (its
-- lease released) for the new text. Returns the number of vectors written.
CREATE OR REPLACE FUNCTION complete_embeddings(
    p_worker text,
    p_model text,
    p_entity_types text[],
    p_entity_ids bigint[],
    p_text_hashes uuid[],
    p_embeddings vector[]
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_model embedding_models := active_embedding_model();
    v_version integer := (SELECT profile_text_version FROM jobmatch_settings);
    v_bad text;
    v_written integer;
BEGIN
    IF v_model.model IS DISTINCT FROM p_model THEN
        RAISE EXCEPTION 'complete_embeddings: vectors made by % but this database embeds with %',
            p_model, coalesce(v_model.model, '(no model configured)')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_entity_types) IS DISTINCT FROM cardinality(p_entity_ids)
       OR cardinality(p_entity_ids) IS DISTINCT FROM cardinality(p_text_hashes)
       OR cardinality(p_text_hashes) IS DISTINCT FROM cardinality(p_embeddings) THEN
        RAISE EXCEPTION 'complete_embeddings: argument arrays differ in length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT format('%s %s: %s', i.entity_type, i.entity_id,
                  CASE WHEN i.embedding IS NULL THEN 'NULL vector'
                       WHEN vector_dims(i.embedding) <> v_model.dimensions
                           THEN vector_dims(i.embedding) || ' dimensions, expected '
                                || v_model.dimensions
                       ELSE 'zero vector' END)
    INTO v_bad
    FROM unnest(p_entity_types, p_entity_ids, p_embeddings) AS i (entity_type, entity_id, embedding)
    WHERE i.embedding IS NULL
       OR vector_dims(i.embedding) <> v_model.dimensions
       OR vector_norm(i.embedding) = 0
    LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'complete_embeddings: refusing to store a bad vector (%)', v_bad
            USING ERRCODE = 'data_exception';
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS pg_temp.embedding_results (
        entity_type text, entity_id bigint, written boolean
    ) ON COMMIT DROP;
    TRUNCATE pg_temp.embedding_results;

    WITH input AS (
        SELECT * FROM unnest(p_entity_types, p_entity_ids, p_text_hashes, p_embeddings)
            AS i (entity_type, entity_id, text_hash, embedding)
    ), jobs AS (
        UPDATE canonical_jobs AS j
        SET job_embedding = i.embedding,
            job_embedding_text = job_profile_text(j),
            job_embedding_hash = i.text_hash,
            job_embedding_model = p_model,
            job_embedding_updated_at = now(),
            embedding_version = v_version
        FROM input AS i
        WHERE i.entity_type = 'job' AND j.id = i.entity_id
          AND jobmatch_text_hash(job_profile_text(j)) = i.text_hash
        RETURNING 'job'::text AS entity_type, j.id::bigint AS entity_id
    ), users AS (
        UPDATE user_preferences AS u
        SET user_embedding = i.embedding,
            embedding_text = user_profile_text(u),
            embedding_hash = i.text_hash,
            embedding_model = p_model,
            embedding_updated_at = now(),
            embedding_version = v_version
        FROM input AS i
        WHERE i.entity_type = 'user' AND u.user_id = i.entity_id
          AND jobmatch_text_hash(user_profile_text(u)) = i.text_hash
        RETURNING 'user'::text AS entity_type, u.user_id::bigint AS entity_id
    )
    INSERT INTO pg_temp.embedding_results
    SELECT i.entity_type, i.entity_id,
           EXISTS (SELECT 1 FROM jobs AS w WHERE w.entity_type = i.entity_type
                                             AND w.entity_id = i.entity_id)
        OR EXISTS (SELECT 1 FROM users AS w WHERE w.entity_type = i.entity_type
                                              AND w.entity_id = i.entity_id)
    FROM input AS i;

    -- Written rows leave the queue. Unwritten ones: gone entity -> leave the
    -- queue too; changed text -> release the lease so the new text goes next.
    DELETE FROM embedding_queue AS q
    USING pg_temp.embedding_results AS r
    WHERE q.entity_type = r.entity_type AND q.entity_id = r.entity_id
      AND (r.written
           OR (r.entity_type = 'job'
               AND NOT EXISTS (SELECT 1 FROM canonical_jobs AS j WHERE j.id = r.entity_id))
           OR (r.entity_type = 'user'
               AND NOT EXISTS (SELECT 1 FROM user_preferences AS u
                               WHERE u.user_id = r.entity_id)));
    UPDATE embedding_queue AS q
    SET locked_by = NULL, locked_until = NULL
    FROM pg_temp.embedding_results AS r
    WHERE q.entity_type = r.entity_type AND q.entity_id = r.entity_id
      AND NOT r.written AND q.locked_by = p_worker;

    SELECT count(*) FILTER (WHERE written) INTO v_written FROM pg_temp.embedding_results;
    RETURN v_written;
END
$$;

-- The application's own multi-row UPDATEs lock rows in their order, this in
-- another: rather than let PostgreSQL's deadlock detector (after 1 s) pick the
-- application's statement as the victim, the write-back gives up waiting
-- first; the worker retries it with the same vectors.
ALTER FUNCTION complete_embeddings(text, text, text[], bigint[], uuid[], vector[])
SET lock_timeout = '100ms';
-- Its UPDATEs change vectors only: the UPDATE triggers (30_triggers.sql) skip
-- their text comparison while it runs. Set on the function, it ends with it.
ALTER FUNCTION complete_embeddings(text, text, text[], bigint[], uuid[], vector[])
SET "jobmatch.writing_vectors" = 'on';

-- A failed attempt: capped exponential backoff with jitter; after the
-- attempt cap the row moves to embedding_dead_letter with its error.
-- Only rows this worker still holds are touched. Returns rows dead-lettered.
CREATE OR REPLACE FUNCTION fail_embeddings(
    p_worker text,
    p_entity_types text[],
    p_entity_ids bigint[],
    p_error text
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    s jobmatch_settings;
    v_types text[];
    v_ids bigint[];
    v_dead integer;
BEGIN
    SELECT * INTO s FROM jobmatch_settings;
    -- Only rows this worker holds, and of those only the ones that just hit
    -- the cap, move to the dead letters. Two statements: a DELETE in the same
    -- statement as the UPDATE would not see the rows it changed.
    WITH failed AS (
        UPDATE embedding_queue AS q
        SET attempts = q.attempts + 1,
            last_error = left(coalesce(p_error, 'unknown error'), 2000),
            locked_by = NULL,
            locked_until = NULL,
            run_after = now() + least(s.queue_backoff_cap,
                                      s.queue_backoff_base * power(2, least(q.attempts, 30)))
                                * (0.75 + random() / 2)
        FROM unnest(p_entity_types, p_entity_ids) AS i (entity_type, entity_id)
        WHERE q.entity_type = i.entity_type AND q.entity_id = i.entity_id
          AND q.locked_by = p_worker
        RETURNING q.entity_type, q.entity_id, q.attempts
    )
    SELECT array_agg(f.entity_type), array_agg(f.entity_id) INTO v_types, v_ids
    FROM failed AS f
    WHERE f.attempts >= s.queue_max_attempts;

    WITH dead AS (
        DELETE FROM embedding_queue AS q
        USING unnest(v_types, v_ids) AS i (entity_type, entity_id)
        WHERE q.entity_type = i.entity_type AND q.entity_id = i.entity_id
        RETURNING q.*
    )
    INSERT INTO embedding_dead_letter AS d
        (entity_type, entity_id, attempts, last_error, enqueued_at)
    SELECT entity_type, entity_id, attempts, last_error, enqueued_at FROM dead
    ON CONFLICT (entity_type, entity_id) DO UPDATE
        SET attempts = excluded.attempts, last_error = excluded.last_error,
            enqueued_at = excluded.enqueued_at, failed_at = now();
    GET DIAGNOSTICS v_dead = ROW_COUNT;
    RETURN v_dead;
END
$$;

-- Gives leased rows back untouched (graceful shutdown): no attempt counted.
-- NULL arrays release everything this worker holds.
CREATE OR REPLACE FUNCTION release_embeddings(
    p_worker text,
    p_entity_types text[] DEFAULT NULL,
    p_entity_ids bigint[] DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_count integer;
BEGIN
    UPDATE embedding_queue AS q
    SET locked_by = NULL, locked_until = NULL
    WHERE q.locked_by = p_worker
      AND (p_entity_ids IS NULL
           OR (q.entity_type, q.entity_id) IN (
               SELECT * FROM unnest(p_entity_types, p_entity_ids)));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- Puts dead-lettered rows back in the queue with a fresh attempt budget.
CREATE OR REPLACE FUNCTION requeue_dead_letters(p_entity_type text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_count integer;
BEGIN
    WITH moved AS (
        DELETE FROM embedding_dead_letter AS d
        WHERE p_entity_type IS NULL OR d.entity_type = p_entity_type
        RETURNING d.entity_type, d.entity_id
    )
    INSERT INTO embedding_queue (entity_type, entity_id)
    SELECT entity_type, entity_id FROM moved
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('jobmatch_embedding_queue', 'requeue');
    END IF;
    RETURN v_count;
END
$$;

CREATE OR REPLACE FUNCTION record_embedding_usage(
    p_model text, p_requests bigint, p_inputs bigint, p_tokens bigint
)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO embedding_usage AS u (day, model, requests, inputs, tokens)
    VALUES (current_date, p_model, p_requests, p_inputs, coalesce(p_tokens, 0))
    ON CONFLICT (day, model) DO UPDATE
        SET requests = u.requests + excluded.requests,
            inputs = u.inputs + excluded.inputs,
            tokens = u.tokens + excluded.tokens
$$;
