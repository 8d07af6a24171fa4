-- Occupations (migration 0018, `jobmatch taxonomy load`): a row's nearest
-- occupation by meaning, and how far two rows' occupations agree. Read by
-- the write-back (22_write_back.sql), a promotion (29_model_switch.sql) and
-- the pair's score (46_match_pair.sql).

-- The code of the occupation nearest to a row's role vector (its profile
-- vector when it has none: a seeker who names no role) among model
-- p_model's occupation vectors; NULL when the model has none. One exact
-- pass over a few thousand short vectors, per row written.
CREATE OR REPLACE FUNCTION jobmatch_nearest_occupation(
    p_model text, p_role_embedding vector, p_embedding vector
)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT o.code
    FROM occupation_vectors AS o
    WHERE o.model = p_model
      AND vector_dims(o.embedding) = vector_dims(coalesce(p_role_embedding, p_embedding))
    ORDER BY o.embedding <=> coalesce(p_role_embedding, p_embedding), o.code
    LIMIT 1
$$;

-- How far two occupations agree, 0 to 1: a third each for the same
-- occupation, the same ISCO-08 unit group (the code's first 4 digits) and
-- the same minor group (3 digits); 0 when either is unknown. Scalar
-- operations only: it runs for every candidate pair.
CREATE OR REPLACE FUNCTION jobmatch_occupation_match(a text, b text)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(((a = b)::integer + (left(a, 4) = left(b, 4))::integer
                     + (left(a, 3) = left(b, 3))::integer) / 3.0, 0)::double precision
$$;

-- Sets the occupation of every row with vectors of model p_model (after
-- `jobmatch taxonomy load` replaced the model's occupation vectors), in
-- batches of p_batch rows of each table from the ids after p_after_job
-- and p_after_user; returns the last ids done (NULL: that table is done)
-- and the rows changed. The caller commits between batches.
CREATE OR REPLACE FUNCTION jobmatch_map_occupations(
    p_model text, p_after_job bigint, p_after_user bigint, p_batch integer DEFAULT 5000,
    OUT last_job bigint, OUT last_user bigint, OUT changed bigint
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_jobs bigint;
    v_users bigint;
BEGIN
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'jobmatch_map_occupations: batch must be at least 1, got %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    changed := 0;
    IF p_after_job IS NOT NULL THEN
        WITH batch AS (
            SELECT j.id FROM canonical_jobs AS j
            WHERE j.id > p_after_job AND j.job_embedding_model = p_model
              AND j.job_embedding IS NOT NULL
            ORDER BY j.id LIMIT p_batch
        ), upd AS (
            UPDATE canonical_jobs AS j
            SET job_occupation = jobmatch_nearest_occupation(p_model, j.job_role_embedding,
                                                             j.job_embedding)
            FROM batch AS b
            WHERE j.id = b.id
              AND j.job_occupation IS DISTINCT FROM jobmatch_nearest_occupation(
                  p_model, j.job_role_embedding, j.job_embedding)
            RETURNING 1
        )
        SELECT (SELECT max(b.id) FROM batch AS b), (SELECT count(*) FROM upd)
        INTO last_job, v_jobs;
        changed := changed + v_jobs;
    END IF;
    IF p_after_user IS NOT NULL THEN
        WITH batch AS (
            SELECT u.user_id FROM user_preferences AS u
            WHERE u.user_id > p_after_user AND u.embedding_model = p_model
              AND u.user_embedding IS NOT NULL
            ORDER BY u.user_id LIMIT p_batch
        ), upd AS (
            UPDATE user_preferences AS u
            SET user_occupation = jobmatch_nearest_occupation(p_model, u.user_role_embedding,
                                                              u.user_embedding)
            FROM batch AS b
            WHERE u.user_id = b.user_id
              AND u.user_occupation IS DISTINCT FROM jobmatch_nearest_occupation(
                  p_model, u.user_role_embedding, u.user_embedding)
            RETURNING 1
        )
        SELECT (SELECT max(b.user_id) FROM batch AS b), (SELECT count(*) FROM upd)
        INTO last_user, v_users;
        changed := changed + v_users;
    END IF;
END
$$;
