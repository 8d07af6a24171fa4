-- match_users(job_id, limit): the other direction of match_jobs, the
-- seekers a job fits, for alerts (49_alerts.sql) and for people reading a
-- job's audience. Every rule is match_jobs' own (46_match_pair.sql): the
-- job fits what the seeker stated (jobmatch_fits), the pair's score
-- (jobmatch_pair_score), the model's threshold, and the relevance floor
-- measured from the seeker's own best candidate (jobmatch_relevant,
-- jobmatch_seeker_reference). Seekers are searched through their vector
-- index (`jobmatch index rebuild --table user`), the filters inside the
-- scan, so an iterative scan keeps going until enough seekers fit.

-- Whether the seekers' index of this model was built on halfvec (what
-- `jobmatch index rebuild --table user` recorded; the model's choice when
-- none was): the search must order by the indexed expression to use it.
CREATE OR REPLACE FUNCTION jobmatch_user_index_halfvec(p_model embedding_models)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT coalesce((SELECT b.halfvec FROM vector_index_builds AS b
                     WHERE b.table_name = 'user_preferences' AND b.model = p_model.model
                     ORDER BY b.built_at DESC LIMIT 1), p_model.index_halfvec)
$$;

-- The seekers' nearest-neighbour search as query text: (user_id, distance)
-- of the $3 seekers with a vector of the model nearest to job $1 whom job $2
-- fits (jobmatch_fits with each seeker's jobmatch_seeker_filters, as
-- match_jobs; a lateral join rather than two subqueries a row: a third
-- cheaper), in the semantic rollout ($4: semantic_share; the others get
-- keyword matches from match_jobs). With p_alerts, only seekers who want
-- alerts, have not been sent this job, and had fewer than $6 alerts since
-- $5. p_exact orders by distance + 0 (no index).
CREATE OR REPLACE FUNCTION jobmatch_nearest_users_sql(
    p_model embedding_models, p_halfvec boolean, p_exact boolean, p_alerts boolean,
    p_normalized boolean DEFAULT FALSE
)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN format($q$
        SELECT u.user_id, u.user_embedding <=> $1 AS distance
        FROM user_preferences AS u
        CROSS JOIN LATERAL jobmatch_seeker_filters(u) AS f
        WHERE u.embedding_model = %3$L AND u.user_embedding IS NOT NULL
          AND jobmatch_in_semantic_share(u.user_id, $4)
          AND jobmatch_fits(u, f.places, f.types, $2)%5$s
        ORDER BY (%1$s <=> $1::%2$s)%4$s
        LIMIT $3 $q$,
        jobmatch_vector_search_expression('user_embedding', p_model.dimensions, p_halfvec,
                                          p_normalized),
        CASE WHEN p_halfvec THEN 'halfvec' ELSE 'vector' END || '(' || p_model.dimensions || ')',
        p_model.model,
        CASE WHEN p_exact THEN ' + 0' ELSE '' END,
        CASE WHEN p_alerts THEN $a$
          AND u.alerts_enabled
          AND NOT EXISTS (SELECT 1 FROM job_alerts AS a
                          WHERE a.job_id = ($2).id AND a.user_id = u.user_id)
          AND (SELECT count(*) FROM job_alerts AS a
               WHERE a.user_id = u.user_id AND a.sent_at > $5) < $6$a$
             ELSE '' END);
END
$$;

-- match_users' search as a table, for `jobmatch index tune --table user`:
-- the p_pool seekers nearest to job p_job_id whom it fits (no alert rules),
-- with p_normalized the index expression a candidate ivfflat index is
-- built on. Nothing for a job without a vector of the active model.
CREATE OR REPLACE FUNCTION jobmatch_nearest_users(
    p_job_id bigint, p_pool integer, p_halfvec boolean,
    p_exact boolean DEFAULT FALSE, p_normalized boolean DEFAULT FALSE
)
RETURNS TABLE (id bigint, distance double precision)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    m embedding_models := active_embedding_model();
    j canonical_jobs;
BEGIN
    SELECT * INTO j FROM canonical_jobs AS c WHERE c.id = p_job_id;
    IF NOT FOUND OR j.job_embedding IS NULL OR j.job_embedding_model IS DISTINCT FROM m.model THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE jobmatch_nearest_users_sql(m, p_halfvec, p_exact, false, p_normalized)
        USING j.job_embedding, j, p_pool, (SELECT s.semantic_share FROM jobmatch_settings AS s),
              NULL::timestamptz, NULL::integer;
END
$$;

-- How the planner runs that search for job p_job_id (EXPLAIN): whether it
-- walks the seekers' vector index (`jobmatch index tune` reports it).
CREATE OR REPLACE FUNCTION jobmatch_nearest_users_plan(
    p_job_id bigint, p_pool integer, p_halfvec boolean
)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE  -- EXPLAIN is not allowed in a STABLE function
AS $$
DECLARE
    j canonical_jobs;
BEGIN
    SELECT * INTO j FROM canonical_jobs AS c WHERE c.id = p_job_id;
    RETURN QUERY EXECUTE 'EXPLAIN ' || jobmatch_nearest_users_sql(active_embedding_model(),
                                                                   p_halfvec, false, false)
        USING j.job_embedding, j, p_pool,
              (SELECT s.semantic_share FROM jobmatch_settings AS s),
              NULL::timestamptz, NULL::integer;
END
$$;

