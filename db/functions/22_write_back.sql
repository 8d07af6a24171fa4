-- The write-back: vectors the worker made go into the entity rows, only
-- where the row's current text still hashes to the text that was embedded.
-- complete_embeddings is the worker's entry point; claim_embedding_batch
-- (20_queue.sql) also writes vectors parked here earlier.

-- The role vector a row keeps: the one sent, if its profile text has a role
-- text (jobmatch_role_text), else none. Read once per row by the write-back
-- for the row's role vector and its occupation.
CREATE OR REPLACE FUNCTION jobmatch_row_role_vector(profile_text text, sent vector)
RETURNS vector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jobmatch_role_text(profile_text) IS NOT NULL THEN sent END
$$;

-- Writes vectors into the entity rows the caller may write now: rows another
-- transaction holds are skipped, never waited on (SKIP LOCKED), and rows
-- whose current text no longer hashes to the claimed hash are left alone.
-- Returns each input's fate: written, locked (held by another transaction),
-- changed (new text since the claim) or gone (the entity was deleted). The
-- text is built once per row, from the locked row itself. Internal: called
-- by complete_embeddings and claim_embedding_batch (parked vectors) only.
-- A row's role vector (its role text's: a function of the profile text, so
-- the same hash covers it) is written with its profile vector, or cleared
-- when there is none. A row written without the role vector its role text
-- asks for (a caller that sends none) is matched with a neutral role term;
-- the content cache never hands such a pair out, so the row's next
-- embedding brings both. The row's occupation (15_occupations.sql) is
-- set from the vectors written.
CREATE OR REPLACE FUNCTION jobmatch_write_vectors(
    p_model text,
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
        SELECT j.id, jobmatch_job_profile_text(j) AS profile_text
        FROM canonical_jobs AS j
        WHERE j.id IN (SELECT i.entity_id FROM input AS i WHERE i.entity_type = 'job')
        FOR NO KEY UPDATE OF j SKIP LOCKED
    ), free_users AS (
        SELECT u.user_id, jobmatch_user_profile_text(u) AS profile_text
        FROM user_preferences AS u
        WHERE u.user_id IN (SELECT i.entity_id FROM input AS i WHERE i.entity_type = 'user')
        FOR NO KEY UPDATE OF u SKIP LOCKED
    ), jobs AS (
        UPDATE canonical_jobs AS j
        SET job_embedding = i.embedding,
            job_role_embedding = r.role_embedding,
            job_occupation = jobmatch_nearest_occupation(p_model, r.role_embedding, i.embedding),
            job_embedding_text = f.profile_text,
            job_embedding_hash = i.text_hash,
            job_embedding_model = p_model,
            job_embedding_updated_at = now(),
            job_embedding_xmin = pg_current_xact_id()::xid,
            embedding_version = (SELECT s.profile_text_version FROM jobmatch_settings AS s)
        FROM input AS i, free_jobs AS f,
            jobmatch_row_role_vector(f.profile_text, i.role_embedding) AS r (role_embedding)
        WHERE i.entity_type = 'job' AND f.id = i.entity_id AND j.id = f.id
          AND jobmatch_text_hash(f.profile_text) = i.text_hash
        RETURNING j.id::bigint AS entity_id
    ), users AS (
        UPDATE user_preferences AS u
        SET user_embedding = i.embedding,
            user_role_embedding = r.role_embedding,
            user_occupation = jobmatch_nearest_occupation(p_model, r.role_embedding, i.embedding),
            embedding_text = f.profile_text,
            embedding_hash = i.text_hash,
            embedding_model = p_model,
            embedding_updated_at = now(),
            embedding_xmin = pg_current_xact_id()::xid,
            embedding_version = (SELECT s.profile_text_version FROM jobmatch_settings AS s)
        FROM input AS i, free_users AS f,
            jobmatch_row_role_vector(f.profile_text, i.role_embedding) AS r (role_embedding)
        WHERE i.entity_type = 'user' AND f.user_id = i.entity_id AND u.user_id = f.user_id
          AND jobmatch_text_hash(f.profile_text) = i.text_hash
        RETURNING u.user_id::bigint AS entity_id
    )
    SELECT i.entity_type, i.entity_id,
           CASE
               WHEN i.entity_type = 'job' THEN CASE
                   WHEN i.entity_id IN (SELECT w.entity_id FROM jobs AS w) THEN 'written'
                   WHEN i.entity_id IN (SELECT f.id FROM free_jobs AS f) THEN 'changed'
                   WHEN EXISTS (SELECT 1 FROM canonical_jobs AS j WHERE j.id = i.entity_id)
                       THEN 'locked'
                   ELSE 'gone' END
               ELSE CASE
                   WHEN i.entity_id IN (SELECT w.entity_id FROM users AS w) THEN 'written'
                   WHEN i.entity_id IN (SELECT f.user_id FROM free_users AS f) THEN 'changed'
                   WHEN EXISTS (SELECT 1 FROM user_preferences AS u
                                WHERE u.user_id = i.entity_id) THEN 'locked'
                   ELSE 'gone' END
           END
    FROM input AS i
