-- match_jobs(user_id, limit): what the bot calls. Semantic (cosine) when the
-- seeker has a vector from the active model, keyword (full-text) otherwise,
-- or when nothing clears the threshold. Read-only: runs on a hot standby.

-- 3000000 -> '3M', 2500000 -> '2.5M', 750000 -> '750K': short enough for a
-- WhatsApp line.
CREATE OR REPLACE FUNCTION jobmatch_short_amount(amount numeric)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN abs(amount) >= 1000000
            THEN trim_scale(round(amount / 1000000, 1))::text || 'M'
        WHEN abs(amount) >= 1000
            THEN trim_scale(round(amount / 1000, 1))::text || 'K'
        ELSE trim_scale(round(amount, 2))::text
    END
$$;

-- Lower-cased, trimmed, non-blank elements: for case-insensitive overlaps.
-- No regular expressions: this runs for every candidate row.
CREATE OR REPLACE FUNCTION jobmatch_lower_set(items text[])
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(DISTINCT lower(btrim(item, E' \t\r\n\u00a0'))), '{}')
    FROM unnest(items) AS item
    WHERE btrim(item, E' \t\r\n\u00a0') <> ''
$$;

-- Why a job was offered, in words a person reads on a phone.
CREATE OR REPLACE FUNCTION jobmatch_job_match_reasons(
    u user_preferences, j canonical_jobs, similarity double precision
)
RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH wanted AS (
        SELECT jobmatch_lower_set(u.technical_skills || u.soft_skills) AS skills,
               jobmatch_lower_set(u.preferred_locations) AS places,
               jobmatch_lower_set(u.work_arrangements || u.preferred_locations)
                   && ARRAY['remote'] AS wants_remote
    ), shared_skills AS (
        SELECT string_agg(s.skill, ', ' ORDER BY s.ord) AS skills
        FROM (
            SELECT DISTINCT ON (lower(btrim(skill))) btrim(skill) AS skill, ord
            FROM unnest(j.ai_required_skills || j.ai_preferred_skills)
                WITH ORDINALITY AS x (skill, ord), wanted AS w
            WHERE lower(btrim(skill)) = ANY (w.skills)
            ORDER BY lower(btrim(skill)), ord
        ) AS s
    )
    SELECT array_remove(ARRAY[
        CASE WHEN similarity IS NOT NULL
            THEN 'Semantic match: ' || round((100 * similarity)::numeric) || '%' END,
        -- the seeker's own occupation (a taxonomy is loaded: 15_occupations.sql)
        CASE WHEN u.user_occupation = j.job_occupation
            THEN 'Occupation: ' || (SELECT o.label FROM occupations AS o
                                    WHERE o.code = j.job_occupation) END,
        'Skills: ' || (SELECT skills FROM shared_skills),
        CASE
            WHEN (j.ai_remote_allowed OR lower(j.ai_work_arrangement) = 'remote')
                 AND w.wants_remote THEN 'Remote'
            WHEN lower(btrim(j.ai_city)) = ANY (w.places) THEN 'In ' || btrim(j.ai_city)
            WHEN lower(btrim(j.ai_state)) = ANY (w.places) THEN 'In ' || btrim(j.ai_state)
        END,
        CASE
            WHEN jobmatch_pay(j.ai_salary_max) >= jobmatch_pay(u.salary_min)
                 AND coalesce(j.ai_salary_currency, 'NGN') = coalesce(u.salary_currency, 'NGN')
                THEN 'Pays ' || coalesce(j.ai_salary_currency, 'NGN') || ' '
                     || CASE WHEN jobmatch_pay(j.ai_salary_min) IS NOT NULL
                             THEN jobmatch_short_amount(j.ai_salary_min) || '-' ELSE '' END
                     || jobmatch_short_amount(j.ai_salary_max)
                     || ' (your minimum: ' || jobmatch_short_amount(u.salary_min) || ')'
        END
    ], NULL)
    FROM wanted AS w
