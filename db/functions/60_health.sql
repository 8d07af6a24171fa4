-- One row that says whether the embedding pipeline keeps up. A row counts
-- as covered when it has a vector from the active model, made from its
-- current text (jobmatch_*_vector_is_current: a text changed with the
-- triggers bypassed is not covered), and no pending queue row.
CREATE OR REPLACE VIEW embedding_health AS
WITH
model AS (
    SELECT
        m.model,
        s.profile_text_version AS version,
        s.match_window_days AS window_days,
        m.usd_per_million_tokens
    FROM jobmatch_settings AS s
    LEFT JOIN embedding_models AS m ON m.is_active
),

users AS (
    SELECT
        count(*) AS total,
        count(*) FILTER (
            -- a hash without a vector: nothing to embed (claim_embedding_batch)
            WHERE (u.user_embedding IS NOT NULL OR u.embedding_hash IS NOT NULL)
            AND u.embedding_model = model.model
            AND u.embedding_version = model.version
            AND jobmatch_user_vector_is_current(u, u.xmin)
            AND NOT EXISTS (
                SELECT 1 FROM embedding_queue AS q
                WHERE q.entity_type = 'user' AND q.entity_id = u.user_id
            )
        ) AS covered
    FROM user_preferences AS u CROSS JOIN model
),

jobs AS (
    SELECT
        count(*) AS total,
        count(*) FILTER (
            WHERE j.job_embedding IS NOT NULL
            AND j.job_embedding_model = model.model
            AND j.embedding_version = model.version
            AND jobmatch_job_vector_is_current(j, j.xmin)
            AND NOT EXISTS (
                SELECT 1 FROM embedding_queue AS q
                WHERE q.entity_type = 'job' AND q.entity_id = j.id
            )
        ) AS covered
    FROM canonical_jobs AS j CROSS JOIN model
    WHERE
        j.posted_date >= current_date - model.window_days
        AND j.posted_date <= jobmatch_latest_posted()
),

-- jobs match_jobs never offers because of their date (05_values.sql)
bad_dates AS (
    SELECT
        count(*) FILTER (
            WHERE j.posted_date > jobmatch_latest_posted()
        ) AS future_dated,
        count(*) FILTER (WHERE j.posted_date IS NULL) AS undated
    FROM canonical_jobs AS j
),

queue AS (
    SELECT
        count(*) AS depth,
        count(*) FILTER (WHERE q.locked_until > now()) AS leased,
        count(*) FILTER (WHERE q.attempts > 0) AS retrying,
        now() - min(q.enqueued_at) AS oldest_pending_age
    FROM embedding_queue AS q
),

coverage AS (
    SELECT
        round(100.0 * users.covered / nullif(users.total, 0), 1) AS user_pct,
        round(100.0 * jobs.covered / nullif(jobs.total, 0), 1) AS job_pct
    FROM users CROSS JOIN jobs
)

-- new columns go last (CREATE OR REPLACE VIEW), after the status calculation
SELECT  -- noqa: ST06
    model.model AS active_model,
    users.total AS users_total,
    users.covered AS users_embedded,
    coverage.user_pct AS user_coverage_pct,
    jobs.total AS jobs_in_window,
    jobs.covered AS jobs_embedded,
    coverage.job_pct AS job_coverage_pct,
    queue.depth AS queue_depth,
    queue.leased AS queue_leased,
    queue.retrying AS queue_retrying,
    queue.oldest_pending_age,
    (SELECT count(*) FROM embedding_dead_letter) AS dead_lettered,
    CASE
        WHEN
            coalesce(coverage.user_pct, 100) >= 80
            AND coalesce(coverage.job_pct, 100) >= 80
            THEN 'EXCELLENT'
        WHEN
            coalesce(coverage.user_pct, 100) >= 60
            AND coalesce(coverage.job_pct, 100) >= 60
            THEN 'GOOD'
        ELSE 'NEEDS ATTENTION'
    END AS status,
    -- what the queue will cost at the model's price and the average tokens
    -- per input of the last 30 days
    round(
        queue.depth * coalesce((
            SELECT sum(u.tokens)::numeric / nullif(sum(u.inputs), 0)
            FROM embedding_usage AS u
            WHERE u.model = model.model AND u.day > current_date - 30
        ), 0) * coalesce(model.usd_per_million_tokens, 0) / 1e6, 6
    ) AS queue_projected_usd,
    bad_dates.future_dated AS jobs_future_dated,
    bad_dates.undated AS jobs_undated
FROM model
CROSS JOIN users
CROSS JOIN jobs
CROSS JOIN queue
CROSS JOIN coverage
CROSS JOIN bad_dates;

-- The occupation taxonomy (15_occupations.sql) as `jobmatch health` shows
-- it: occupations loaded, those with a vector of the active model, and the
-- active model's embedded rows
-- (jobs of the window, seekers) with an occupation. Rows embedded but not
-- mapped while the model has occupation vectors mean a load was cut short:
-- run it again.
CREATE OR REPLACE FUNCTION jobmatch_taxonomy_status(
    OUT occupations bigint, OUT model_vectors bigint,
    OUT jobs_mapped bigint, OUT jobs_embedded bigint,
    OUT users_mapped bigint, OUT users_embedded bigint
)
LANGUAGE sql STABLE
AS $$
    WITH m AS (SELECT a.model FROM active_embedding_model() AS a),
    s AS (SELECT current_date - t.match_window_days AS window_start FROM jobmatch_settings AS t)
    SELECT (SELECT count(*) FROM occupations),
           (SELECT count(*) FROM occupation_vectors AS v, m WHERE v.model = m.model),
           (SELECT count(j.job_occupation) FROM canonical_jobs AS j, m, s
            WHERE j.job_embedding_model = m.model AND j.posted_date >= s.window_start),
           (SELECT count(*) FROM canonical_jobs AS j, m, s
            WHERE j.job_embedding_model = m.model AND j.posted_date >= s.window_start),
           (SELECT count(u.user_occupation) FROM user_preferences AS u, m
            WHERE u.embedding_model = m.model),
           (SELECT count(*) FROM user_preferences AS u, m WHERE u.embedding_model = m.model)
$$;