$$;

-- The vectors a worker sends, checked before anything is written (for
-- complete_embeddings and complete_target_embeddings, p_caller names it in
-- the message): arrays of one length, one vector per entity, every vector
-- of the model's dimensions and usable by pgvector's distance.
CREATE OR REPLACE FUNCTION jobmatch_check_vectors(
    p_caller text,
    p_model embedding_models,
    p_entity_types text[],
    p_entity_ids bigint[],
    p_text_hashes uuid[],
    p_embeddings vector[],
    p_role_embeddings vector[]
)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_bad text;
BEGIN
    IF cardinality(p_entity_types) IS DISTINCT FROM cardinality(p_entity_ids)
       OR cardinality(p_entity_ids) IS DISTINCT FROM cardinality(p_text_hashes)
       OR cardinality(p_text_hashes) IS DISTINCT FROM cardinality(p_embeddings)
       OR cardinality(p_embeddings) IS DISTINCT FROM coalesce(cardinality(p_role_embeddings),
                                                              cardinality(p_embeddings)) THEN
        RAISE EXCEPTION '%: argument arrays differ in length', p_caller
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT format('%s %s appears %s times', i.entity_type, i.entity_id, count(*))
    INTO v_bad
    FROM unnest(p_entity_types, p_entity_ids) AS i (entity_type, entity_id)
    GROUP BY i.entity_type, i.entity_id
    HAVING count(*) > 1
    LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION '%: one vector per entity (%)', p_caller, v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A vector must be usable by the distance pgvector computes: its norm
    -- is summed in single precision, so elements of 1e-30 have a norm of 0
    -- there (though not in double) and every cosine with it reads 1.0. A
    -- vector is its own nearest neighbour, at distance ~0, or it is refused;
    -- the same for its half-precision copy, which the default index holds.
    -- Role vectors (NULL allowed: a row without a role text) the same.
    SELECT format('%s %s: %s%s', i.entity_type, i.entity_id,
                  CASE WHEN i.is_role THEN 'role vector: ' ELSE '' END,
                  CASE WHEN i.embedding IS NULL THEN 'NULL vector'
                       WHEN i.entity_type IS NULL OR i.entity_id IS NULL
                           OR i.text_hash IS NULL THEN 'NULL entity or hash'
                       WHEN i.entity_type NOT IN ('job', 'user')
                           THEN 'unknown entity type'
                       WHEN vector_dims(i.embedding) <> p_model.dimensions
                           THEN vector_dims(i.embedding) || ' dimensions, expected '
                                || p_model.dimensions
                       ELSE 'zero vector, or a norm that underflows to zero' END)
    INTO v_bad
    FROM unnest(p_entity_types, p_entity_ids, p_text_hashes, p_embeddings,
                coalesce(p_role_embeddings, '{}'))
        AS r (entity_type, entity_id, text_hash, embedding, role_embedding)
    CROSS JOIN LATERAL (
        VALUES (r.entity_type, r.entity_id, r.text_hash, r.embedding, false),
               (r.entity_type, r.entity_id, r.text_hash, r.role_embedding, true)
    ) AS i (entity_type, entity_id, text_hash, embedding, is_role)
    WHERE (i.embedding IS NULL AND NOT i.is_role)
       OR i.entity_type IS NULL OR i.entity_id IS NULL
       OR i.text_hash IS NULL OR i.entity_type NOT IN ('job', 'user')
       OR vector_dims(i.embedding) <> p_model.dimensions
       OR (i.embedding IS NOT NULL
           AND NOT coalesce(cosine_distance(i.embedding, i.embedding) < 1e-3, false))
       OR (vector_dims(i.embedding) <= 16000
           AND NOT coalesce(cosine_distance(i.embedding::halfvec,
                                            i.embedding::halfvec) < 1e-3, false))
    ORDER BY i.is_role
    LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION '%: refusing to store a bad vector (%)', p_caller, v_bad
            USING ERRCODE = 'data_exception';
    END IF;
END
$$;

