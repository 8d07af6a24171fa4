-- depends: 0001_bot_tables
-- Embedding columns, model settings, the embedding queue, its dead letters
-- and the usage ledger.

-- Columns are plain `vector` (no dimension) so the configured model decides
-- the dimension; indexes are per-model expression indexes.
ALTER TABLE canonical_jobs
ADD COLUMN IF NOT EXISTS job_embedding vector,
ADD COLUMN IF NOT EXISTS job_embedding_text text,
ADD COLUMN IF NOT EXISTS job_embedding_updated_at timestamptz,
ADD COLUMN IF NOT EXISTS embedding_version integer,
ADD COLUMN IF NOT EXISTS job_embedding_model text,
ADD COLUMN IF NOT EXISTS job_embedding_hash uuid;

ALTER TABLE user_preferences
ADD COLUMN IF NOT EXISTS user_embedding vector,
ADD COLUMN IF NOT EXISTS embedding_text text,
ADD COLUMN IF NOT EXISTS embedding_updated_at timestamptz,
ADD COLUMN IF NOT EXISTS embedding_version integer,
ADD COLUMN IF NOT EXISTS embedding_model text,
ADD COLUMN IF NOT EXISTS embedding_hash uuid;

-- A database that ran the original plan has vector(1536) columns, ivfflat
-- indexes built on empty tables and a misleading DEFAULT NOW(): undo those.
-- Its vectors have no recorded model (and may be zero vectors stored on API
-- errors), so they are never used; every row is queued below instead.
DROP INDEX IF EXISTS idx_user_preferences_embedding;
DROP INDEX IF EXISTS idx_canonical_jobs_embedding;
ALTER TABLE canonical_jobs
ALTER COLUMN job_embedding TYPE vector,
ALTER COLUMN job_embedding_updated_at DROP DEFAULT,
ALTER COLUMN embedding_version DROP DEFAULT;
ALTER TABLE user_preferences
ALTER COLUMN user_embedding TYPE vector,
ALTER COLUMN embedding_updated_at DROP DEFAULT,
ALTER COLUMN embedding_version DROP DEFAULT;

CREATE INDEX IF NOT EXISTS canonical_jobs_posted_date_idx
ON canonical_jobs (posted_date DESC);

-- One row per embedding model; exactly one is active. DBAs tune thresholds
-- and probes here, per model, because similarity scales differ by model.
CREATE TABLE embedding_models (
    model text PRIMARY KEY,
    provider text NOT NULL CHECK (provider IN ('openai', 'local')),
    dimensions integer NOT NULL CHECK (dimensions BETWEEN 1 AND 16000),
    similarity_threshold double precision NOT NULL DEFAULT 0.65
    CHECK (similarity_threshold BETWEEN -1 AND 1),
    ivfflat_probes integer NOT NULL DEFAULT 10 CHECK (ivfflat_probes >= 1),
    is_active boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX embedding_models_one_active
ON embedding_models (is_active) WHERE is_active;

INSERT INTO embedding_models (model, provider, dimensions, similarity_threshold)
VALUES
('text-embedding-3-small', 'openai', 1536, 0.65),
('text-embedding-3-large', 'openai', 3072, 0.65),
('multilingual-e5-small', 'local', 384, 0.82);

-- Settings that are not per model. A single row.
CREATE TABLE jobmatch_settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    match_window_days integer NOT NULL DEFAULT 60
    CHECK (match_window_days > 0),
    match_max_limit integer NOT NULL DEFAULT 100 CHECK (match_max_limit > 0),
    queue_max_attempts integer NOT NULL DEFAULT 8
    CHECK (queue_max_attempts > 0),
    queue_backoff_base interval NOT NULL DEFAULT '10 seconds',
    queue_backoff_cap interval NOT NULL DEFAULT '1 hour',
    profile_text_version integer NOT NULL DEFAULT 1
);

INSERT INTO jobmatch_settings DEFAULT VALUES;

-- One pending row per entity: a burst of edits coalesces into one row, and
-- the worker reads the text from the entity when it claims the row.
CREATE TABLE embedding_queue (
    entity_type text NOT NULL CHECK (entity_type IN ('job', 'user')),
    entity_id bigint NOT NULL,
    priority smallint NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    run_after timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    locked_by text,
    locked_until timestamptz,
    last_error text,
    PRIMARY KEY (entity_type, entity_id)
);

CREATE INDEX embedding_queue_ready_idx
ON embedding_queue (priority, run_after);

CREATE TABLE embedding_dead_letter (
    entity_type text NOT NULL,
    entity_id bigint NOT NULL,
    attempts integer NOT NULL,
    last_error text,
    enqueued_at timestamptz NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity_type, entity_id)
);

-- Cost monitoring: what was sent to the provider, per day and model.
CREATE TABLE embedding_usage (
    day date NOT NULL DEFAULT current_date,
    model text NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    inputs bigint NOT NULL DEFAULT 0,
    tokens bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, model)
);

-- What each vector index was built with, so drift can be reported.
CREATE TABLE vector_index_builds (
    index_name text PRIMARY KEY,
    table_name text NOT NULL,
    model text NOT NULL,
    method text NOT NULL,
    lists integer,
    rows_at_build bigint NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now()
);

-- Rows that exist before the triggers do still need vectors.
INSERT INTO embedding_queue (entity_type, entity_id)
SELECT
    'job' AS entity_type,
    id AS entity_id
FROM canonical_jobs;

INSERT INTO embedding_queue (entity_type, entity_id)
SELECT
    'user' AS entity_type,
    user_id AS entity_id
FROM user_preferences
WHERE user_id IS NOT null;
