-- The embedding queue API. Triggers enqueue; the worker claims a batch,
-- embeds it outside any transaction, then completes or fails it.

CREATE OR REPLACE FUNCTION active_embedding_model()
RETURNS embedding_models
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
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
    -- a reduced-dimension variant (model@512) costs what its model costs
    INSERT INTO embedding_models (model, provider, dimensions, similarity_threshold,
                                  usd_per_million_tokens, batch_usd_per_million_tokens)
    SELECT p_model, p_provider, p_dimensions, coalesce(p_similarity_threshold, 0.65),
           CASE WHEN p_provider = 'local' THEN 0 ELSE b.usd_per_million_tokens END,
           CASE WHEN p_provider = 'local' THEN 0 ELSE b.batch_usd_per_million_tokens END
    FROM (SELECT NULL) AS one
    LEFT JOIN embedding_models AS b ON b.model = split_part(p_model, '@', 1)
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
SECURITY DEFINER
SET search_path = public, pg_temp
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
            parked_embedding = NULL, parked_hash = NULL, parked_model = NULL,
            reembed = false,
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

-- Can this row's vector ever be used? A job posted within the window plus
-- embed_margin_days (older ones are never matched: a backfill of old jobs
-- costs nothing); a seeker with something to embed (an empty profile would
-- match anything). NULL: the entity is gone.
CREATE OR REPLACE FUNCTION jobmatch_worth_embedding(
    p_entity_type text, p_entity_id bigint, p_profile_text text
)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT CASE p_entity_type
        WHEN 'job' THEN (
            SELECT coalesce(j.posted_date >= current_date - s.match_window_days
                                             - s.embed_margin_days, false)
            FROM canonical_jobs AS j, jobmatch_settings AS s
            WHERE j.id = p_entity_id)
        ELSE p_profile_text IS DISTINCT FROM user_profile_text(NULL::user_preferences)
    END
$$;

