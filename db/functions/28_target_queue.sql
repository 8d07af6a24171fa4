-- The target model's queue API (a blue/green model switch, migration
-- 0017): the same life as the active model's (claim, embed outside any
-- transaction, complete with a hash check, fail with backoff, release),
-- but the vectors go to embedding_vectors, never into the serving columns
-- match_jobs and match_users read. Adding, promoting and dropping a model:
-- 29_model_switch.sql.

CREATE OR REPLACE FUNCTION jobmatch_target_model()
RETURNS embedding_models
LANGUAGE sql STABLE
AS $$
    SELECT m FROM embedding_models AS m WHERE m.is_target
$$;

-- Stores vectors of model p_model in embedding_vectors where the entity's
-- current text still hashes to the claimed hash. The entity row is held
-- FOR SHARE (SKIP LOCKED) until the caller commits: an edit committed
-- meanwhile would delete the vector (enqueue_embeddings) before it was
-- stored, so the edit waits for it instead, and then deletes it. A row an
-- application transaction holds is skipped ('locked'). Returns each
-- input's fate: written, changed, locked or gone.
CREATE OR REPLACE FUNCTION jobmatch_store_side_vectors(
    p_model embedding_models,
    p_entity_types text[],
    p_entity_ids bigint[],
    p_text_hashes uuid[],
    p_embeddings vector[],
    p_role_embeddings vector[]
)
RETURNS TABLE (entity_type text, entity_id bigint, outcome text)
LANGUAGE sql
AS $$
    WITH input AS (
        SELECT i.*
        FROM unnest(p_entity_types, p_entity_ids, p_text_hashes, p_embeddings,
                    coalesce(p_role_embeddings, '{}'))
            AS i (entity_type, entity_id, text_hash, embedding, role_embedding)
    ), free_jobs AS (
        SELECT 'job'::text AS entity_type, j.id::bigint AS entity_id,
               jobmatch_job_profile_text(j) AS profile_text
        FROM canonical_jobs AS j
        WHERE j.id IN (SELECT i.entity_id FROM input AS i WHERE i.entity_type = 'job')
        FOR SHARE OF j SKIP LOCKED
    ), free_users AS (
        SELECT 'user'::text AS entity_type, u.user_id::bigint AS entity_id,
               jobmatch_user_profile_text(u) AS profile_text
        FROM user_preferences AS u
        WHERE u.user_id IN (SELECT i.entity_id FROM input AS i WHERE i.entity_type = 'user')
        FOR SHARE OF u SKIP LOCKED
    ), free AS (
        SELECT * FROM free_jobs
        UNION ALL
        SELECT * FROM free_users
    ), stored AS (
        INSERT INTO embedding_vectors AS v (model, entity_type, entity_id, text_hash,
                                            embedding, role_embedding, version)
        SELECT p_model.model, i.entity_type, i.entity_id, i.text_hash, i.embedding,
               CASE WHEN jobmatch_role_text(f.profile_text) IS NOT NULL
                    THEN i.role_embedding END,
               s.profile_text_version
        FROM input AS i
        INNER JOIN free AS f ON f.entity_type = i.entity_type AND f.entity_id = i.entity_id
        CROSS JOIN jobmatch_settings AS s
        WHERE jobmatch_text_hash(f.profile_text) = i.text_hash
        ON CONFLICT (model, entity_type, entity_id) DO UPDATE
            SET text_hash = excluded.text_hash, embedding = excluded.embedding,
                role_embedding = excluded.role_embedding, version = excluded.version,
                updated_at = now()
        RETURNING v.entity_type, v.entity_id
    )
    SELECT i.entity_type, i.entity_id,
           CASE
               WHEN EXISTS (SELECT 1 FROM stored AS w
                            WHERE w.entity_type = i.entity_type
                              AND w.entity_id = i.entity_id) THEN 'written'
               WHEN EXISTS (SELECT 1 FROM free AS f
                            WHERE f.entity_type = i.entity_type
                              AND f.entity_id = i.entity_id) THEN 'changed'
               WHEN i.entity_type = 'job'
                    AND EXISTS (SELECT 1 FROM canonical_jobs AS j WHERE j.id = i.entity_id)
                   THEN 'locked'
               WHEN i.entity_type = 'user'
                    AND EXISTS (SELECT 1 FROM user_preferences AS u
                                WHERE u.user_id = i.entity_id) THEN 'locked'
               ELSE 'gone'
           END
    FROM input AS i
