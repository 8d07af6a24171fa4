-- depends: 0011_bounded_job_document
-- Role-focused matching (issue #13): profile texts now embed only what says
-- what the work is (10_profile_text.sql), so every stored vector is re-made
-- through the refresh (a new profile_text_version); match_jobs returns only
-- relevant jobs (a floor relative to the seeker's best, per model), near
-- misses that break one stated constraint, and ranks by word overlaps,
-- experience and freshness besides cosine. Weights are the DBA's, here.

UPDATE jobmatch_settings
SET profile_text_version = profile_text_version + 1;

ALTER TABLE jobmatch_settings
ADD COLUMN rank_title_weight double precision NOT NULL DEFAULT 0.04
CHECK (rank_title_weight >= 0),
ADD COLUMN rank_experience_weight double precision NOT NULL DEFAULT 0.01
CHECK (rank_experience_weight >= 0),
ADD COLUMN rank_freshness_weight double precision NOT NULL DEFAULT 0.005
CHECK (rank_freshness_weight >= 0),
ADD COLUMN match_near_misses integer NOT NULL DEFAULT 3
CHECK (match_near_misses BETWEEN 0 AND 100);

-- 100 candidates instead of 20, and the weights fitted on half the ESCO
-- occupations (bench/quality/README.md), where the DBA kept the defaults.
UPDATE jobmatch_settings
SET match_candidates = 100
WHERE match_candidates = 20;

UPDATE jobmatch_settings
SET rank_keyword_weight = 0.1
WHERE rank_keyword_weight = 0.2;

-- How far below the seeker's best candidate's score (any job of the
-- window, whatever the constraints) a job's score may be and still count as
-- relevant. NULL: no floor. Similarity scales differ per model.
ALTER TABLE embedding_models
ADD COLUMN relevance_margin double precision
CHECK (relevance_margin >= 0);

UPDATE embedding_models
SET relevance_margin = 0.15
WHERE model = 'multilingual-e5-small';
