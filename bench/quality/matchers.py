"""The matchers compared, each one SQL statement taking (user_id) and
returning job ids best first. All read the same rows and, where they embed,
the same vectors from the same model."""

from __future__ import annotations

from dataclasses import dataclass

LIMIT = 10


@dataclass(frozen=True)
class Matcher:
    name: str
    description: str
    sql: str


# The traditional matcher: full-text search of the seeker's roles, categories
# and skills (any lexeme, OR) against the job's titles and skills (the stored
# job_document), ranked by ts_rank_cd, in the 60-day window. It is match_jobs'
# keyword fallback without the hard filters, run for every seeker.
KEYWORD = Matcher("keyword", "full-text: roles/skills vs job titles/skills, ts_rank_cd, 60 days", f"""
WITH q AS MATERIALIZED (
    SELECT jobmatch_user_keyword_query(u) AS query
    FROM user_preferences AS u WHERE u.user_id = %(user_id)s
)
SELECT j.id
FROM canonical_jobs AS j
WHERE j.job_document @@ (SELECT query FROM q)
  AND j.posted_date >= current_date - (SELECT match_window_days FROM jobmatch_settings)
ORDER BY ts_rank_cd(j.job_document, (SELECT query FROM q), 32) DESC, j.posted_date DESC, j.id
LIMIT {LIMIT}
""")

# The original plan's search_jobs_with_embeddings(user_id, limit=10): nearest
# limit*2 jobs with a vector in the window, then keep similarity >= 0.65, first
# `limit`. Its profile texts are the ones the database embeds (10_profile_text.sql).
PLAN = Matcher("plan", "the plan: cosine, nearest 20 in 60 days, keep >= 0.65, top 10", f"""
WITH u AS (
    SELECT user_embedding FROM user_preferences
    WHERE user_id = %(user_id)s AND user_embedding IS NOT NULL
)
SELECT id FROM (
    SELECT j.id, 1 - (j.job_embedding <=> u.user_embedding) AS similarity_score,
           j.job_embedding <=> u.user_embedding AS distance
    FROM canonical_jobs AS j, u
    WHERE j.job_embedding IS NOT NULL
      AND j.posted_date >= CURRENT_DATE - INTERVAL '60 days'
    ORDER BY j.job_embedding <=> u.user_embedding
    LIMIT {2 * LIMIT}
) AS nearest
WHERE similarity_score >= 0.65
ORDER BY distance
LIMIT {LIMIT}
""")

JOBMATCH = Matcher("jobmatch", "match_jobs(user_id, 10) as shipped (this checkout's db/)",
                   f"SELECT job_id FROM match_jobs(%(user_id)s, {LIMIT})")

BASELINES = (KEYWORD, PLAN, JOBMATCH)
