-- Profile texts: exactly what gets embedded, built from the row, so the
-- database knows what a vector stands for.

-- Runs of whitespace (tabs, newlines, Unicode spaces too) become one space,
-- none at the ends; NULL if nothing is left. Bot input is messy.
CREATE OR REPLACE FUNCTION jobmatch_squish(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT nullif(regexp_replace(regexp_replace(value,
        '[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u001c-\u001f]+',
        ' ', 'g'), '^ | $', '', 'g'), '')
$$;

-- 'a, b, c' from an array, skipping NULL and blank elements; NULL if empty.
-- Bounded, so a huge list cannot make a huge profile: the array's first 50
-- elements, each up to 300 characters, and whole items only while the
-- result stays within 500 characters (the first item always fits).
CREATE OR REPLACE FUNCTION jobmatch_join(items text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT string_agg(s.item, ', ' ORDER BY s.ord)
    FROM (
        SELECT c.item, c.ord,
               sum(length(c.item) + 2) OVER (ORDER BY c.ord) - 2 AS upto
        FROM (
            SELECT jobmatch_squish(left(u.item, 300)) AS item, u.ord
            FROM unnest(items) WITH ORDINALITY AS u (item, ord)
            WHERE u.ord <= 50
        ) AS c
        WHERE c.item IS NOT NULL
    ) AS s
    WHERE s.upto <= 500
$$;

-- Free text, squished and capped so one huge field cannot crowd out the
-- rest of a profile; NULL if blank. A cap that falls just after a word
-- leaves no space at the end (squished text has single spaces only).
CREATE OR REPLACE FUNCTION jobmatch_clean(
    value text, max_chars integer DEFAULT 1000
)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT rtrim(left(jobmatch_squish(left(value, 4 * max_chars)), max_chars), ' ')
$$;

-- 2000000 -> '2,000,000' (the plan's Python f"{n:,}"), any magnitude.
CREATE OR REPLACE FUNCTION jobmatch_amount(amount numeric)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT regexp_replace(trim_scale(round(amount, 2))::text,
                          '(\d)(?=(\d{3})+(\.|$))', '\1,', 'g')
$$;

-- 'NGN 2,000,000 - 5,000,000', 'NGN 2,000,000' or NULL; zero means unset,
-- as in the plan, and so do negative, infinite and NaN amounts (jobmatch_pay).
CREATE OR REPLACE FUNCTION jobmatch_salary_text(
    currency text, low numeric, high numeric
)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN jobmatch_pay(low) IS NULL THEN NULL
        WHEN jobmatch_pay(high) IS NULL
            THEN concat_ws(' ', jobmatch_clean(currency, 10), jobmatch_amount(low))
        ELSE concat_ws(' ', jobmatch_clean(currency, 10), jobmatch_amount(low))
             || ' - ' || jobmatch_amount(high)
    END
$$;

CREATE OR REPLACE FUNCTION jobmatch_text_hash(profile_text text)
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT md5(profile_text)::uuid
$$;

-- What is embedded says what the work is: roles, titles, categories,
-- skills, the seeker's own words. Places, pay, employment type, arrangement
-- and company size are hard filters in match_jobs (jobmatch_job_fits); in
-- the text they only pulled every job of a city or a pay band closer
-- (bench/quality/README.md: role-focused texts). Experience is a ranking
-- term of its own (jobmatch_experience_gap). Changing these texts needs a
-- bump of jobmatch_settings.profile_text_version (a migration), so stored
-- vectors are refreshed.
--
-- Two lines: the first says what the work is called (the seeker's roles
-- and categories, or their own words when they name no role; the job's
-- title, its variations and function), the second what it involves
-- (skills, or a job's summary). The first line is also embedded on its own,
-- as the role text (jobmatch_role_text): a second vector per row.
CREATE OR REPLACE FUNCTION jobmatch_user_profile_text(p user_preferences)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(nullif(concat_ws(E'\n',
        nullif(concat_ws('. ',
            'Seeking roles: ' || jobmatch_join(p.job_roles),
            'Job categories: ' || jobmatch_join(p.job_categories),
            CASE WHEN jobmatch_join(p.job_roles) IS NULL
                THEN 'Job interests: ' || jobmatch_clean(p.user_job_input, 300) END
        ), ''),
        nullif(concat_ws('. ',
            CASE WHEN jobmatch_join(p.job_roles) IS NOT NULL
                THEN 'Job interests: ' || jobmatch_clean(p.user_job_input, 300) END,
            'Skills: ' || jobmatch_join(p.technical_skills)
        ), '')
    ), ''), 'Job seeker')
$$;

-- A job's summary (or the start of its description) is embedded only when
-- the posting names no skills: it then is the only account of the work.
CREATE OR REPLACE FUNCTION jobmatch_job_profile_text(j canonical_jobs)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(nullif(concat_ws(E'\n',
        nullif(concat_ws('. ',
            'Job title: ' || jobmatch_clean(j.title, 300),
            'Job variations: ' || jobmatch_join(j.ai_job_titles),
            'Job function: ' || jobmatch_clean(j.ai_job_function, 300)
        ), ''),
        CASE
            WHEN jobmatch_join(j.ai_required_skills || j.ai_preferred_skills) IS NOT NULL
                THEN 'Skills: ' || jobmatch_join(j.ai_required_skills || j.ai_preferred_skills)
            WHEN jobmatch_clean(j.ai_summary) IS NOT NULL
                THEN 'Summary: ' || jobmatch_clean(j.ai_summary, 300)
            WHEN jobmatch_clean(j.description, 100000) IS NOT NULL
                THEN 'Description: ' || CASE
                    WHEN length(jobmatch_clean(j.description, 100000)) > 300
                        THEN left(jobmatch_clean(j.description, 100000), 300) || '...'
                    ELSE jobmatch_clean(j.description, 100000)
                END
        END
    ), ''), 'Job posting')
$$;

-- The role text: what the work is called, embedded on its own beside the
-- profile text: the profile text's first line without its labels
-- ('Data Scientist, ML Engineer. Data & AI'; 'Senior Data Scientist. ML
-- Scientist. Data & Analytics') when that line names roles or titles, NULL
-- otherwise (a seeker who gave only skills, an empty posting). Short and
-- unlabelled: the local model's cosines of two such texts tell the same
-- occupation apart better than whole profiles, or labelled role lines, do
-- (bench/quality/README.md). A function of the profile text, so the
-- profile text's hash covers it: one hash per row for both vectors (the
-- claim, the content cache, the stale sweep and parked vectors all go by
-- it). No newline occurs inside a part (jobmatch_squish turns every run of
-- whitespace into one space) and the labels are constants, so the first
-- line is exactly the role part; bounded as the profile text's parts are.
CREATE OR REPLACE FUNCTION jobmatch_role_text(profile_text text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN profile_text ~ ('^' || r.labels)
            THEN regexp_replace(split_part(profile_text, E'\n', 1),
                                '(^|\. )' || r.labels, '\1', 'g')
    END
    FROM (
        SELECT '(Seeking roles|Job (categories|interests|title|variations|function)): '
            AS labels
    ) AS r
$$;

CREATE OR REPLACE FUNCTION jobmatch_user_role_text(p user_preferences)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jobmatch_role_text(jobmatch_user_profile_text(p))
$$;

CREATE OR REPLACE FUNCTION jobmatch_job_role_text(j canonical_jobs)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jobmatch_role_text(jobmatch_job_profile_text(j))
$$;
