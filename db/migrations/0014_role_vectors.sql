-- depends: 0012_role_focused_ranking
-- A second vector per row (issue #13): the role text (the profile text's
-- first line: what the work is called, 10_profile_text.sql) is embedded on
-- its own beside the profile text, and match_jobs fuses the two
-- similarities. The profile texts gain that line break, so every stored
-- vector is re-made through the refresh (a new profile_text_version), and
-- with it its role vector. Vectors of any dimension, like the profile ones.

UPDATE jobmatch_settings
SET profile_text_version = profile_text_version + 1;

ALTER TABLE canonical_jobs
ADD COLUMN job_role_embedding vector;

ALTER TABLE user_preferences
ADD COLUMN user_role_embedding vector;

-- a role vector parked with its profile vector (a row the application held)
ALTER TABLE embedding_queue
ADD COLUMN parked_role_embedding vector;

-- How much the role similarity counts in match_jobs' score, in standard
-- deviations of the profile similarity among the seeker's candidates (both
-- are standardised per seeker: the local model's cosines are compressed).
-- 0: the role vectors are not used.
ALTER TABLE jobmatch_settings
ADD COLUMN rank_role_weight double precision NOT NULL DEFAULT 0.5
CHECK (rank_role_weight >= 0);

-- Fitted with the role term on half the ESCO occupations, split by ISCO
-- group, 5 splits (bench/quality/README.md): role 0.5 in every split, and
-- with it skill words 0.3 and a relevance margin of 0.25 (the role term
-- widens the scores' spread, so the floor widens with it), where the DBA
-- kept the defaults.
UPDATE jobmatch_settings
SET rank_skill_weight = 0.3
WHERE rank_skill_weight = 0.1;

UPDATE embedding_models
SET relevance_margin = 0.25
WHERE model = 'multilingual-e5-small' AND relevance_margin = 0.15;

-- The claim returns the role text and complete_embeddings takes the role
-- vectors: new signatures, created by db/functions on this deploy.
DROP FUNCTION IF EXISTS claim_embedding_batch(text, integer, interval);
DROP FUNCTION IF EXISTS claim_embedding_backfill(text, integer, interval);
DROP FUNCTION IF EXISTS jobmatch_claim(text, integer, interval, integer);
DROP FUNCTION IF EXISTS complete_embeddings(text, text, text[], bigint[], uuid[], vector[]);
DROP FUNCTION IF EXISTS jobmatch_apply_vectors(text, text, text[], bigint[], uuid[], vector[]);
DROP FUNCTION IF EXISTS jobmatch_write_vectors(text, text[], bigint[], uuid[], vector[]);