$$;

-- Does a job meet what the seeker stated? Only stated constraints count:
-- places (unless willing to relocate; a remote job fits anywhere), employment
-- types, and pay (same currency, ranges must overlap; a missing bound is
-- open; zero, negative, infinite or NaN means unset: jobmatch_pay). Unknown
-- job fields never exclude a job. Plain
-- columns, not rows, so the planner inlines it into the index scan.
CREATE OR REPLACE FUNCTION jobmatch_job_fits(
    places text[], relocate boolean, types text[],
    pay_floor numeric, pay_ceiling numeric, currency text,
    city text, state text, country text, remote boolean, arrangement text,
    employment_type text, pay_min numeric, pay_max numeric, pay_currency text
)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (coalesce(cardinality(places), 0) = 0
            OR coalesce(relocate, false)
            OR coalesce(remote, false)
            OR coalesce(lower(arrangement) = 'remote', false)
            OR (city IS NULL AND state IS NULL AND country IS NULL)
            OR coalesce(lower(btrim(city)) = ANY (places), false)
            OR coalesce(lower(btrim(state)) = ANY (places), false)
            OR coalesce(lower(btrim(country)) = ANY (places), false))
       AND (coalesce(cardinality(types), 0) = 0
            OR employment_type IS NULL
            OR coalesce(lower(btrim(employment_type)) = ANY (types), false))
       AND (coalesce(jobmatch_pay(pay_floor), jobmatch_pay(pay_ceiling)) IS NULL
            OR coalesce(jobmatch_pay(pay_min), jobmatch_pay(pay_max)) IS NULL
            OR upper(coalesce(currency, 'NGN')) <> upper(coalesce(pay_currency, 'NGN'))
            OR ((jobmatch_pay(pay_floor) IS NULL
                 OR coalesce(jobmatch_pay(pay_max), jobmatch_pay(pay_min))
                 >= jobmatch_pay(pay_floor))
                AND (jobmatch_pay(pay_ceiling) IS NULL
                     OR coalesce(jobmatch_pay(pay_min), jobmatch_pay(pay_max))
                     <= jobmatch_pay(pay_ceiling))))
$$;

-- "The job fits the seeker": the one call of jobmatch_job_fits every query
-- makes, with the seeker's places and types already lower-cased
-- (jobmatch_seeker_filters; NULL: no filter) and, with p_pay false, the
-- seeker's pay left out. Inlined, the job's fields become plain columns of
-- the scan (no whole row is formed).
CREATE OR REPLACE FUNCTION jobmatch_fits(
    u user_preferences, places text[], types text[], j canonical_jobs,
    p_pay boolean DEFAULT TRUE
)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jobmatch_job_fits(places, u.willing_to_relocate, types,
               CASE WHEN p_pay THEN u.salary_min END, CASE WHEN p_pay THEN u.salary_max END,
               u.salary_currency,
               j.ai_city, j.ai_state, j.ai_country, j.ai_remote_allowed,
               j.ai_work_arrangement, j.ai_employment_type,
               j.ai_salary_min, j.ai_salary_max, j.ai_salary_currency)
$$;

-- Share of the seeker's skills (already lower-cased) that the job names.
-- One pass over the job's skills: this runs for every candidate.
CREATE OR REPLACE FUNCTION jobmatch_skill_overlap(wanted text[], required text[], preferred text[])
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN coalesce(cardinality(wanted), 0) = 0 THEN 0
        ELSE (SELECT count(DISTINCT lower(btrim(skill))) FROM unnest(required || preferred) AS skill
              WHERE lower(btrim(skill)) = ANY (wanted))::double precision
             / cardinality(wanted) END
$$;

