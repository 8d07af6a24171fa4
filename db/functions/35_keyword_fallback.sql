-- The keyword fallback of match_jobs (40_match_jobs.sql), for a seeker
-- without a vector yet or when nothing clears the similarity threshold: the
-- seeker's words as full-text queries, and the bounded pool of jobs it ranks.

-- A list's first 50 items, 300 characters each, space-separated: what a
-- job's document reads of a list (migration 0011), for the seeker's side.
CREATE OR REPLACE FUNCTION jobmatch_keyword_items(items text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT string_agg(left(u.item, 300), ' ' ORDER BY u.ord)
    FROM unnest(items) WITH ORDINALITY AS u (item, ord)
    WHERE u.ord <= 50
$$;

-- An OR of every lexeme of the seeker's roles, categories and skills: a job
-- sharing more of them ranks higher. Bounded whatever the seeker's lists
-- hold: the first 50 items of each list (jobmatch_keyword_items), and of
-- their lexemes the 200 that come first.
CREATE OR REPLACE FUNCTION jobmatch_user_keyword_query(u user_preferences)
RETURNS tsquery
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT string_agg(quote_literal(w.lexeme), ' | ' ORDER BY w.lexeme)::tsquery
    FROM (
        SELECT t.lexeme
        FROM unnest(to_tsvector('english'::regconfig, concat_ws(' ',
            jobmatch_keyword_items(u.job_roles),
            jobmatch_keyword_items(u.job_categories),
            jobmatch_keyword_items(u.technical_skills)))) AS t
        ORDER BY t.positions[1], t.lexeme
        LIMIT 200
    ) AS w
$$;

-- The seeker's roles, each as a whole: every lexeme of one role (AND), any
-- of the roles (OR). 'Graduate Assistant' matches a job naming both words,
-- not one that only shares 'assistant' or a skill. NULL without roles.
-- Bounded: the first 50 roles, each by its first 10 lexemes.
CREATE OR REPLACE FUNCTION jobmatch_user_role_query(u user_preferences)
RETURNS tsquery
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT string_agg('(' || r.lexemes || ')', ' | ' ORDER BY r.ord)::tsquery
    FROM (
        SELECT x.ord,
               (SELECT string_agg(quote_literal(w.lexeme), ' & ' ORDER BY w.lexeme)
                FROM (SELECT t.lexeme
                      FROM unnest(to_tsvector('english'::regconfig, left(x.role, 300))) AS t
                      ORDER BY t.positions[1], t.lexeme
                      LIMIT 10) AS w) AS lexemes
        FROM unnest(u.job_roles) WITH ORDINALITY AS x (role, ord)
        WHERE x.ord <= 50
    ) AS r
    WHERE r.lexemes IS NOT NULL
$$;

-- The keyword fallback's candidates: ids of the newest p_pool jobs in the
-- window (never more than a day ahead: jobmatch_latest_posted) that match
-- p_match, do not match p_exclude and fit the seeker's stated constraints
-- (places and types already lower-cased; NULL: no
-- filter). Its cost is bounded by what it has to find, not by the table:
--   1. walk the posted_date index, newest first, over at most 10 x p_pool
--      window jobs: enough when at least one in ten matches and fits;
--   2. otherwise the density just seen decides: walk on, for about as many
--      rows as it should take to find the rest, or leave the plan to the
--      planner, which takes the GIN index for rare words: that reads every
--      match in the whole table (every month kept, not only the window),
--      each costing about 4 rows walked (bench.perf tiers: a walked row
--      ~0.4-0.5 us, a row of the bitmap heap scan ~1.5-1.7 us).
-- The planner cannot make this choice itself: it estimates an AND of words
-- that go together (the words of a role) as if they were independent, i.e.
-- far too rare. 'Web Content Manager', named by one job in 27, it looks
-- up in the GIN index: 22,000 matches over the year read, 50 ms at 600,000
-- jobs and growing with the history kept, where walking finds 200 in 5 ms.
CREATE OR REPLACE FUNCTION jobmatch_keyword_pool(
    p_match tsquery, p_exclude tsquery, p_window_start timestamptz,
    u user_preferences, p_places text[], p_types text[], p_pool integer
)
RETURNS bigint[]
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    -- $7: how many of the window's newest jobs to read at most. The inner
    -- LIMIT keeps the planner on the posted_date index whatever it thinks
    -- of the words' frequency.
    walk CONSTANT text := $q$
        SELECT array_agg(r.id) FROM (
            SELECT r.id FROM (
                SELECT j.id,
                       j.job_document @@ $1 AND NOT coalesce(j.job_document @@ $2, false)
                       AND jobmatch_fits($5, $4, $6, j) AS wanted
                FROM canonical_jobs AS j
                WHERE j.posted_date >= $3 AND j.posted_date <= jobmatch_latest_posted()
                ORDER BY j.posted_date DESC
                LIMIT $7
            ) AS r
            WHERE r.wanted
            LIMIT $8
        ) AS r $q$;
    -- The same set, with the plan left to the planner (the GIN index for
    -- anything it believes rare).
    anywhere CONSTANT text := $q$
        SELECT array_agg(r.id) FROM (
            SELECT j.id
            FROM canonical_jobs AS j
            WHERE j.job_document @@ $1 AND NOT coalesce(j.job_document @@ $2, false)
              AND j.posted_date >= $3 AND j.posted_date <= jobmatch_latest_posted()
              AND jobmatch_fits($5, $4, $6, j)
            ORDER BY j.posted_date DESC, j.id DESC
            LIMIT $7
        ) AS r $q$;
    v_ids bigint[];
    v_read bigint := 10::bigint * p_pool;
    v_found integer;
    v_more double precision;
    v_table_rows double precision;
BEGIN
    EXECUTE walk INTO v_ids
        USING p_match, p_exclude, p_window_start, p_places, u, p_types, v_read, p_pool;
    v_found := coalesce(cardinality(v_ids), 0);
    IF v_found >= p_pool THEN
        RAISE DEBUG 'keyword pool: % found walking % rows', v_found, v_read;
        RETURN v_ids;
    END IF;
    SELECT greatest(c.reltuples, 0) INTO v_table_rows
    FROM pg_class AS c WHERE c.oid = 'canonical_jobs'::regclass;
    -- rows still to walk at the density seen, vs. ~matches in the whole table
    v_more := (p_pool - v_found)::double precision * v_read / greatest(v_found, 0.5);
    IF v_more < 4 * v_table_rows * v_found / v_read THEN
        v_read := v_read + ceil(2 * v_more)::bigint;
        EXECUTE walk INTO v_ids
            USING p_match, p_exclude, p_window_start, p_places, u, p_types, v_read, p_pool;
        IF coalesce(cardinality(v_ids), 0) >= p_pool THEN
            RAISE DEBUG 'keyword pool: % found walking on to % rows', p_pool, v_read;
            RETURN v_ids;
        END IF;
    END IF;
    EXECUTE anywhere INTO v_ids
        USING p_match, p_exclude, p_window_start, p_places, u, p_types, p_pool;
    RAISE DEBUG 'keyword pool: % found by the planner''s plan (% in the first % rows)',
        coalesce(cardinality(v_ids), 0), v_found, 10::bigint * p_pool;
    RETURN v_ids;
END
$$;

-- match_jobs' keyword fallback, in two tiers: jobs naming one of the
-- seeker's roles as a whole, then (only if they are fewer than the limit)
-- any other job sharing a word of their roles, categories or skills
-- (p_query). Each tier ranks only its newest p_pool jobs that fit
-- (jobmatch_keyword_pool: a bounded cost however many jobs share a common
-- word), by how much of the seeker's words they share (normalization 32:
-- rank / (rank + 1), a 0-1 score), newer first on ties. p_searched: the
-- seeker has a vector whose nearest jobs were not relevant; they get jobs
-- naming their role, never the jobs that only share a word. Rows as
-- match_jobs returns them.
CREATE OR REPLACE FUNCTION jobmatch_keyword_matches(
    u user_preferences, p_query tsquery, p_window_start timestamptz, p_places text[],
    p_types text[], p_limit integer, p_pool integer, p_searched boolean
)
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
AS $$
DECLARE
    v_strict tsquery := jobmatch_user_role_query(u);
    v_match tsquery;
    v_exclude tsquery;
    v_ids bigint[];
    v_rows bigint := 0;
    v_got bigint;
