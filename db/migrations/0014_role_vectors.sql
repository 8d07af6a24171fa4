-- depends: 0013_job_alerts
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

-- How much the role similarity counts in a pair's score (match_jobs,
-- match_users): rank_role_weight * role_scale * (role cosine - role_mean).
-- The model's role_scale puts the role cosines in units of its profile
-- cosines' spread among a seeker's candidates, role_mean centres them (the
-- local model's cosines are compressed: raw sums are not comparable); both
-- are the model's constants, fitted once, so a pair's score needs nothing
-- of the other pairs and both directions give the same number. A pair
-- where a side has no role vector adds 0. rank_role_weight 0: the role
-- vectors are not used.
ALTER TABLE jobmatch_settings
ADD COLUMN rank_role_weight double precision NOT NULL DEFAULT 0.5
CHECK (rank_role_weight >= 0);

ALTER TABLE embedding_models
ADD COLUMN role_scale double precision NOT NULL DEFAULT 1
CHECK (role_scale >= 0 AND role_scale < 'Infinity'),
ADD COLUMN role_mean double precision NOT NULL DEFAULT 0.5
CHECK (role_mean BETWEEN -1 AND 1);

-- The local model's role units, fitted on the fitting halves of the ESCO
-- splits (bench.quality.fusion --role-scale global): k = the median over
-- seekers of their candidates' profile-cosine spread over their role-cosine
-- spread (0.69), mu = the median of their mean role cosine (0.84). Held
-- out, the same nDCG@10 as standardising per seeker (0.774 both). Other
-- models keep 1 and 0.5 until measured (docs/dba.md).
UPDATE embedding_models
SET role_scale = 0.69, role_mean = 0.84
WHERE model = 'multilingual-e5-small';

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
