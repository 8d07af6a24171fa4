-- depends: 0004_index_methods
-- Ranking knobs for match_jobs: how many nearest jobs are re-ranked, and
-- how much the seeker's own words (title and skills, full-text rank) and
-- explicit skill overlap add to cosine similarity.

ALTER TABLE jobmatch_settings
ADD COLUMN match_candidates integer NOT NULL DEFAULT 20
CHECK (match_candidates BETWEEN 1 AND 1000),
ADD COLUMN rank_keyword_weight double precision NOT NULL DEFAULT 0.2
CHECK (rank_keyword_weight >= 0),
ADD COLUMN rank_skill_weight double precision NOT NULL DEFAULT 0.1
CHECK (rank_skill_weight >= 0),
ADD COLUMN match_hard_filters boolean NOT NULL DEFAULT true;

-- The keyword document, stored: match_jobs ranks its candidates by it on
-- every call, and computing tsvectors at query time costs more than the
-- vector search. It replaces the expression index of 0003.
ALTER TABLE canonical_jobs
ADD COLUMN job_document tsvector GENERATED ALWAYS AS (
    jobmatch_job_document(title, ai_job_titles, ai_required_skills, ai_preferred_skills)
) STORED;

DROP INDEX IF EXISTS canonical_jobs_keyword_idx;
CREATE INDEX canonical_jobs_document_idx ON canonical_jobs USING gin (job_document);