-- Writes vectors and settles their queue rows: written or gone -> leave the
-- queue; changed -> the lease is released so the new text goes next; locked
-- (an application transaction holds the row) -> the vector is parked on
-- the queue row and tried again shortly by claim_embedding_batch, so it is
-- never paid for twice. Queue rows another transaction holds are skipped:
-- only the application's own enqueue can hold one, and it resets the row.
-- Returns the number of rows written. A row's role vector goes (and is
-- parked) with its profile vector.
CREATE OR REPLACE FUNCTION jobmatch_apply_vectors(
    p_worker text,
    p_model text,
    p_entity_types text[],
    p_entity_ids bigint[],
    p_text_hashes uuid[],
    p_embeddings vector[],
    p_role_embeddings vector[]
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_types text[];
    v_ids bigint[];
    v_outcomes text[];
BEGIN
    SELECT array_agg(w.entity_type), array_agg(w.entity_id), array_agg(w.outcome)
    INTO v_types, v_ids, v_outcomes
    FROM jobmatch_write_vectors(p_model, p_entity_types, p_entity_ids, p_text_hashes,
                                p_embeddings, p_role_embeddings) AS w;

    WITH settled AS (
        SELECT q.entity_type, q.entity_id, o.outcome, i.text_hash, i.embedding,
               i.role_embedding
        FROM embedding_queue AS q
        INNER JOIN unnest(v_types, v_ids, v_outcomes) AS o (entity_type, entity_id, outcome)
            ON q.entity_type = o.entity_type AND q.entity_id = o.entity_id
        INNER JOIN unnest(p_entity_types, p_entity_ids, p_text_hashes, p_embeddings,
                          coalesce(p_role_embeddings, '{}'))
            AS i (entity_type, entity_id, text_hash, embedding, role_embedding)
            ON i.entity_type = o.entity_type AND i.entity_id = o.entity_id
        WHERE o.outcome IN ('written', 'gone') OR q.locked_by = p_worker
        FOR UPDATE OF q SKIP LOCKED
    ), done AS (
        DELETE FROM embedding_queue AS q
        USING settled AS s
        WHERE q.entity_type = s.entity_type AND q.entity_id = s.entity_id
          AND s.outcome IN ('written', 'gone')
    )
    UPDATE embedding_queue AS q
    SET locked_by = NULL, locked_until = NULL,
        parked_embedding = CASE WHEN s.outcome = 'locked' THEN s.embedding END,
        parked_role_embedding = CASE WHEN s.outcome = 'locked' THEN s.role_embedding END,
        parked_hash = CASE WHEN s.outcome = 'locked' THEN s.text_hash END,
        parked_model = CASE WHEN s.outcome = 'locked' THEN p_model END,
        run_after = CASE WHEN s.outcome = 'locked' THEN now() + interval '5 seconds'
                         ELSE q.run_after END
    FROM settled AS s
    WHERE q.entity_type = s.entity_type AND q.entity_id = s.entity_id
      AND s.outcome IN ('locked', 'changed');

    RETURN coalesce(cardinality(array_positions(v_outcomes, 'written')), 0);
END
$$;

-- The worker's write-back: checks what it is given, then writes through
-- jobmatch_apply_vectors the rows p_worker holds the lease of (only where
-- the entity's current text still hashes to the claimed hash).
-- p_role_embeddings: each row's role vector (of the
-- role text claim_embedding_batch returned; NULL where it returned none),
-- checked like the profile vectors; NULL as a whole: none sent (the rows are
-- written without). Returns the number of rows written. Everything it
-- touches is a table of ours or a local value: nothing a caller can create
-- (no temp tables; search_path pinned, so a caller's pg_temp objects are
-- never found). Errors never leave half a batch written.
CREATE OR REPLACE FUNCTION complete_embeddings(
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
-- The application's own multi-row UPDATEs may hold rows: those are skipped,
-- but a lock on something else must not hold the worker either; the worker
-- retries a write-back that gave up waiting with the same vectors.
SET lock_timeout = '100ms'
AS $$
DECLARE
    v_model embedding_models := active_embedding_model();
    v_types text[];
    v_ids bigint[];
    v_hashes uuid[];
    v_vectors vector[];
    v_role_vectors vector[];
BEGIN
    IF p_worker IS NULL THEN
        RAISE EXCEPTION 'complete_embeddings: worker must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF v_model.model IS DISTINCT FROM p_model THEN
        RAISE EXCEPTION 'complete_embeddings: vectors made by % but this database embeds with %',
            p_model, coalesce(v_model.model, '(no model configured)')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM jobmatch_check_vectors('complete_embeddings', v_model, p_entity_types,
                                   p_entity_ids, p_text_hashes, p_embeddings,
                                   p_role_embeddings);
    -- Only rows this worker holds the lease of (claim_embedding_batch or
    -- claim_embedding_backfill handed them to it, and no edit or other
    -- worker took them since): the hash alone says the text is unchanged,
    -- not that the vector is this worker's to write, and a row settled long
    -- ago, or leased to another worker, is not. The others are not written
    -- and their queue rows are left as they are.
    SELECT array_agg(i.entity_type ORDER BY i.ord), array_agg(i.entity_id ORDER BY i.ord),
           array_agg(i.text_hash ORDER BY i.ord), array_agg(i.embedding ORDER BY i.ord),
           array_agg(i.role_embedding ORDER BY i.ord)
    INTO v_types, v_ids, v_hashes, v_vectors, v_role_vectors
    FROM unnest(p_entity_types, p_entity_ids, p_text_hashes, p_embeddings,
                coalesce(p_role_embeddings, '{}'))
        WITH ORDINALITY AS i (entity_type, entity_id, text_hash, embedding, role_embedding, ord)
    WHERE EXISTS (SELECT 1 FROM embedding_queue AS q
                  WHERE q.entity_type = i.entity_type AND q.entity_id = i.entity_id
                    AND q.locked_by = p_worker);
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    RETURN jobmatch_apply_vectors(p_worker, p_model, v_types, v_ids, v_hashes, v_vectors,
                                  v_role_vectors);
END
$$;