$$;

-- Settles the target queue rows of p_worker after a store: written or
-- gone leave the queue; changed go back at once (the new text is queued
-- already); locked come back a few seconds later (the vector is not kept:
-- one more API call for a row an application held at that instant).
CREATE OR REPLACE FUNCTION jobmatch_settle_target_rows(
    p_worker text, p_model text, p_types text[], p_ids bigint[], p_outcomes text[]
)
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM embedding_target_queue AS q
    USING unnest(p_types, p_ids, p_outcomes) AS o (entity_type, entity_id, outcome)
    WHERE q.model = p_model AND q.entity_type = o.entity_type
      AND q.entity_id = o.entity_id AND q.locked_by = p_worker
      AND o.outcome IN ('written', 'gone');
    UPDATE embedding_target_queue AS q
    SET locked_by = NULL, locked_until = NULL,
        run_after = now() + CASE WHEN o.outcome = 'locked' THEN interval '5 seconds'
                                 ELSE interval '0' END
    FROM unnest(p_types, p_ids, p_outcomes) AS o (entity_type, entity_id, outcome)
    WHERE q.model = p_model AND q.entity_type = o.entity_type
      AND q.entity_id = o.entity_id AND q.locked_by = p_worker
      AND o.outcome IN ('changed', 'locked');
    RETURN (SELECT count(*) FROM unnest(p_outcomes) AS o (outcome) WHERE o.outcome = 'written');
END
$$;

