-- Coverage of each model during a blue/green switch (29_model_switch.sql),
-- beside embedding_health's for the active model.

-- How much of what can be matched model p_model has vectors for: jobs of
-- the match window (as embedding_health counts them) and all seekers (one
-- with nothing to embed counts as covered: a hash, no vector). The active
-- model's figures are embedding_health's; another model's are its rows in
-- embedding_vectors of the current profile-text version (a vector leaves
-- when its text changes).
CREATE OR REPLACE FUNCTION jobmatch_model_coverage(p_model text)
RETURNS TABLE (
    jobs_covered bigint, jobs_total bigint, users_covered bigint, users_total bigint,
    job_pct numeric, user_pct numeric, coverage_pct numeric
)
LANGUAGE sql STABLE
AS $$
    WITH counts AS (
        SELECT h.jobs_embedded AS jobs_covered, h.jobs_in_window AS jobs_total,
               h.users_embedded AS users_covered, h.users_total
        FROM embedding_health AS h
        WHERE h.active_model = p_model
        UNION ALL
        SELECT (SELECT count(*)
                FROM canonical_jobs AS j
                INNER JOIN embedding_vectors AS v
                    ON v.model = p_model AND v.entity_type = 'job' AND v.entity_id = j.id
                WHERE j.posted_date >= current_date - s.match_window_days
                  AND j.posted_date <= jobmatch_latest_posted()
                  AND v.embedding IS NOT NULL AND v.version = s.profile_text_version),
               (SELECT count(*) FROM canonical_jobs AS j
                WHERE j.posted_date >= current_date - s.match_window_days
                  AND j.posted_date <= jobmatch_latest_posted()),
               (SELECT count(*)
                FROM user_preferences AS u
                INNER JOIN embedding_vectors AS v
                    ON v.model = p_model AND v.entity_type = 'user' AND v.entity_id = u.user_id
                WHERE v.version = s.profile_text_version),
               (SELECT count(*) FROM user_preferences)
        FROM jobmatch_settings AS s
        WHERE p_model IS DISTINCT FROM (SELECT m.model FROM embedding_models AS m
                                        WHERE m.is_active)
    )
    SELECT c.jobs_covered, c.jobs_total, c.users_covered, c.users_total,
           round(100.0 * c.jobs_covered / nullif(c.jobs_total, 0), 2),
           round(100.0 * c.users_covered / nullif(c.users_total, 0), 2),
           -- the lower of the two; nothing to cover counts as all covered
           least(coalesce(round(100.0 * c.jobs_covered / nullif(c.jobs_total, 0), 2), 100),
                 coalesce(round(100.0 * c.users_covered / nullif(c.users_total, 0), 2), 100))
    FROM counts AS c
$$;

-- Each model that serves, is being filled, or still has vectors: its
-- coverage, and its queue (rows waiting, and failed queue_max_attempts
-- times). `jobmatch health` prints it.
CREATE OR REPLACE VIEW embedding_model_coverage AS
SELECT
    m.model,
    c.jobs_covered,
    c.jobs_total,
    c.users_covered,
    c.users_total,
    c.job_pct,
    c.user_pct,
    c.coverage_pct,
    CASE WHEN m.is_active THEN 'active' WHEN m.is_target THEN 'target' ELSE 'standby' END
        AS state,
    (
        SELECT count(*) FROM embedding_target_queue AS q
        WHERE q.model = m.model
    ) AS queued,
    (
        SELECT count(*)
        FROM embedding_target_queue AS q, jobmatch_settings AS s
        WHERE q.model = m.model AND q.attempts >= s.queue_max_attempts
    ) AS failed
FROM embedding_models AS m
CROSS JOIN LATERAL jobmatch_model_coverage(m.model) AS c
WHERE
    m.is_active OR m.is_target
    OR EXISTS (
        SELECT 1 FROM embedding_vectors AS v
        WHERE v.model = m.model
    );
