-- depends: 0016_inline_vectors
-- Model switch without downtime (issue #15, blue/green): a second, target
-- model is registered while the active one keeps serving. Its vectors go
-- to a side table, never into the serving columns that match_jobs,
-- match_users and the alerts read; `jobmatch model promote` swaps the two
-- in one transaction once the target covers enough rows, and the previous
-- model's vectors stay in the side table for a rollback until `jobmatch
-- model drop`.

-- At most one target; never the active model at the same time.
ALTER TABLE embedding_models
ADD COLUMN is_target boolean NOT NULL DEFAULT false,
ADD CONSTRAINT embedding_models_target_not_active
CHECK (NOT (is_active AND is_target));

CREATE UNIQUE INDEX embedding_models_one_target
ON embedding_models (is_target) WHERE is_target;

-- Vectors of models that do not serve: the target's while it is filled,
-- the previous model's after a promotion (rollback). A row with a hash
-- and no vector: nothing to embed (a seeker with an empty profile). A
-- vector leaves when its entity's text changes (enqueue_embeddings), so
-- what is here is of the entity's current text.
CREATE TABLE embedding_vectors (
    model text NOT NULL REFERENCES embedding_models ON DELETE CASCADE,
    entity_type text NOT NULL CHECK (entity_type IN ('job', 'user')),
    entity_id bigint NOT NULL,
    text_hash uuid NOT NULL,
    embedding vector,
    role_embedding vector,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, entity_type, entity_id)
);

-- the content cache for the target: a text already embedded by the model
CREATE INDEX embedding_vectors_hash_idx
ON embedding_vectors (model, entity_type, text_hash);

-- The target's work, apart from embedding_queue (whose rows, claim and
-- write-back stay the active model's): priority 0 for fresh edits, 1 for
-- the backfill; the worker takes it only when the active queue has
-- nothing ready.
CREATE TABLE embedding_target_queue (
    model text NOT NULL REFERENCES embedding_models ON DELETE CASCADE,
    entity_type text NOT NULL CHECK (entity_type IN ('job', 'user')),
    entity_id bigint NOT NULL,
    priority smallint NOT NULL DEFAULT 1,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    run_after timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    locked_by text,
    locked_until timestamptz,
    last_error text,
    PRIMARY KEY (model, entity_type, entity_id)
);

CREATE INDEX embedding_target_queue_ready_idx
ON embedding_target_queue (model, priority, run_after);

-- an entity's vectors of every model, when its text changes or it goes
CREATE INDEX embedding_vectors_entity_idx
ON embedding_vectors (entity_type, entity_id);