-- Leases up to p_limit ready rows of the target's queue (fresh edits,
-- priority 0, before the backfill) and returns the texts to embed, as
-- claim_embedding_batch does. Nothing is handed out that need not be paid
-- for: a text the target already embedded (another row's: a duplicate
-- posting) is copied, counted in embedding_usage.cached_* under the
-- target's name; a job that can never be matched (jobmatch_worth_embedding)
-- leaves the queue, a seeker with nothing to embed is marked (a hash, no
-- vector), both counted as skipped; rows whose entity is gone leave. Rows
-- that failed queue_max_attempts times stay, unclaimed, with their error
-- (embedding_model_coverage counts them); an edit resets them. No target:
-- nothing.
CREATE OR REPLACE FUNCTION claim_target_embeddings(
    p_worker text,
    p_limit integer DEFAULT 100,
    p_lease interval DEFAULT '5 minutes'
)
RETURNS TABLE (
    entity_type text,
    entity_id bigint,
    profile_text text,
    text_hash uuid,
    attempts integer,
    role_text text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    m embedding_models := jobmatch_target_model();
    v_types text[];
    v_ids bigint[];
    v_texts text[];
    v_outcomes text[];
    v_vectors vector[];
    v_roles vector[];
    v_keep integer[];
    v_done_types text[];
    v_done_ids bigint[];
    v_done text[];
BEGIN
    -- bounded as claim_embedding_batch is (21_claim.sql): no call takes the
    -- whole target queue from every other worker for good
    IF p_worker IS NULL OR p_limit IS NULL OR p_lease IS NULL
       OR p_limit < 1 OR p_limit > 50000
       OR p_lease <= interval '0' OR p_lease > interval '2 days' THEN
        RAISE EXCEPTION 'claim_target_embeddings: worker, a limit of 1-50000 and a lease of at most 2 days are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF m.model IS NULL THEN
        RETURN;
    END IF;
    WITH ready AS (
        SELECT q.entity_type, q.entity_id
        FROM embedding_target_queue AS q, jobmatch_settings AS s
        WHERE q.model = m.model AND q.run_after <= now()
          AND (q.locked_until IS NULL OR q.locked_until <= now())
          AND q.attempts < s.queue_max_attempts
        ORDER BY q.priority, q.run_after
        LIMIT p_limit
        FOR UPDATE OF q SKIP LOCKED
    ), leased AS (
        UPDATE embedding_target_queue AS q
        SET locked_by = p_worker, locked_until = now() + p_lease
        FROM ready AS r
        WHERE q.model = m.model AND q.entity_type = r.entity_type
          AND q.entity_id = r.entity_id
        RETURNING q.entity_type, q.entity_id
    )
    SELECT array_agg(l.entity_type), array_agg(l.entity_id), array_agg(t.profile_text)
    INTO v_types, v_ids, v_texts
    FROM leased AS l
    CROSS JOIN LATERAL (
        SELECT CASE l.entity_type
                   WHEN 'job' THEN (SELECT jobmatch_job_profile_text(j) FROM canonical_jobs AS j
                                    WHERE j.id = l.entity_id)
                   ELSE (SELECT jobmatch_user_profile_text(u) FROM user_preferences AS u
                         WHERE u.user_id = l.entity_id)
               END AS profile_text
    ) AS t;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    SELECT array_agg(c.outcome ORDER BY c.ord), array_agg(c.embedding ORDER BY c.ord),
           array_agg(c.role_embedding ORDER BY c.ord)
    INTO v_outcomes, v_vectors, v_roles
    FROM (
        SELECT t.ord, v.embedding, v.role_embedding,
               CASE WHEN t.profile_text IS NULL THEN 'gone'
                    WHEN NOT jobmatch_worth_embedding(t.entity_type, t.entity_id, t.profile_text)
                        THEN 'skip'
                    WHEN v.embedding IS NOT NULL THEN 'cached'
                    ELSE 'embed' END AS outcome
        FROM unnest(v_types, v_ids, v_texts) WITH ORDINALITY
            AS t (entity_type, entity_id, profile_text, ord)
        LEFT JOIN LATERAL (
            SELECT e.embedding, e.role_embedding
            FROM embedding_vectors AS e
            WHERE e.model = m.model AND e.entity_type = t.entity_type
              AND e.text_hash = jobmatch_text_hash(t.profile_text)
              AND e.embedding IS NOT NULL
              AND (e.role_embedding IS NOT NULL OR jobmatch_role_text(t.profile_text) IS NULL)
            LIMIT 1
        ) AS v ON t.profile_text IS NOT NULL
    ) AS c;

    -- copies and marks (seekers with nothing to embed) are stored like the
    -- worker's vectors; the jobs skipped and the rows gone just leave
    v_keep := ARRAY(SELECT i FROM generate_subscripts(v_ids, 1) AS i
                    WHERE v_outcomes[i] = 'cached'
                       OR (v_outcomes[i] = 'skip' AND v_types[i] = 'user')
                    ORDER BY i);
    SELECT array_agg(s.entity_type), array_agg(s.entity_id), array_agg(s.outcome)
    INTO v_done_types, v_done_ids, v_done
    FROM jobmatch_store_side_vectors(
        m, ARRAY(SELECT v_types[i] FROM unnest(v_keep) AS i),
        ARRAY(SELECT v_ids[i] FROM unnest(v_keep) AS i),
        ARRAY(SELECT jobmatch_text_hash(v_texts[i]) FROM unnest(v_keep) AS i),
        ARRAY(SELECT v_vectors[i] FROM unnest(v_keep) AS i),
        ARRAY(SELECT v_roles[i] FROM unnest(v_keep) AS i)) AS s;
    PERFORM jobmatch_settle_target_rows(
        p_worker, m.model,
        coalesce(v_done_types, '{}') || ARRAY(SELECT v_types[i] FROM generate_subscripts(v_ids, 1) AS i
                                              WHERE v_outcomes[i] IN ('gone', 'skip')
                                                AND NOT i = ANY (v_keep)),
        coalesce(v_done_ids, '{}') || ARRAY(SELECT v_ids[i] FROM generate_subscripts(v_ids, 1) AS i
                                            WHERE v_outcomes[i] IN ('gone', 'skip')
                                              AND NOT i = ANY (v_keep)),
        coalesce(v_done, '{}') || ARRAY(SELECT 'gone'::text FROM generate_subscripts(v_ids, 1) AS i
                                        WHERE v_outcomes[i] IN ('gone', 'skip')
                                          AND NOT i = ANY (v_keep)));
    IF 'cached' = ANY (v_outcomes) OR 'skip' = ANY (v_outcomes) THEN
        INSERT INTO embedding_usage AS u (day, model, cached_inputs, cached_tokens,
                                          skipped_inputs)
        SELECT current_date, m.model,
               count(*) FILTER (WHERE o.outcome = 'cached')
               + count(jobmatch_role_text(o.profile_text)) FILTER (WHERE o.outcome = 'cached'),
               coalesce(sum(ceil(octet_length(o.profile_text) / 4.0)
                            + coalesce(ceil(octet_length(jobmatch_role_text(o.profile_text))
                                            / 4.0), 0))
                        FILTER (WHERE o.outcome = 'cached'), 0),
               count(*) FILTER (WHERE o.outcome = 'skip')
        FROM unnest(v_outcomes, v_texts) AS o (outcome, profile_text)
        ON CONFLICT (day, model) DO UPDATE
            SET cached_inputs = u.cached_inputs + excluded.cached_inputs,
                cached_tokens = u.cached_tokens + excluded.cached_tokens,
                skipped_inputs = u.skipped_inputs + excluded.skipped_inputs;
    END IF;

    RETURN QUERY
    SELECT t.entity_type, t.entity_id, t.profile_text, jobmatch_text_hash(t.profile_text),
           q.attempts, jobmatch_role_text(t.profile_text)
    FROM unnest(v_types, v_ids, v_texts, v_outcomes) AS t (entity_type, entity_id,
                                                            profile_text, outcome)
    INNER JOIN embedding_target_queue AS q
        ON q.model = m.model AND q.entity_type = t.entity_type
       AND q.entity_id = t.entity_id
    WHERE t.outcome = 'embed'
    ORDER BY t.entity_type, t.entity_id;
END
$$;

-- The target's write-back: the vectors of rows claimed by
-- claim_target_embeddings, checked like complete_embeddings' (arrays,
-- dimensions, usable norms), stored where the text is still the one
-- embedded. Vectors of a model that is not the target (promoted or
-- dropped meanwhile) are refused (22023), as complete_embeddings refuses
-- another model's. Returns the number of rows stored.
CREATE OR REPLACE FUNCTION complete_target_embeddings(
    p_worker text,
    p_model text,
    p_entity_types text[],
    p_entity_ids bigint[],
    p_text_hashes uuid[],
    p_embeddings vector[],
    p_role_embeddings vector[] DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    m embedding_models := jobmatch_target_model();
    v_types text[];
    v_ids bigint[];
    v_outcomes text[];
BEGIN
    IF p_worker IS NULL THEN
        RAISE EXCEPTION 'complete_target_embeddings: worker must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF m.model IS DISTINCT FROM p_model THEN
        RAISE EXCEPTION 'complete_target_embeddings: vectors made by % but the target model is %',
            p_model, coalesce(m.model, '(none)')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM jobmatch_check_vectors('complete_target_embeddings', m, p_entity_types,
                                   p_entity_ids, p_text_hashes, p_embeddings,
                                   p_role_embeddings);
    SELECT array_agg(s.entity_type), array_agg(s.entity_id), array_agg(s.outcome)
    INTO v_types, v_ids, v_outcomes
    FROM jobmatch_store_side_vectors(m, p_entity_types, p_entity_ids, p_text_hashes,
                                     p_embeddings, p_role_embeddings) AS s;
    RETURN coalesce(jobmatch_settle_target_rows(p_worker, m.model, v_types, v_ids,
                                                v_outcomes), 0);
END
$$;

-- A failed attempt of the target's rows this worker holds: backoff as in
-- fail_embeddings; a row at queue_max_attempts stays with its error and is
-- no longer claimed. Returns how many reached the cap.
CREATE OR REPLACE FUNCTION fail_target_embeddings(
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
    v_dead integer;
BEGIN
    SELECT * INTO s FROM jobmatch_settings;
    WITH failed AS (
        UPDATE embedding_target_queue AS q
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
        RETURNING q.attempts
    )
    SELECT count(*) INTO v_dead FROM failed AS f WHERE f.attempts >= s.queue_max_attempts;
    RETURN v_dead;
END
$$;

-- Gives the target's leased rows back untouched; NULL arrays: all of this
-- worker's.
CREATE OR REPLACE FUNCTION release_target_embeddings(
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
    UPDATE embedding_target_queue AS q
    SET locked_by = NULL, locked_until = NULL
    WHERE q.locked_by = p_worker
      AND (p_entity_ids IS NULL
           OR (q.entity_type, q.entity_id) IN (
               SELECT i.entity_type, i.entity_id
               FROM unnest(p_entity_types, p_entity_ids) AS i (entity_type, entity_id)));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
