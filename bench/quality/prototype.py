"""Prototype rankings for match_jobs, measured beside the shipped one. Each is
one SQL statement over the same rows, vectors and settings; none changes the
schema. They use match_jobs' own helpers (jobmatch_job_fits, the stored
job_document, jobmatch_user_keyword_query), so they differ from it only where named.

proto_filter   ablation: the original match_jobs (cosine order, nearest 10,
               the model's threshold) plus the hard filters only.
proto_words    match_jobs' fused ranking with two changes:
               - CANDIDATES (100) nearest fitting jobs are re-ranked, not 20;
               - the skill term counts the seeker's skill *words* (English
                 stems) found among the job's skill words (job_document
                 weights B and C), not exact skill strings, and a title term
                 does the same for the seeker's roles against the job's titles
                 (weight A):
                   score = similarity + W_KEYWORD * ts_rank_cd(job_document, q, 32)
                           + W_SKILL * skill-word overlap + W_TITLE * title-word overlap
Both fall back to the filtered keyword search when nothing clears the
threshold, as match_jobs does."""

from __future__ import annotations

from .matchers import LIMIT, Matcher

CANDIDATES = 100
W_KEYWORD = 0.1
W_SKILL = 0.2
W_TITLE = 0.04

# The seeker's side, computed once.
_SEEKER = """
seeker AS MATERIALIZED (
    SELECT u.user_embedding AS emb,
           (u.embedding_model = m.model) AS has_vector,
           m.model, m.similarity_threshold AS threshold,
           current_date - s.match_window_days AS window_start,
           jobmatch_user_keyword_query(u) AS kw_query,
           jobmatch_lower_set(u.preferred_locations) AS places,
           u.willing_to_relocate AS relocate,
           jobmatch_lower_set(u.employment_types) AS types,
           u.salary_min AS pay_floor, u.salary_max AS pay_ceiling, u.salary_currency AS currency,
           tsvector_to_array(to_tsvector('english',
               coalesce(array_to_string(u.job_roles, ' '), ''))) AS role_words,
           tsvector_to_array(to_tsvector('english',
               coalesce(array_to_string(u.technical_skills, ' '), ''))) AS skill_words
    FROM user_preferences AS u, active_embedding_model() AS m, jobmatch_settings AS s
    WHERE u.user_id = %(user_id)s
)"""

_FITS = """
    AND jobmatch_job_fits(w.places, w.relocate, w.types, w.pay_floor, w.pay_ceiling, w.currency,
                          j.ai_city, j.ai_state, j.ai_country, j.ai_remote_allowed,
                          j.ai_work_arrangement, j.ai_employment_type,
                          j.ai_salary_min, j.ai_salary_max, j.ai_salary_currency)"""

_KEYWORD_FALLBACK = f"""
keyword AS (
    SELECT j.id, ts_rank_cd(j.job_document, w.kw_query, 32) AS rank, j.posted_date
    FROM seeker AS w, canonical_jobs AS j
    WHERE NOT EXISTS (SELECT 1 FROM kept)
      AND j.job_document @@ w.kw_query
      AND j.posted_date >= w.window_start {_FITS}
    ORDER BY rank DESC, j.posted_date DESC, j.id
    LIMIT {LIMIT}
)"""


def _nearest(limit: int) -> str:
    return f"""
nearest AS MATERIALIZED (
    SELECT j.id, 1 - (j.job_embedding <=> w.emb) AS similarity
    FROM seeker AS w, canonical_jobs AS j
    WHERE w.has_vector AND j.job_embedding_model = w.model
      AND j.posted_date >= w.window_start {_FITS}
    ORDER BY j.job_embedding <=> w.emb
    LIMIT {limit}
), kept AS (
    SELECT n.id, n.similarity FROM nearest AS n, seeker AS w WHERE n.similarity >= w.threshold
)"""


def _answer(score_cte: str) -> str:
    return f"""
SELECT id FROM (
    SELECT id, 0 AS part, -score AS key1, 0 AS key2 FROM {score_cte}
    UNION ALL
    SELECT k.id, 1, -k.rank, -extract(epoch FROM k.posted_date) FROM keyword AS k
) AS answer
ORDER BY part, key1, key2, id
LIMIT {LIMIT}"""


PROTO_FILTER = Matcher(
    "proto_filter", "ablation: cosine order (nearest 10, threshold) + hard filters only", f"""
WITH {_SEEKER}, {_nearest(LIMIT)},
scored AS (SELECT id, similarity AS score FROM kept),
{_KEYWORD_FALLBACK}
{_answer("scored")}
""")

PROTO_WORDS = Matcher(
    "proto_words",
    f"filters + {CANDIDATES} candidates, sim + {W_KEYWORD} kw rank + {W_SKILL} skill words "
    f"+ {W_TITLE} title words", f"""
WITH {_SEEKER}, {_nearest(CANDIDATES)},
words AS MATERIALIZED (
    SELECT k.id, k.similarity,
           coalesce(ts_rank_cd(j.job_document, w.kw_query, 32), 0) AS kw_rank,
           tsvector_to_array(ts_filter(j.job_document, '{{b,c}}')) AS skill_words,
           tsvector_to_array(ts_filter(j.job_document, '{{a}}')) AS title_words
    FROM kept AS k
    INNER JOIN canonical_jobs AS j ON j.id = k.id
    CROSS JOIN seeker AS w
), scored AS (
    SELECT c.id, c.similarity + {W_KEYWORD} * c.kw_rank
        + {W_SKILL} * (SELECT count(*) FROM unnest(w.skill_words) AS x (word)
                       WHERE x.word = ANY (c.skill_words))::float
              / greatest(cardinality(w.skill_words), 1)
        + {W_TITLE} * (SELECT count(*) FROM unnest(w.role_words) AS x (word)
                       WHERE x.word = ANY (c.title_words))::float
              / greatest(cardinality(w.role_words), 1) AS score
    FROM words AS c, seeker AS w
),
{_KEYWORD_FALLBACK}
{_answer("scored")}
""")

PROTOTYPES = (PROTO_FILTER, PROTO_WORDS)
