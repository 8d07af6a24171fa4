-- depends: 0009_hnsw_halfvec_default
-- The write-back never waits on a row the application holds, and never
-- pays twice for it: a vector whose row is locked is parked on its queue
-- row and written when the row is free. A sweep cursor lets the refresh
-- find vectors of an old text (triggers bypassed), a bounded batch a time.
-- Each row remembers the transaction that wrote its vector: a row whose
-- xmin is still that one has not been modified since, so its text need not
-- be rebuilt to know the vector is current.

ALTER TABLE canonical_jobs
ADD COLUMN IF NOT EXISTS job_embedding_xmin xid;

ALTER TABLE user_preferences
ADD COLUMN IF NOT EXISTS embedding_xmin xid;

ALTER TABLE embedding_queue
ADD COLUMN parked_embedding vector,
ADD COLUMN parked_hash uuid,
ADD COLUMN parked_model text,
-- queued because the vector is old (refresh-after-days): embed it anew even
-- though the text has a vector
ADD COLUMN reembed boolean NOT NULL DEFAULT false;

ALTER TABLE jobmatch_settings
ADD COLUMN stale_sweep_rows integer NOT NULL DEFAULT 100000
CHECK (stale_sweep_rows BETWEEN 0 AND 1000000);

-- Where the refresh's hash check goes on, per entity type: the last id it
-- checked, NULL for the start (it wraps around at the end of the table).
CREATE TABLE jobmatch_stale_sweep (
    entity_type text PRIMARY KEY CHECK (entity_type IN ('job', 'user')),
    last_id bigint,
    swept_at timestamptz
);

INSERT INTO jobmatch_stale_sweep (entity_type) VALUES ('job'), ('user');

-- Pay once per distinct text: a claimed row whose text already has a vector
-- of the active model (its own, or another row's of the same kind) gets that
-- vector without an API call. The ledger counts what that saved; tokens are
-- estimated at 4 characters each.
CREATE INDEX IF NOT EXISTS canonical_jobs_embedding_hash_idx
ON canonical_jobs (job_embedding_hash) WHERE job_embedding_hash IS NOT null;

CREATE INDEX IF NOT EXISTS user_preferences_embedding_hash_idx
ON user_preferences (embedding_hash) WHERE embedding_hash IS NOT null;

ALTER TABLE embedding_usage
ADD COLUMN cached_inputs bigint NOT NULL DEFAULT 0,
ADD COLUMN cached_tokens bigint NOT NULL DEFAULT 0,
ADD COLUMN skipped_inputs bigint NOT NULL DEFAULT 0;

-- Only what can be matched is embedded: jobs posted within the window plus
-- this many days (older ones can never be returned).
ALTER TABLE jobmatch_settings
ADD COLUMN embed_margin_days integer NOT NULL DEFAULT 7
CHECK (embed_margin_days >= 0);

-- Cost in money: the provider's price per 1M input tokens, and its Batch
-- API price (OpenAI's published prices; local models cost nothing). A DBA
-- corrects them here when prices change.
ALTER TABLE embedding_models
ADD COLUMN usd_per_million_tokens numeric CHECK (usd_per_million_tokens >= 0),
ADD COLUMN batch_usd_per_million_tokens numeric
CHECK (batch_usd_per_million_tokens >= 0);

UPDATE embedding_models
SET
    usd_per_million_tokens = CASE split_part(model, '@', 1)
        WHEN 'text-embedding-3-small' THEN 0.02
        WHEN 'text-embedding-3-large' THEN 0.13
        WHEN 'text-embedding-ada-002' THEN 0.10
    END,
    batch_usd_per_million_tokens = CASE split_part(model, '@', 1)
        WHEN 'text-embedding-3-small' THEN 0.01
        WHEN 'text-embedding-3-large' THEN 0.065
        WHEN 'text-embedding-ada-002' THEN 0.05
    END;

UPDATE embedding_models
SET usd_per_million_tokens = 0, batch_usd_per_million_tokens = 0
WHERE provider = 'local';

-- OpenAI's Batch API for backfills (jobmatch backfill --batch-api): every
-- submitted batch and the rows it carries, so a restarted backfill resumes
-- from what the database holds. Batch tokens are billed at half price.
CREATE TABLE embedding_api_batches (
    batch_id text PRIMARY KEY,
    worker text NOT NULL,
    model text NOT NULL,
    input_file_id text NOT NULL,
    requests integer NOT NULL,
    status text NOT NULL DEFAULT 'submitted',
    submitted_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    last_error text
);

CREATE TABLE embedding_api_batch_rows (
    batch_id text NOT NULL REFERENCES embedding_api_batches ON DELETE CASCADE,
    custom_id text NOT NULL,
    entity_type text NOT NULL,
    entity_id bigint NOT NULL,
    text_hash uuid NOT NULL,
    PRIMARY KEY (batch_id, custom_id)
);

ALTER TABLE embedding_usage
ADD COLUMN batch_inputs bigint NOT NULL DEFAULT 0,
ADD COLUMN batch_tokens bigint NOT NULL DEFAULT 0;
