-- The claim: what the worker is handed to embed (claim_embedding_batch),
-- or a Batch API backfill (claim_embedding_backfill): one definition,
-- jobmatch_claim, that hands out only rows that need a paid-for vector.

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
        ELSE p_profile_text IS DISTINCT FROM jobmatch_user_profile_text(NULL::user_preferences)
    END
$$;

-- Leases up to p_limit ready rows in one statement (SKIP LOCKED, so
-- concurrent workers never get the same row) and returns the texts to embed
-- (the profile text, and its role text: NULL when it has none) with the
-- hash that covers both. The caller commits at once and embeds outside the
-- transaction; the lease keeps others off until it expires. Nothing is
-- handed out that need not be paid for:
--   - a vector parked because an application transaction held its row is
--     written once the row is free (never embedded again);
--   - a row whose text already has a vector of the active model (its own:
--     an edit undone, a new profile-text version that left it unchanged; or
--     another row's of the same kind: a duplicate posting) gets that vector
--     and its role vector (the same hash covers both texts: the role text is
--     a function of the profile text), counted in embedding_usage.cached_*
--     (not a row queued because its vector is old: refresh-after-days asks
--     for a new one; nor a vector whose role vector is missing);
--   - a row not worth embedding (jobmatch_worth_embedding) leaves the
--     queue (a seeker with an empty profile is marked as having nothing to
--     embed: hash and model set, no vector), counted as skipped.
CREATE OR REPLACE FUNCTION jobmatch_claim(
    p_worker text,
    p_limit integer,
    p_lease interval,
    p_min_priority integer
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
AS $$
DECLARE
    v_model text := (active_embedding_model()).model;
    v_types text[];
    v_ids bigint[];
    v_hashes uuid[];
    v_vectors vector[];
    v_role_vectors vector[];
    v_texts text[];
    v_reembed boolean[];
    v_outcomes text[];
    v_cached bigint[];
    v_skipped bigint[];
BEGIN
    -- Bounded as well: at most 50,000 rows (a Batch API batch's limit) for
    -- at most 2 days (a batch may take 24 hours, leased for 25), or one call
    -- could take the whole queue from every other worker for good and build
    -- every text of it in one array.
    IF p_worker IS NULL OR p_limit IS NULL OR p_lease IS NULL
       OR p_limit < 1 OR p_limit > 50000
       OR p_lease <= interval '0' OR p_lease > interval '2 days' THEN
        RAISE EXCEPTION 'claim_embedding_batch: worker, a limit of 1-50000 and a lease of at most 2 days are required'
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
            parked_role_embedding = CASE WHEN q.parked_model = v_model
                                         THEN q.parked_role_embedding END,
            parked_hash = CASE WHEN q.parked_model = v_model THEN q.parked_hash END,
            parked_model = CASE WHEN q.parked_model = v_model THEN q.parked_model END
        FROM parked AS r
        WHERE q.entity_type = r.entity_type AND q.entity_id = r.entity_id
        RETURNING q.entity_type, q.entity_id, q.parked_hash, q.parked_embedding,
                  q.parked_role_embedding
    )
    SELECT array_agg(l.entity_type), array_agg(l.entity_id), array_agg(l.parked_hash),
           array_agg(l.parked_embedding), array_agg(l.parked_role_embedding)
    INTO v_types, v_ids, v_hashes, v_vectors, v_role_vectors
    FROM leased AS l
    WHERE l.parked_hash IS NOT NULL;
    IF v_ids IS NOT NULL THEN
        PERFORM jobmatch_apply_vectors(p_worker, v_model, v_types, v_ids, v_hashes, v_vectors,
                                       v_role_vectors);
    END IF;

    -- Lease, and build each text once (later statements read the arrays).
    WITH ready AS (
        SELECT q.entity_type, q.entity_id
        FROM embedding_queue AS q
        WHERE q.run_after <= now()
          AND (q.locked_until IS NULL OR q.locked_until <= now())
          AND q.parked_hash IS NULL
          AND q.priority >= p_min_priority
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
                   WHEN 'job' THEN (SELECT jobmatch_job_profile_text(j) FROM canonical_jobs AS j
                                    WHERE j.id = l.entity_id)
                   ELSE (SELECT jobmatch_user_profile_text(u) FROM user_preferences AS u
                         WHERE u.user_id = l.entity_id)
               END AS profile_text
    ) AS t;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    -- What each claimed row needs: gone (its entity vanished), skip (not
    -- worth embedding), cached (a vector of its text exists) or embed.
    -- A cached vector comes with its role vector, or is not used: a row
    -- whose role text has no role vector yet is embedded again.
    SELECT array_agg(c.outcome ORDER BY c.ord), array_agg(c.vector ORDER BY c.ord),
           array_agg(c.role_vector ORDER BY c.ord)
    INTO v_outcomes, v_vectors, v_role_vectors
    FROM (
        SELECT t.ord,
               CASE WHEN t.profile_text IS NULL THEN 'gone'
                    WHEN NOT jobmatch_worth_embedding(t.entity_type, t.entity_id, t.profile_text)
                        THEN 'skip'
                    WHEN v.vector IS NOT NULL THEN 'cached'
                    ELSE 'embed' END AS outcome,
               v.vector, v.role_vector
        FROM unnest(v_types, v_ids, v_texts, v_reembed) WITH ORDINALITY
            AS t (entity_type, entity_id, profile_text, reembed, ord)
        LEFT JOIN LATERAL (
            SELECT j.job_embedding AS vector, j.job_role_embedding AS role_vector
            FROM canonical_jobs AS j
            WHERE t.entity_type = 'job'
              AND j.job_embedding_hash = jobmatch_text_hash(t.profile_text)
              AND j.job_embedding_model = v_model AND j.job_embedding IS NOT NULL
              AND (j.job_role_embedding IS NOT NULL
                   OR jobmatch_role_text(t.profile_text) IS NULL)
            LIMIT 1
        ) AS jv ON t.profile_text IS NOT NULL AND NOT t.reembed
        LEFT JOIN LATERAL (
            SELECT u.user_embedding AS vector, u.user_role_embedding AS role_vector
            FROM user_preferences AS u
            WHERE t.entity_type = 'user'
              AND u.embedding_hash = jobmatch_text_hash(t.profile_text)
              AND u.embedding_model = v_model AND u.user_embedding IS NOT NULL
              AND (u.user_role_embedding IS NOT NULL
                   OR jobmatch_role_text(t.profile_text) IS NULL)
            LIMIT 1
        ) AS uv ON t.profile_text IS NOT NULL AND NOT t.reembed
        CROSS JOIN LATERAL (
            SELECT coalesce(jv.vector, uv.vector) AS vector,
                   coalesce(jv.role_vector, uv.role_vector) AS role_vector
        ) AS v
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
            array_agg(jobmatch_text_hash(v_texts[i])), array_agg(v_vectors[i]),
            array_agg(v_role_vectors[i]))
        FROM unnest(v_cached || v_skipped) AS i
        WHERE v_outcomes[i] = 'cached' OR v_types[i] = 'user';
        DELETE FROM embedding_queue AS q
        USING unnest(v_skipped) AS i
        WHERE v_types[i] = 'job' AND q.entity_type = 'job' AND q.entity_id = v_ids[i]
          AND q.locked_by = p_worker;
        INSERT INTO embedding_usage AS u (day, model, cached_inputs, cached_tokens,
                                          skipped_inputs)
        -- inputs and tokens not paid for: both texts of each row
        SELECT current_date, v_model,
               (SELECT count(*) + count(jobmatch_role_text(v_texts[i]))
                FROM unnest(v_cached) AS i),
               (SELECT coalesce(sum(ceil(octet_length(v_texts[i]) / 4.0)
                                    + coalesce(ceil(octet_length(
                                          jobmatch_role_text(v_texts[i])) / 4.0), 0)), 0)
                FROM unnest(v_cached) AS i),
               coalesce(cardinality(v_skipped), 0)
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
    attempts integer,
    role_text text
)
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT * FROM jobmatch_claim(p_worker, p_limit, p_lease, 0)
$$;

-- The same claim, of low-priority rows only (refreshes, model switches,
-- backfills): what `jobmatch backfill --batch-api` sends through the Batch
-- API, leased for as long as a batch may take, while fresh edits keep going
-- through the normal worker.
CREATE OR REPLACE FUNCTION claim_embedding_backfill(
    p_worker text,
    p_limit integer DEFAULT 50000,
    p_lease interval DEFAULT '25 hours'
)
RETURNS TABLE (
    entity_type text,
    entity_id bigint,
    profile_text text,
    text_hash uuid,
    attempts integer,
    role_text text
)
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT * FROM jobmatch_claim(p_worker, p_limit, p_lease, 1)
$$;