-- Whether seeker p_user_id is in the semantic rollout of p_share percent:
-- a stable bucket 0-99 from md5(user_id), so a seeker keeps their group
-- as the share grows, and a share of 100 is everyone.
CREATE OR REPLACE FUNCTION jobmatch_in_semantic_share(p_user_id bigint, p_share integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_share >= 100
        OR ('x' || left(md5(p_user_id::text), 8))::bit(32)::bigint % 100 < p_share
$$;

-- SET jobmatch.exact_search = on: the exact search (no vector index, full
-- precision), the operator's ground truth. Honoured only for a session
-- whose login has the owner's rights (current_user, inside the definer
-- functions that read it, is their owner): every other caller's setting is
-- ignored, or the bot could turn each match_users call, the alert feed and
-- every seeker reference in them into a scan of every vector.
CREATE OR REPLACE FUNCTION jobmatch_exact_search()
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(current_setting('jobmatch.exact_search', true), '') = 'on'
           AND pg_has_role(session_user, current_user, 'USAGE')
$$;

CREATE OR REPLACE FUNCTION match_jobs(p_user_id bigint, p_limit integer DEFAULT 10)
RETURNS TABLE (
    job_id bigint,
    title text,
    company text,
    location text,
    work_arrangement text,
    remote_allowed boolean,
    salary_min numeric,
    salary_max numeric,
    salary_currency text,
    posted_date timestamptz,
    similarity double precision,
    match_score numeric,
    match_reasons text[],
    match_method text
)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
-- Iterative index scans keep going until enough rows pass the window and
-- model filters, so an ANN index never returns fewer rows than exist. Set on
-- the function, these (and the probes set inside it) end with the call.
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
    u user_preferences;
    v_limit integer;
    v_window_start timestamptz;
    v_query tsquery;
    v_places text[];
    v_types text[];
    v_near_misses integer := 0;
    t record;
    v_searched boolean := false;
    v_enable_sort text;
    v_rows bigint;
    v_exact boolean := jobmatch_exact_search();
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'match_jobs: user_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_limit IS NULL THEN
        RAISE EXCEPTION 'match_jobs: limit must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_limit < 1 THEN
        RAISE EXCEPTION 'match_jobs: limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO s FROM jobmatch_settings;
    v_limit := least(p_limit, s.match_max_limit);
    v_window_start := current_date - s.match_window_days;

    SELECT * INTO u FROM user_preferences AS p WHERE p.user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- the seeker's words and job categories (jobmatch_seeker_terms,
    -- 46_match_pair.sql: shared with match_users) and hard filters
    t := jobmatch_seeker_terms(u);
    v_query := t.query;
    SELECT f.places, f.types INTO v_places, v_types FROM jobmatch_seeker_filters(u) AS f;
    IF s.match_hard_filters THEN
        v_near_misses := s.match_near_misses;
    END IF;

    m := active_embedding_model();
    -- semantic_share: seekers outside the rollout get the keyword path
    IF u.user_embedding IS NOT NULL AND u.embedding_model = m.model
       AND jobmatch_in_semantic_share(u.user_id, s.semantic_share) THEN
        -- Index knobs from the model's row (the function's SET clauses make
        -- them end with the call); past exact_scan_max_rows window jobs the
        -- index is walked (enable_sort off, restored right after: the
        -- planner does not cost detoasting wide vectors, bench/README.md).
        -- SET jobmatch.exact_search = on: no index, full precision, the
        -- ground truth a recall is measured against.
        v_enable_sort := jobmatch_prepare_job_search(m, v_window_start, v_exact);
        -- Candidates, both from the index (jobmatch_scored_jobs_sql): the
        -- nearest jobs that fit the seeker's stated constraints, and the
        -- nearest jobs of the window whatever the constraints ("open"),
        -- each with the pair's score (jobmatch_pair_score: cosine, plus the
        -- seeker's words, less the experience gap, plus a little for
        -- freshness). Relevant (jobmatch_relevant): a score within the
        -- model's relevance_margin of the seeker's own best candidate of
        -- any kind (the reference: what the seeker would get without
        -- constraints), so a job that fits but is far from what the seeker
        -- asked for is not filler; a job whose function is one of the
        -- seeker's job categories is relevant too (the seeker named that
        -- field). Only relevant jobs are returned: fitting ones first
        -- ('semantic'), then up to match_near_misses that break exactly one
        -- stated constraint ('near_miss', the reason first in
        -- match_reasons). match_users (48_match_users.sql) reads the same
        -- definitions.
        -- Static: planned once per session, not per call.
        RETURN QUERY
        WITH scored AS MATERIALIZED (
            SELECT * FROM jobmatch_scored_jobs(u, m, s, v_window_start,
                                               greatest(v_limit, s.match_candidates), v_places,
                                               v_types, t.query, t.skill_words, t.role_words,
                                               now(), v_enable_sort IS NOT NULL)
        ), relevant AS (
            SELECT c.id AS job, c.fits AS fitting, c.similarity AS cosine, c.score AS ranking
            FROM scored AS c
            WHERE c.similarity >= m.similarity_threshold
              AND jobmatch_relevant(c.score, (SELECT max(r.score) FROM scored AS r),
                                    m.relevance_margin, c.job_function, t.categories)
              AND (c.fits OR v_near_misses > 0)
        ), fitting AS MATERIALIZED (
            SELECT c.*, NULL::text AS miss FROM relevant AS c WHERE c.fitting
            ORDER BY c.ranking DESC, c.job LIMIT v_limit
        ), misses AS (
            -- near misses fill what the fitting jobs leave of the limit;
            -- the reason (a job breaking exactly one constraint has one) is
            -- worked out best first and only until enough are found
            SELECT c.*, x.miss
            FROM (SELECT * FROM relevant AS r WHERE NOT r.fitting
                  ORDER BY r.ranking DESC, r.job OFFSET 0) AS c
            CROSS JOIN LATERAL (
                SELECT jobmatch_near_miss_reason(u, j, v_places, v_types) AS miss
                FROM canonical_jobs AS j WHERE j.id = c.job
            ) AS x
            WHERE x.miss IS NOT NULL
            LIMIT least(v_near_misses, v_limit - (SELECT count(*) FROM fitting))
        ), shown AS (
            SELECT * FROM fitting
            UNION ALL
            SELECT * FROM misses
        )
        SELECT j.id::bigint, j.title::text, j.company::text,
               coalesce(nullif(concat_ws(', ', j.ai_city, j.ai_state), ''), j.location)::text,
               j.ai_work_arrangement::text, j.ai_remote_allowed,
               jobmatch_pay(j.ai_salary_min), jobmatch_pay(j.ai_salary_max),
               j.ai_salary_currency::text, j.posted_date::timestamptz,
               c.cosine,
               jobmatch_score_percent(c.ranking, s),
               CASE WHEN c.fitting THEN jobmatch_job_match_reasons(u, j, c.cosine)
                    ELSE c.miss || jobmatch_job_match_reasons(u, j, c.cosine) END,
               CASE WHEN c.fitting THEN 'semantic' ELSE 'near_miss' END::text
        FROM shown AS c
        INNER JOIN canonical_jobs AS j ON j.id = c.job
        ORDER BY c.fitting DESC, c.ranking DESC, c.job;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        IF v_enable_sort IS NOT NULL THEN
            PERFORM set_config('enable_sort', v_enable_sort, true);
        END IF;
        IF v_rows > 0 THEN
            RETURN;
        END IF;
        v_searched := true;
    END IF;

    IF v_query IS NULL THEN
        RETURN;
    END IF;
    -- Keyword fallback (jobmatch_keyword_matches, 35_keyword_fallback.sql)
    RETURN QUERY
    SELECT * FROM jobmatch_keyword_matches(u, v_query, v_window_start, v_places, v_types,
                                           v_limit, greatest(s.keyword_candidates, v_limit),
                                           v_searched);
END
$$;
