-- depends: 0011_bounded_job_document
-- Retention: jobs posted more than job_retention_days ago can be pruned
-- (`jobmatch prune`). Unset by default: nothing is ever deleted unless a
-- DBA asks. Never shorter than the match window: a pruned job could
-- otherwise still have been matched.

ALTER TABLE jobmatch_settings
ADD COLUMN job_retention_days integer
CONSTRAINT jobmatch_settings_retention_covers_window
CHECK (job_retention_days IS null OR job_retention_days >= match_window_days);

-- Gradual rollout (the plan's advice): this share of seekers, stable by a
-- hash of user_id, gets semantic matches; the rest keyword matches.
ALTER TABLE jobmatch_settings
ADD COLUMN semantic_share integer NOT NULL DEFAULT 100
CONSTRAINT jobmatch_settings_semantic_share_percent
CHECK (semantic_share BETWEEN 0 AND 100);
