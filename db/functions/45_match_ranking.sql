-- match_jobs' ranking helpers (40_match_jobs.sql): word overlaps, the
-- experience gap, and the reason a near miss is one. Each runs per
-- candidate, so each is a few array or scalar operations.

-- The seeker's words as English lexemes (to_tsvector, as job_document is
-- built), for word-level overlaps: people rarely write a skill or a title
-- the way a posting does, but they share its words. Role words leave out
-- words that say the level or nothing of the work ('Senior', 'Officer'...),
-- so 'Senior Accountant' is evidence of 'Accountant', not of 'Senior Driver'.
-- Bounded as the keyword queries are (35_keyword_fallback.sql): the first 50
-- items, 300 characters each, and of their lexemes the 200 that come first,
-- so a seeker with 150,000 skills still gets an answer.
CREATE OR REPLACE FUNCTION jobmatch_words(items text[], generic boolean DEFAULT true)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(w.lexeme ORDER BY w.lexeme), '{}')
    FROM (
        SELECT t.lexeme
        FROM unnest(to_tsvector('english'::regconfig,
            coalesce(jobmatch_keyword_items(items), ''))) AS t
        WHERE generic OR t.lexeme <> ALL (ARRAY[
            'senior', 'junior', 'lead', 'head', 'chief', 'princip', 'trainee', 'intern',
            'entri', 'level', 'mid', 'graduat', 'staff', 'offic', 'associ', 'assist',
            'job', 'work', 'role', 'posit', 'experienc', 'expert', 'specialist', 'i',
            'ii', 'iii', 'manag', 'supervisor', 'coordin', 'executive', 'execut', 'worker'
        ])
        ORDER BY t.positions[1], t.lexeme
        LIMIT 200
    ) AS w
$$;

-- Share of the seeker's words (jobmatch_words) found among the job's words
-- of the given job_document weights ('{a}': titles, '{b,c}': skills).
-- Runs for every candidate, so no subquery: the words found are counted as
-- |job's| + |seeker's| - |both together| (tsvector lexemes are distinct),
-- three C calls instead of an unnest and a scan per row.
CREATE OR REPLACE FUNCTION jobmatch_word_share(
    wanted text[], document tsvector, weights "char"[]  -- noqa: RF06
)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN coalesce(cardinality(wanted), 0) = 0 OR document IS NULL THEN 0
        ELSE (length(ts_filter(document, weights))
              + length(array_to_tsvector(array_remove(array_remove(wanted, NULL), '')))
              - length(ts_filter(document, weights)
                       || array_to_tsvector(array_remove(array_remove(wanted, NULL), ''))))
             ::double precision / cardinality(wanted) END
$$;

-- Seniority as a number: Entry/Junior/Intern 0, Mid 1, Senior 2, Lead and
-- Manager 3; NULL if not recognised. Substrings of the lower-cased level by
-- LIKE, not a case-insensitive regular expression: it runs twice per
-- candidate pair, and LIKE is a quarter of the cost.
CREATE OR REPLACE FUNCTION jobmatch_level_rank(level text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN lower(level)
             LIKE ANY ('{%entry%,%junior%,%intern%,%graduate%,%trainee%,%fresh%}'::text[]) THEN 0
        WHEN lower(level) LIKE ANY ('{%mid%,%intermediate%,%associate%}'::text[]) THEN 1
        WHEN lower(level) LIKE '%senior%' THEN 2
        WHEN lower(level)
             LIKE ANY ('{%lead%,%manager%,%head%,%director%,%principal%,%executive%}'::text[]) THEN 3
    END
$$;

-- The level gap of a job naming several levels: the nearest one counts
-- (jobmatch_experience_gap's rare case, apart so that the common one is
-- inlined: a function with a subquery is not).
CREATE OR REPLACE FUNCTION jobmatch_level_gap(job_levels text[], seeker_level text)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce((SELECT min(abs(jobmatch_level_rank(l) - jobmatch_level_rank(seeker_level)))
                     FROM unnest(job_levels) AS l) / 3.0, 0)
$$;

-- How far a job's seniority is from the seeker's, 0 (fits or unknown) to 1:
-- by years when both sides state them (short of the job's minimum counts
-- fully, beyond its maximum by more than 3 years counts half), else by
-- level (each level apart a third). A ranking term, never a filter: a senior
-- seeker and an entry-level job are a weak match, not no match. No subquery,
-- so the planner inlines it into the ranking (one level, the usual case,
-- directly; several: jobmatch_level_gap).
CREATE OR REPLACE FUNCTION jobmatch_experience_gap(
    seeker_level text, seeker_years numeric,
    job_levels text[], job_years_min integer, job_years_max integer
)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN seeker_years IS NOT NULL AND seeker_years >= 0
             AND coalesce(nullif(job_years_min, 0), nullif(job_years_max, 0)) IS NOT NULL
            THEN least(1, (greatest(0, coalesce(job_years_min, 0) - seeker_years)
                           + 0.5 * greatest(0, seeker_years
                                  - coalesce(nullif(job_years_max, 0), job_years_min) - 3))
                          / 4.0)::double precision
        WHEN cardinality(job_levels) = 1 AND array_ndims(job_levels) = 1
            THEN coalesce(abs(jobmatch_level_rank(job_levels[array_lower(job_levels, 1)])
                              - jobmatch_level_rank(seeker_level)) / 3.0, 0)::double precision
        ELSE jobmatch_level_gap(job_levels, seeker_level)::double precision
    END
$$;

-- The one stated constraint a job that does not fit breaks, in words, with
-- what the seeker asked for: 'Full-time (you asked for Contract)'; NULL if
-- it breaks more than one. A near miss is a job with such a reason. The
-- fit is match_jobs' own (jobmatch_fits) with one constraint left out; pay
-- is read through jobmatch_pay, as every reader of a salary.
CREATE OR REPLACE FUNCTION jobmatch_near_miss_reason(
    u user_preferences, j canonical_jobs, places text[], types text[]
)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        -- relaxing only the places makes it fit: the place is the one broken
        WHEN jobmatch_fits(u, NULL, types, j)
            THEN 'In ' || coalesce(nullif(concat_ws(', ', btrim(j.ai_city), btrim(j.ai_state)), ''),
                                   btrim(j.ai_country), btrim(j.location), 'another place')
                 || ' (you asked for ' || jobmatch_join(u.preferred_locations) || ')'
        WHEN jobmatch_fits(u, places, NULL, j)
            THEN btrim(j.ai_employment_type)
                 || ' (you asked for ' || jobmatch_join(u.employment_types) || ')'
        WHEN jobmatch_fits(u, places, types, j, false)
            THEN 'Pays ' || coalesce(j.ai_salary_currency, 'NGN') || ' '
                 || concat_ws('-', jobmatch_short_amount(jobmatch_pay(j.ai_salary_min)),
                              jobmatch_short_amount(jobmatch_pay(j.ai_salary_max)))
                 || ' (you asked for '
                 || concat_ws('-', jobmatch_short_amount(jobmatch_pay(u.salary_min)),
                              jobmatch_short_amount(jobmatch_pay(u.salary_max)))
                 || CASE WHEN jobmatch_pay(u.salary_max) IS NULL THEN '+' ELSE '' END || ')'
    END
$$;