-- Job p_job's candidate seekers: the p_pool nearest that fit it (and, with
-- p_alerts, may be alerted: jobmatch_nearest_users_sql), above the model's
-- threshold, with the pair's score and the seeker's job categories (for
-- jobmatch_relevant). No relevance floor yet: the callers apply it, so a
-- seeker's reference is computed once however many jobs they are
-- candidates for. The index knobs are the model's (jobmatch_set_search_knobs),
-- ef_search at least the pool; past exact_scan_max_rows seekers the index is walked (enable_sort
-- off, restored), as match_jobs does for jobs.
CREATE OR REPLACE FUNCTION jobmatch_user_candidates(
    p_job canonical_jobs, p_model embedding_models, s jobmatch_settings, p_pool integer,
    p_alerts boolean DEFAULT FALSE, p_since timestamptz DEFAULT NULL,
    p_at timestamptz DEFAULT now()
)
RETURNS TABLE (
    user_id bigint, similarity double precision, score double precision, categories text[]
)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_exact boolean := jobmatch_exact_search();
    v_sort text;
    v_rows double precision;
BEGIN
    PERFORM jobmatch_set_search_knobs(p_model, 'hnsw', greatest(p_model.hnsw_ef_search, p_pool));
    SELECT c.reltuples INTO v_rows FROM pg_class AS c WHERE c.oid = 'user_preferences'::regclass;
    IF NOT v_exact
       AND v_rows > coalesce(p_model.exact_scan_max_rows, 800000 / p_model.dimensions) THEN
        v_sort := current_setting('enable_sort');
        PERFORM set_config('enable_sort', 'off', true);
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH nearest AS MATERIALIZED (%1$s)
        SELECT n.user_id::bigint, 1 - n.distance,
               jobmatch_pair_score($7, 1 - n.distance, u, $2, t.query, t.skill_words,
                                   t.role_words, $8, $9, %2$s, %3$s),
               t.categories
        FROM nearest AS n
        INNER JOIN user_preferences AS u ON u.user_id = n.user_id
        CROSS JOIN LATERAL jobmatch_seeker_terms(u) AS t
        WHERE 1 - n.distance >= $10 $q$,
        jobmatch_nearest_users_sql(p_model, NOT v_exact AND jobmatch_user_index_halfvec(p_model),
                                   v_exact, p_alerts),
        jobmatch_float_literal(p_model.role_scale), jobmatch_float_literal(p_model.role_mean))
        USING p_job.job_embedding, p_job, p_pool, s.semantic_share, p_since,
              s.alerts_per_user_per_day, s, current_date - s.match_window_days, p_at,
              p_model.similarity_threshold;
    IF v_sort IS NOT NULL THEN
        PERFORM set_config('enable_sort', v_sort, true);
    END IF;
END
$$;

-- The job match_users and the alerts look at: job p_job_id if it has a
-- vector of the model and lies in match_jobs' window, not dated more than a
-- day ahead (jobmatch_latest_posted); NULL otherwise.
CREATE OR REPLACE FUNCTION jobmatch_matchable_job(
    p_job_id bigint, p_model embedding_models, s jobmatch_settings
)
RETURNS canonical_jobs
LANGUAGE sql STABLE
AS $$
    SELECT j FROM canonical_jobs AS j
    WHERE j.id = p_job_id AND j.posted_date >= current_date - s.match_window_days
      AND j.posted_date <= jobmatch_latest_posted()
      AND j.job_embedding_model = p_model.model AND j.job_embedding IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION match_users(p_job_id bigint, p_limit integer DEFAULT 100)
RETURNS TABLE (
    user_id bigint,
    similarity double precision,
    match_score numeric,
    match_reasons text[],
    match_method text
)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
-- iterative scans: the filters never leave an answer short; the knobs set
-- inside end with the call
SET "ivfflat.iterative_scan" = 'relaxed_order'
SET "hnsw.iterative_scan" = 'relaxed_order'
SET "ivfflat.probes" = 10
SET "ivfflat.max_probes" = 32768
SET "hnsw.ef_search" = 40
SET "hnsw.max_scan_tuples" = 20000
AS $$
DECLARE
    s jobmatch_settings;
    m embedding_models;
    j canonical_jobs;
    v_limit integer;
    v_at timestamptz := now();
BEGIN
    IF p_job_id IS NULL THEN
        RAISE EXCEPTION 'match_users: job_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_limit IS NULL THEN
        RAISE EXCEPTION 'match_users: limit must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_limit < 1 THEN
        RAISE EXCEPTION 'match_users: limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO s FROM jobmatch_settings;
    v_limit := least(p_limit, s.match_max_limit);
    m := active_embedding_model();
    j := jobmatch_matchable_job(p_job_id, m, s);
    IF j.id IS NULL THEN
        RETURN;
    END IF;
    -- Candidates best first; the floor is checked in that order and only
    -- until the limit is reached (a seeker's reference is a search of
    -- their own: the subquery's sort runs before the filter).
    RETURN QUERY
    SELECT c.user_id, c.similarity, jobmatch_score_percent(c.score, s),
           jobmatch_job_match_reasons(c.u, j, c.similarity), 'semantic'::text
    FROM (
        SELECT x.*, u
        FROM jobmatch_user_candidates(j, m, s, greatest(v_limit, s.match_candidates))
            AS x
        INNER JOIN user_preferences AS u ON u.user_id = x.user_id
        ORDER BY x.score DESC, x.user_id
        OFFSET 0
    ) AS c
    WHERE jobmatch_relevant(
        c.score,
        CASE WHEN jobmatch_needs_reference(m.relevance_margin, j.ai_job_function, c.categories)
            THEN jobmatch_seeker_reference(c.u, m, s, current_date - s.match_window_days, v_at)
        END,
        m.relevance_margin, j.ai_job_function, c.categories)
    ORDER BY c.score DESC, c.user_id
    LIMIT v_limit;
END
$$;
