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

-- Records a model's row (a new one, or its threshold), refusing another
-- dimension under the same name; set_embedding_model and
-- add_embedding_model (a blue/green target) both record through it.
CREATE OR REPLACE FUNCTION jobmatch_record_model(
    p_model text,
    p_provider text,
    p_dimensions integer,
    p_similarity_threshold double precision
)
RETURNS embedding_models
LANGUAGE plpgsql
AS $$
DECLARE
    v_row embedding_models;
BEGIN
    SELECT * INTO v_row FROM embedding_models WHERE model = p_model;
    IF FOUND AND v_row.dimensions <> p_dimensions THEN
        RAISE EXCEPTION 'embedding model % is recorded with % dimensions, not %',
            p_model, v_row.dimensions, p_dimensions
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a distinct model name for another dimension, e.g. '
                         || p_model || '@' || p_dimensions;
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
    SELECT * INTO v_row FROM embedding_models WHERE model = p_model;
    RETURN v_row;
END
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
BEGIN
    IF p_model IS NULL OR btrim(p_model) = '' OR p_dimensions IS NULL THEN
        RAISE EXCEPTION 'set_embedding_model: model and dimensions are required'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_active := active_embedding_model();
    -- (a refusal below rolls the recorded row back)
    PERFORM jobmatch_record_model(p_model, p_provider, p_dimensions, p_similarity_threshold);
    IF v_active.model IS NOT NULL AND v_active.model <> p_model AND NOT p_switch THEN
        RAISE EXCEPTION 'this database embeds with % (% dimensions), not %',
            v_active.model, v_active.dimensions, p_model
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Configure the worker for ' || v_active.model
                         || ', or switch models explicitly (every row is then re-embedded).';
    END IF;
    IF v_active.model IS DISTINCT FROM p_model THEN
        UPDATE embedding_models SET is_active = false WHERE is_active;
        -- a target switched to at once is the target no more: its vectors
        -- beside (the serving columns are re-embedded instead) and queue go
        UPDATE embedding_models SET is_active = true, is_target = false WHERE model = p_model;
        DELETE FROM embedding_vectors WHERE model = p_model;
        DELETE FROM embedding_target_queue WHERE model = p_model;
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
    -- A model switch in progress (29_model_switch.sql): vectors of the
    -- other models are of the old text now, and the target needs the new
    -- text's, as fresh work (priority 0).
    DELETE FROM embedding_vectors AS v
    WHERE v.entity_type = p_entity_type AND v.entity_id = ANY (p_entity_ids);
    INSERT INTO embedding_target_queue AS t (model, entity_type, entity_id, priority)
    SELECT m.model, p_entity_type, i.id, 0
    FROM embedding_models AS m, unnest(p_entity_ids) AS i (id)
    WHERE m.is_target AND i.id IS NOT NULL
    ON CONFLICT (model, entity_type, entity_id) DO UPDATE
        SET priority = 0, attempts = 0, run_after = now(), last_error = NULL,
            locked_by = NULL, locked_until = NULL,
            enqueued_at = CASE WHEN t.priority > 0 THEN now() ELSE t.enqueued_at END;
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