-- Leases up to p_limit ready rows in one statement (SKIP LOCKED, so
-- concurrent workers never get the same row) and returns the text to embed
-- with its hash. The caller commits at once and embeds outside the
-- transaction; the lease keeps others off until it expires. Nothing is
-- handed out that need not be paid for:
--   - a vector parked because an application transaction held its row is
--     written once the row is free (never embedded again);
--   - a row whose text already has a vector of the active model (its own:
--     an edit undone, a new profile-text version that left it unchanged; or
--     another row's of the same kind: a duplicate posting) gets that vector,
--     counted in embedding_usage.cached_* (not a row queued because its
--     vector is old: refresh-after-days asks for a new one);
--   - a row not worth embedding (jobmatch_worth_embedding) leaves the
--     queue (a seeker with an empty profile is marked as having nothing to
--     embed: hash and model set, no vector), counted as skipped.
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
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_model text := (active_embedding_model()).model;
    v_types text[];
    v_ids bigint[];
    v_hashes uuid[];
    v_vectors vector[];
    v_texts text[];
    v_reembed boolean[];
    v_outcomes text[];
    v_cached bigint[];
    v_skipped bigint[];
BEGIN
    IF p_worker IS NULL OR p_limit IS NULL OR p_lease IS NULL
       OR p_limit < 1 OR p_lease <= interval '0' THEN
        RAISE EXCEPTION 'claim_embedding_batch: worker, a positive limit and a positive lease are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH parked AS (
        SELECT q.entity_type, q.entity_id
        FROM embedding_queue AS q
        WHERE q.parked_hash IS NOT NULL AND q.run_after <= now()
          AND (q.locked_until IS NULL OR q.locked_until <= now())
        ORDER BY q.run_after
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE embedding_queue AS q
        -- a vector of another model is of no use: the row is embedded again
        SET locked_by = CASE WHEN q.parked_model = v_model THEN p_worker END,
            locked_until = CASE WHEN q.parked_model = v_model THEN now() + p_lease END,
            parked_embedding = CASE WHEN q.parked_model = v_model THEN q.parked_embedding END,
            parked_hash = CASE WHEN q.parked_model = v_model THEN q.parked_hash END,
            parked_model = CASE WHEN q.parked_model = v_model THEN q.parked_model END
        FROM parked AS r
        WHERE q.entity_type = r.entity_type AND q.entity_id = r.entity_id
        RETURNING q.entity_type, q.entity_id, q.parked_hash, q.parked_embedding
    )
    SELECT array_agg(l.entity_type), array_agg(l.entity_id), array_agg(l.parked_hash),
           array_agg(l.parked_embedding)
    INTO v_types, v_ids, v_hashes, v_vectors
    FROM leased AS l
    WHERE l.parked_hash IS NOT NULL;
    IF v_ids IS NOT NULL THEN
        PERFORM jobmatch_apply_vectors(p_worker, v_model, v_types, v_ids, v_hashes, v_vectors);
    END IF;

    -- Lease, and build each text once (later statements read the arrays).
    WITH ready AS (
        SELECT q.entity_type, q.entity_id
        FROM embedding_queue AS q
        WHERE q.run_after <= now()
          AND (q.locked_until IS NULL OR q.locked_until <= now())
          AND q.parked_hash IS NULL
        ORDER BY q.priority, q.run_after
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), leased AS (
        UPDATE embedding_queue AS q
        SET locked_by = p_worker, locked_until = now() + p_lease
        FROM ready AS r
        WHERE q.entity_type = r.entity_type AND q.entity_id = r.entity_id
        RETURNING q.entity_type, q.entity_id, q.reembed
    )
    SELECT array_agg(l.entity_type), array_agg(l.entity_id), array_agg(t.profile_text),
           array_agg(l.reembed)
    INTO v_types, v_ids, v_texts, v_reembed
    FROM leased AS l
    CROSS JOIN LATERAL (
        SELECT CASE l.entity_type
                   WHEN 'job' THEN (SELECT job_profile_text(j) FROM canonical_jobs AS j
                                    WHERE j.id = l.entity_id)
                   ELSE (SELECT user_profile_text(u) FROM user_preferences AS u
                         WHERE u.user_id = l.entity_id)
               END AS profile_text
    ) AS t;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    -- What each claimed row needs: gone (its entity vanished), skip (not
    -- worth embedding), cached (a vector of its text exists) or embed.
    SELECT array_agg(c.outcome ORDER BY c.ord), array_agg(c.vector ORDER BY c.ord)
    INTO v_outcomes, v_vectors
    FROM (
        SELECT t.ord,
               CASE WHEN t.profile_text IS NULL THEN 'gone'
                    WHEN NOT jobmatch_worth_embedding(t.entity_type, t.entity_id, t.profile_text)
                        THEN 'skip'
                    WHEN v.vector IS NOT NULL THEN 'cached'
                    ELSE 'embed' END AS outcome,
               v.vector
        FROM unnest(v_types, v_ids, v_texts, v_reembed) WITH ORDINALITY
            AS t (entity_type, entity_id, profile_text, reembed, ord)
        LEFT JOIN LATERAL (
            SELECT CASE t.entity_type
                WHEN 'job' THEN (
                    SELECT j.job_embedding FROM canonical_jobs AS j
                    WHERE j.job_embedding_hash = jobmatch_text_hash(t.profile_text)
                      AND j.job_embedding_model = v_model AND j.job_embedding IS NOT NULL
                    LIMIT 1)
                ELSE (
                    SELECT u.user_embedding FROM user_preferences AS u
                    WHERE u.embedding_hash = jobmatch_text_hash(t.profile_text)
                      AND u.embedding_model = v_model AND u.user_embedding IS NOT NULL
                    LIMIT 1)
            END AS vector
        ) AS v ON t.profile_text IS NOT NULL AND NOT t.reembed
    ) AS c;

    -- Reused vectors, and seekers with nothing to embed (marked: hash and
    -- model, no vector), are written like any other; jobs not worth
    -- embedding just leave the queue.
    SELECT array_agg(t.ord) FILTER (WHERE t.outcome = 'cached'),
           array_agg(t.ord) FILTER (WHERE t.outcome = 'skip')
    INTO v_cached, v_skipped
    FROM unnest(v_outcomes) WITH ORDINALITY AS t (outcome, ord);
    IF v_cached IS NOT NULL OR v_skipped IS NOT NULL THEN
        PERFORM jobmatch_apply_vectors(
            p_worker, v_model,
            array_agg(v_types[i]), array_agg(v_ids[i]),
            array_agg(jobmatch_text_hash(v_texts[i])), array_agg(v_vectors[i]))
        FROM unnest(v_cached || v_skipped) AS i
        WHERE v_outcomes[i] = 'cached' OR v_types[i] = 'user';
        DELETE FROM embedding_queue AS q
        USING unnest(v_skipped) AS i
        WHERE v_types[i] = 'job' AND q.entity_type = 'job' AND q.entity_id = v_ids[i]
          AND q.locked_by = p_worker;
        INSERT INTO embedding_usage AS u (day, model, cached_inputs, cached_tokens,
                                          skipped_inputs)
        VALUES (current_date, v_model, coalesce(cardinality(v_cached), 0),
                (SELECT coalesce(sum(ceil(octet_length(v_texts[i]) / 4.0)), 0)
                 FROM unnest(v_cached) AS i),
                coalesce(cardinality(v_skipped), 0))
        ON CONFLICT (day, model) DO UPDATE
            SET cached_inputs = u.cached_inputs + excluded.cached_inputs,
                cached_tokens = u.cached_tokens + excluded.cached_tokens,
                skipped_inputs = u.skipped_inputs + excluded.skipped_inputs;
    END IF;

    RETURN QUERY
    SELECT t.entity_type, t.entity_id, t.profile_text, jobmatch_text_hash(t.profile_text),
           q.attempts
    FROM unnest(v_types, v_ids, v_texts, v_outcomes) AS t (entity_type, entity_id,
                                                            profile_text, outcome)
    INNER JOIN embedding_queue AS q
        ON q.entity_type = t.entity_type AND q.entity_id = t.entity_id
    WHERE t.outcome = 'embed'
    ORDER BY t.entity_type, t.entity_id;

    -- Rows whose entity vanished (a TRUNCATE, a race with DELETE) are done.
    DELETE FROM embedding_queue AS q
    USING unnest(v_types, v_ids, v_outcomes) AS t (entity_type, entity_id, outcome)
    WHERE t.outcome = 'gone' AND q.entity_type = t.entity_type
      AND q.entity_id = t.entity_id AND q.locked_by = p_worker;
END
$$;

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
SECURITY DEFINER
SET search_path = public, pg_temp
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
SECURITY DEFINER
SET search_path = public, pg_temp
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
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    -- counts only grow: a negative count would lift the daily token budget
    IF p_model IS NULL OR p_requests IS NULL OR p_inputs IS NULL
       OR p_requests < 0 OR p_inputs < 0 OR coalesce(p_tokens, 0) < 0 THEN
        RAISE EXCEPTION 'record_embedding_usage: a model and non-negative counts are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO embedding_usage AS u (day, model, requests, inputs, tokens)
    VALUES (current_date, p_model, p_requests, p_inputs, coalesce(p_tokens, 0))
    ON CONFLICT (day, model) DO UPDATE
        SET requests = u.requests + excluded.requests,
            inputs = u.inputs + excluded.inputs,
            tokens = u.tokens + excluded.tokens;
END
$$;
