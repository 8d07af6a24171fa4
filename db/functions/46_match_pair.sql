-- The rules of a (seeker, job) pair, one definition each, read by both
-- directions: match_jobs (a seeker's jobs, 40_match_jobs.sql) and
-- match_users (a job's seekers, 48_match_users.sql). Whether the job fits
-- what the seeker stated is jobmatch_fits (40_match_jobs.sql); here: the
-- seeker's terms, the pair's score, whether the job is relevant to the
-- seeker, and the seeker's candidates the relevance floor is measured
-- against.

-- What the score needs of a seeker, derived once per seeker: their words
-- (keyword query, skill words, role words) and their job categories (the
-- first 50, for jobmatch_relevant). Their hard filters are
-- jobmatch_seeker_filters (50_vector_index.sql).
CREATE OR REPLACE FUNCTION jobmatch_seeker_terms(
    u user_preferences,
    OUT query tsquery, OUT skill_words text[], OUT role_words text[], OUT categories text[]
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jobmatch_user_keyword_query(u), jobmatch_words(u.technical_skills),
           jobmatch_words(u.job_roles, false), jobmatch_lower_set(u.job_categories[1:50])
$$;

-- The ranking score of a pair: cosine, plus what the work is: where both
-- sides have an occupation (a taxonomy is loaded: 15_occupations.sql)
-- their agreement, else the role vectors' cosine in the model's units
-- (role_scale * (cosine - role_mean): the spread of the profile cosines
-- among a seeker's candidates; 0 when a side has no role vector). One or
-- the other: the occupation is read from the role vector, and fitted
-- together the role weight goes to 0 (bench/quality/README.md). Plus the
-- seeker's words (keyword rank, skill words, role words in the job's
-- titles), less the experience gap, plus a little for
-- freshness (1 for a job posted at p_at, 0 at the window's start). Weights
-- in jobmatch_settings, the role units in embedding_models (migration
-- 0014). Nothing of other pairs: match_jobs and match_users give a pair
-- the same number. Inlined by the planner. The keyword rank is only
-- computed for a job the query matches (ts_rank_cd is the costliest term,
-- and 0 for a job without a cover of the query).
CREATE OR REPLACE FUNCTION jobmatch_pair_score(
    s jobmatch_settings, similarity double precision, u user_preferences, j canonical_jobs,
    query tsquery, skill_words text[], role_words text[],
    window_start timestamptz, p_at timestamptz,
    role_scale double precision, role_mean double precision
)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT similarity
           + CASE WHEN u.user_occupation IS NOT NULL AND j.job_occupation IS NOT NULL
               THEN s.rank_occupation_weight
                    * jobmatch_occupation_match(u.user_occupation, j.job_occupation)
               ELSE s.rank_role_weight * coalesce(
                   role_scale * (1 - (u.user_role_embedding <=> j.job_role_embedding)
                                 - role_mean), 0)
             END
           + s.rank_keyword_weight
             * CASE WHEN j.job_document @@ query THEN ts_rank_cd(j.job_document, query, 32)
                    ELSE 0 END
           + s.rank_skill_weight * jobmatch_word_share(skill_words, j.job_document, '{b,c}'::"char"[])
           + s.rank_title_weight * jobmatch_word_share(role_words, j.job_document, '{a}'::"char"[])
           - s.rank_experience_weight * jobmatch_experience_gap(
               u.experience_level, u.years_of_experience, j.ai_job_level,
               j.ai_years_experience_min, j.ai_years_experience_max)
           + s.rank_freshness_weight
             * greatest(0, 1 - extract(epoch FROM p_at - j.posted_date)
                        / greatest(extract(epoch FROM p_at - window_start), 1))
$$;

-- match_score, 0-100: the score over the sum of the positive weights,
-- capped.
CREATE OR REPLACE FUNCTION jobmatch_score_percent(score double precision, s jobmatch_settings)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT round(100 * least(1, greatest(0, score)
                          / (1 + s.rank_keyword_weight + s.rank_skill_weight
                             + s.rank_title_weight))::numeric, 1)
$$;

-- Whether the relevance floor applies to a pair: the model has a margin
-- and the job's function is not one of the seeker's job categories (the
-- seeker named that field: relevant whatever the score).
CREATE OR REPLACE FUNCTION jobmatch_needs_reference(
    margin double precision, job_function text, categories text[]
)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT margin IS NOT NULL
           AND NOT coalesce(lower(btrim(job_function)) = ANY (categories), false)
$$;

-- Is the job relevant to the seeker? Its score is within the model's
-- relevance_margin of the seeker's reference (the best score among the
-- seeker's candidates of any kind: what they would get with no
-- constraints), or the floor does not apply (jobmatch_needs_reference).
CREATE OR REPLACE FUNCTION jobmatch_relevant(
    score double precision, reference double precision, margin double precision,
    job_function text, categories text[]
)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT NOT jobmatch_needs_reference(margin, job_function, categories)
           OR score >= reference - margin
$$;

-- A float as a literal of the query text (the model's constants are
-- part of the generated query, as its model name is): the shortest exact
-- text form, typed.
CREATE OR REPLACE FUNCTION jobmatch_float_literal(p_value double precision)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT quote_literal(p_value::text) || '::double precision'
$$;

-- Whether a job fits seeker u whatever the job: no place stated (or willing
-- to relocate), no employment type, no pay. Then jobmatch_fits is true for
-- every job and the "open" search (no constraints) is the fitting one.
CREATE OR REPLACE FUNCTION jobmatch_seeker_unconstrained(
    u user_preferences, places text[], types text[]
)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (coalesce(cardinality(places), 0) = 0 OR coalesce(u.willing_to_relocate, false))
           AND coalesce(cardinality(types), 0) = 0
           AND coalesce(jobmatch_pay(u.salary_min), jobmatch_pay(u.salary_max)) IS NULL
$$;

-- A seeker's scored candidates from the index, as query text, for
-- jobmatch_scored_jobs past exact_scan_max_rows window jobs: CTEs nearest
-- (the $3 nearest jobs of the window that fit: jobmatch_nearest_jobs_sql),
-- open (the $3 nearest whatever the constraints: no places, no types, no
-- pay; skipped for a seeker who states none, it would be the same),
-- candidates (both, once each, fits true for the first) and scored (the
-- job's id and function, fits, similarity, score). Parameters: $1 the
-- seeker's vector, $2 the window's start, $3 the pool, $4 the seeker, $5
-- places, $6 types, $7 jobmatch_settings, $8 keyword query, $9 skill words,
-- $10 role words ($5, $6 from jobmatch_seeker_filters, $8-$10 from
-- jobmatch_seeker_terms), $11 now.
CREATE OR REPLACE FUNCTION jobmatch_scored_jobs_sql(p_model embedding_models)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v_search text := jobmatch_nearest_jobs_sql(p_model, p_model.index_halfvec);
BEGIN
    RETURN format($q$
        WITH nearest AS MATERIALIZED (%1$s),
        open AS MATERIALIZED (
            SELECT n.id, n.distance FROM nearest AS n
            WHERE jobmatch_seeker_unconstrained($4, $5, $6)
            UNION ALL
            SELECT o.id, o.distance FROM (%2$s) AS o
            WHERE NOT jobmatch_seeker_unconstrained($4, $5, $6)
        ), candidates AS (
            SELECT n.id, n.distance, true AS fits FROM nearest AS n
            UNION ALL
            SELECT o.id, o.distance, false FROM open AS o
            WHERE NOT EXISTS (SELECT 1 FROM nearest AS n WHERE n.id = o.id)
        ), scored AS MATERIALIZED (
            SELECT j.id, j.ai_job_function AS job_function, c.fits,
                   1 - c.distance AS similarity,
                   jobmatch_pair_score($7, 1 - c.distance, $4, j, $8, $9, $10, $2, $11,
                                       %3$s, %4$s) AS score
            FROM candidates AS c
            INNER JOIN canonical_jobs AS j ON j.id = c.id
        ) $q$, v_search,
        replace(v_search, 'jobmatch_fits($4, $5, $6, j)',
                'jobmatch_fits($4, NULL, NULL, j, false)'),
        jobmatch_float_literal(p_model.role_scale), jobmatch_float_literal(p_model.role_mean));
END
$$;

-- A seeker's scored candidates, for match_jobs and
-- jobmatch_seeker_reference (one definition, so both get the same
-- numbers): the p_pool nearest jobs of the window that fit the seeker's
-- stated constraints (fits), and the p_pool nearest whatever the
-- constraints ("open", fits false unless among the first), each with the
-- pair's score (jobmatch_pair_score). p_walk: through the index
-- (jobmatch_scored_jobs_sql). Otherwise one exact pass over the window at
-- full precision, no index: the ground truth, and the cheapest search of a
-- window of up to exact_scan_max_rows jobs (each vector read once, nearest
-- and open both taken from it). That query is static: planned once per
-- session (a generic plan: nothing in it depends on the values), where a
-- query built per call is planned per call.
CREATE OR REPLACE FUNCTION jobmatch_scored_jobs(
    u user_preferences, p_model embedding_models, s jobmatch_settings,
    p_window_start timestamptz, p_pool integer, p_places text[], p_types text[],
    p_query tsquery, p_skill_words text[], p_role_words text[], p_at timestamptz,
    p_walk boolean
)
RETURNS TABLE (
    id bigint, job_function text, fits boolean, similarity double precision,
    score double precision
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = 'force_generic_plan'
AS $$
DECLARE
    v_open boolean := jobmatch_seeker_unconstrained(u, p_places, p_types);
BEGIN
    IF p_walk THEN
        RETURN QUERY EXECUTE jobmatch_scored_jobs_sql(p_model)
            || ' SELECT c.id, c.job_function, c.fits, c.similarity, c.score FROM scored AS c'
            USING u.user_embedding, p_window_start, p_pool, u, p_places, p_types, s, p_query,
                  p_skill_words, p_role_words, p_at;
        RETURN;
    END IF;
    RETURN QUERY
    WITH window_jobs AS MATERIALIZED (
        SELECT w.id, w.job_embedding <=> u.user_embedding AS distance,
               (v_open OR jobmatch_fits(u, p_places, p_types, w)) AS fits
        FROM canonical_jobs AS w
        WHERE w.job_embedding_model = p_model.model
          AND w.posted_date >= p_window_start AND w.posted_date <= jobmatch_latest_posted()
    ), nearest AS MATERIALIZED (
        SELECT n.id, n.distance FROM window_jobs AS n WHERE n.fits
        ORDER BY n.distance LIMIT p_pool
    ), open AS MATERIALIZED (
        SELECT o.id, o.distance FROM window_jobs AS o ORDER BY o.distance LIMIT p_pool
    ), candidates AS (
        SELECT n.id, n.distance, true AS fits FROM nearest AS n
        UNION ALL
        SELECT o.id, o.distance, false FROM open AS o
        WHERE NOT EXISTS (SELECT 1 FROM nearest AS n WHERE n.id = o.id)
    )
    SELECT j.id::bigint, j.ai_job_function::text, c.fits, 1 - c.distance,
           jobmatch_pair_score(s, 1 - c.distance, u, j, p_query, p_skill_words, p_role_words,
                               p_window_start, p_at, p_model.role_scale, p_model.role_mean)
    FROM candidates AS c
    INNER JOIN canonical_jobs AS j ON j.id = c.id;
END
$$;

-- The job index's knobs for a search (jobmatch_set_search_knobs; they end
-- with the calling function, whose SET clauses name them), and whether the
-- search walks the index: past the model's exact_scan_max_rows window jobs
-- (jobmatch_vector_index_walk), or when the session has turned enable_sort off (how
-- a test or benchmark asks for the index path on a small window). Walking,
-- enable_sort goes off so the planner takes the index, and its value to
-- restore is returned; NULL otherwise: jobmatch_scored_jobs then makes one
-- exact pass over the window.
CREATE OR REPLACE FUNCTION jobmatch_prepare_job_search(
    p_model embedding_models, p_window_start timestamptz, p_exact boolean
)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_sort text;
BEGIN
    PERFORM jobmatch_set_search_knobs(p_model);
    IF NOT p_exact AND (NOT current_setting('enable_sort')::boolean
                        OR jobmatch_vector_index_walk(p_model, p_window_start)) THEN
        v_sort := current_setting('enable_sort');
        PERFORM set_config('enable_sort', 'off', true);
    END IF;
    RETURN v_sort;
END
$$;

-- A seeker's reference: the best score among their candidates (match_jobs'
-- pool for its largest limit), the value match_jobs measures its relevance
-- floor from. Same query text, same index settings: for a seeker match_jobs
-- would answer at p_at, the same number.
CREATE OR REPLACE FUNCTION jobmatch_seeker_reference(
    u user_preferences, p_model embedding_models, s jobmatch_settings,
    p_window_start timestamptz, p_at timestamptz
)
RETURNS double precision
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    t record;
    f record;
    v_best double precision;
    v_sort text;
    v_exact boolean := jobmatch_exact_search();
BEGIN
    IF u.user_embedding IS NULL OR u.embedding_model IS DISTINCT FROM p_model.model THEN
        RETURN NULL;
    END IF;
    t := jobmatch_seeker_terms(u);
    SELECT * INTO f FROM jobmatch_seeker_filters(u);
    v_sort := jobmatch_prepare_job_search(p_model, p_window_start, v_exact);
    SELECT max(c.score) INTO v_best
    FROM jobmatch_scored_jobs(u, p_model, s, p_window_start,
                              greatest(s.match_max_limit, s.match_candidates),
                              f.places, f.types, t.query, t.skill_words, t.role_words, p_at,
                              v_sort IS NOT NULL) AS c;
    IF v_sort IS NOT NULL THEN
        PERFORM set_config('enable_sort', v_sort, true);
    END IF;
    RETURN v_best;
END
$$;
