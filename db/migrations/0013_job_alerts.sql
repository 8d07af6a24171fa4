-- depends: 0012_role_focused_ranking
-- Job alerts (issue #14): when a job arrives, the seekers it fits are told,
-- once each (next_job_alerts in db/functions/49_alerts.sql). A seeker hears
-- of at most alerts_per_user_per_day jobs in any 24 hours, a job is pushed
-- to at most alerts_per_job seekers, and only jobs posted in the last
-- alerts_max_age_days are pushed at all (a job older than that when it is
-- first seen, a deploy's backlog say, is left to match_jobs). Zero turns
-- alerts off.

ALTER TABLE jobmatch_settings
ADD COLUMN alerts_per_user_per_day integer NOT NULL DEFAULT 3
CHECK (alerts_per_user_per_day BETWEEN 0 AND 100),
ADD COLUMN alerts_per_job integer NOT NULL DEFAULT 50
CHECK (alerts_per_job BETWEEN 0 AND 10000),
ADD COLUMN alerts_max_age_days integer NOT NULL DEFAULT 3
CHECK (alerts_max_age_days BETWEEN 0 AND 60);

-- A seeker who wants no pushes (matches on request still work).
ALTER TABLE user_preferences
ADD COLUMN IF NOT EXISTS alerts_enabled boolean NOT NULL DEFAULT true;

-- Every alert sent: the primary key is what makes a pair go out once, even
-- if two feeds ran at once. No foreign keys: the bot truncates and deletes
-- its own tables, and a sent alert stays sent (it counts towards the
-- seeker's daily cap) whatever happens to the job afterwards.
CREATE TABLE job_alerts (
    job_id bigint NOT NULL,
    user_id bigint NOT NULL,
    match_score numeric NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, user_id)
);

-- the daily cap: a seeker's alerts of the last 24 hours
CREATE INDEX job_alerts_user_sent_idx ON job_alerts (user_id, sent_at);

-- Jobs the feed has dealt with: each job's seekers are chosen once, in the
-- call that first sees it with a vector (or in the next one, when a call's
-- limit stopped half-way through its seekers).
CREATE TABLE alerted_jobs (
    job_id bigint PRIMARY KEY,
    alerted_at timestamptz NOT NULL DEFAULT now()
);