BEGIN
    IF p_query IS NULL THEN
        RETURN;
    END IF;
    FOREACH v_match IN ARRAY ARRAY[v_strict, p_query] LOOP
        CONTINUE WHEN v_match IS NULL OR v_match IS NOT DISTINCT FROM v_exclude;
        EXIT WHEN p_searched AND v_match IS DISTINCT FROM v_strict;
        v_ids := jobmatch_keyword_pool(v_match, v_exclude, p_window_start, u,
                                       p_places, p_types, p_pool);
        RETURN QUERY
        SELECT j.id::bigint, j.title::text, j.company::text,
               coalesce(nullif(concat_ws(', ', j.ai_city, j.ai_state), ''), j.location)::text,
               j.ai_work_arrangement::text, j.ai_remote_allowed,
               jobmatch_pay(j.ai_salary_min), jobmatch_pay(j.ai_salary_max),
               j.ai_salary_currency::text, j.posted_date::timestamptz,
               NULL::double precision,
               round(100 * k.rank::numeric, 1),
               jobmatch_job_match_reasons(u, j, NULL),
               'keyword'::text
        FROM canonical_jobs AS j
        CROSS JOIN LATERAL (
            SELECT ts_rank_cd(j.job_document, p_query, 32) AS rank
        ) AS k
        WHERE j.id = ANY (v_ids)
        ORDER BY k.rank DESC, j.posted_date DESC, j.id
        LIMIT p_limit - v_rows;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        v_rows := v_rows + v_got;
        -- Fewer than the limit: the pool held every role match that fits,
        -- so the next tier leaves them all out.
        EXIT WHEN v_rows >= p_limit;
        v_exclude := v_strict;
    END LOOP;
END
$$;
