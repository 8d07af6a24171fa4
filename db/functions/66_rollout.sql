-- Gradual rollout of semantic matching (jobmatch_settings.semantic_share):
-- the two groups side by side on what the bot sees, answers and empty
-- answers, for a sample of up to 200 seekers of each group (a stable
-- sample, md5 order), each asked for 10 jobs as the bot asks. Read it
-- before raising the share, and after: rolling back is one UPDATE.
CREATE OR REPLACE VIEW semantic_rollout AS
WITH seekers AS (
    SELECT
        u.user_id,
        CASE
            WHEN jobmatch_in_semantic_share(u.user_id, s.semantic_share)
                THEN 'semantic'
            ELSE 'keyword'
        END AS rollout_group,
        row_number() OVER (
            PARTITION BY jobmatch_in_semantic_share(u.user_id, s.semantic_share)
            ORDER BY md5(u.user_id::text)
        ) AS pick
    FROM user_preferences AS u
    CROSS JOIN jobmatch_settings AS s
),

answers AS (
    SELECT
        k.rollout_group,
        k.user_id,
        (SELECT count(*) FROM match_jobs(k.user_id, 10)) AS rows_returned
    FROM seekers AS k
    WHERE k.pick <= 200
)

SELECT
    g.rollout_group,
    (SELECT s.semantic_share FROM jobmatch_settings AS s) AS semantic_share,
    (
        SELECT count(*) FROM seekers AS k
        WHERE k.rollout_group = g.rollout_group
    ) AS seekers,
    count(a.user_id) AS sampled,
    count(a.user_id) FILTER (WHERE a.rows_returned > 0) AS answered,
    count(a.user_id) FILTER (WHERE a.rows_returned = 0) AS empty_answers,
    round(avg(a.rows_returned), 2) AS mean_rows
FROM (VALUES ('semantic'), ('keyword')) AS g (rollout_group)
LEFT JOIN answers AS a ON g.rollout_group = a.rollout_group
GROUP BY g.rollout_group;
