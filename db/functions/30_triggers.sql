-- Dirty tracking. Statement-level triggers with transition tables: a bulk
-- load of 100k rows is one set-based enqueue and one NOTIFY, not 100k.
-- An UPDATE enqueues only rows whose profile text actually changed. A row
-- whose vector columns the statement wrote (the worker's write-back and the
-- refresh's sweep stamp them) is checked the cheaper way, one text, not two:
-- it is queued unless its stored hash is its new text's. Nothing a session
-- can set skips the check. Definer functions (triggers run as whoever
-- writes jobs or preferences; the queue is ours) with a pinned search_path.

CREATE OR REPLACE FUNCTION canonical_jobs_enqueue_changed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM enqueue_embeddings('job', ARRAY(SELECT n.id FROM new_rows AS n));
    ELSE
        PERFORM enqueue_embeddings('job', ARRAY(
            SELECT n.id FROM new_rows AS n
            LEFT JOIN old_rows AS o ON o.id = n.id
            WHERE o.id IS NULL
               OR CASE WHEN n.job_embedding_updated_at IS DISTINCT FROM o.job_embedding_updated_at
                         OR n.job_embedding_xmin IS DISTINCT FROM o.job_embedding_xmin
                       THEN jobmatch_text_hash(job_profile_text(n))
                            IS DISTINCT FROM n.job_embedding_hash
                       ELSE job_profile_text(n) IS DISTINCT FROM job_profile_text(o) END));
        -- An id that changed leaves a queue row for an id that is gone.
        DELETE FROM embedding_queue AS q
        USING old_rows AS o
        WHERE q.entity_type = 'job' AND q.entity_id = o.id
          AND NOT EXISTS (SELECT 1 FROM new_rows AS n WHERE n.id = o.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION canonical_jobs_dequeue_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM embedding_queue WHERE entity_type = 'job';
        DELETE FROM embedding_dead_letter WHERE entity_type = 'job';
        DELETE FROM embedding_vectors WHERE entity_type = 'job';
        DELETE FROM embedding_target_queue WHERE entity_type = 'job';
    ELSE
        DELETE FROM embedding_queue AS q USING old_rows AS o
        WHERE q.entity_type = 'job' AND q.entity_id = o.id;
        DELETE FROM embedding_dead_letter AS d USING old_rows AS o
        WHERE d.entity_type = 'job' AND d.entity_id = o.id;
        DELETE FROM embedding_vectors AS v USING old_rows AS o
        WHERE v.entity_type = 'job' AND v.entity_id = o.id;
        DELETE FROM embedding_target_queue AS q USING old_rows AS o
        WHERE q.entity_type = 'job' AND q.entity_id = o.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION user_preferences_enqueue_changed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM enqueue_embeddings('user', ARRAY(SELECT n.user_id FROM new_rows AS n));
    ELSE
        PERFORM enqueue_embeddings('user', ARRAY(
            SELECT n.user_id FROM new_rows AS n
            LEFT JOIN old_rows AS o ON o.user_id = n.user_id
            WHERE o.user_id IS NULL
               OR CASE WHEN n.embedding_updated_at IS DISTINCT FROM o.embedding_updated_at
                         OR n.embedding_xmin IS DISTINCT FROM o.embedding_xmin
                       THEN jobmatch_text_hash(user_profile_text(n))
                            IS DISTINCT FROM n.embedding_hash
                       ELSE user_profile_text(n) IS DISTINCT FROM user_profile_text(o) END));
        DELETE FROM embedding_queue AS q
        USING old_rows AS o
        WHERE q.entity_type = 'user' AND q.entity_id = o.user_id
          AND NOT EXISTS (SELECT 1 FROM new_rows AS n WHERE n.user_id = o.user_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION user_preferences_dequeue_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM embedding_queue WHERE entity_type = 'user';
        DELETE FROM embedding_dead_letter WHERE entity_type = 'user';
        DELETE FROM embedding_vectors WHERE entity_type = 'user';
        DELETE FROM embedding_target_queue WHERE entity_type = 'user';
    ELSE
        DELETE FROM embedding_queue AS q USING old_rows AS o
        WHERE q.entity_type = 'user' AND q.entity_id = o.user_id;
        DELETE FROM embedding_dead_letter AS d USING old_rows AS o
        WHERE d.entity_type = 'user' AND d.entity_id = o.user_id;
        DELETE FROM embedding_vectors AS v USING old_rows AS o
        WHERE v.entity_type = 'user' AND v.entity_id = o.user_id;
        DELETE FROM embedding_target_queue AS q USING old_rows AS o
        WHERE q.entity_type = 'user' AND q.entity_id = o.user_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER canonical_jobs_embedding_insert
AFTER INSERT ON canonical_jobs
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION canonical_jobs_enqueue_changed();

CREATE OR REPLACE TRIGGER canonical_jobs_embedding_update
AFTER UPDATE ON canonical_jobs
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION canonical_jobs_enqueue_changed();

CREATE OR REPLACE TRIGGER canonical_jobs_embedding_delete
AFTER DELETE ON canonical_jobs
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION canonical_jobs_dequeue_deleted();

CREATE OR REPLACE TRIGGER canonical_jobs_embedding_truncate
AFTER TRUNCATE ON canonical_jobs
FOR EACH STATEMENT EXECUTE FUNCTION canonical_jobs_dequeue_deleted();

CREATE OR REPLACE TRIGGER user_preferences_embedding_insert
AFTER INSERT ON user_preferences
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION user_preferences_enqueue_changed();

CREATE OR REPLACE TRIGGER user_preferences_embedding_update
AFTER UPDATE ON user_preferences
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION user_preferences_enqueue_changed();

CREATE OR REPLACE TRIGGER user_preferences_embedding_delete
AFTER DELETE ON user_preferences
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION user_preferences_dequeue_deleted();

CREATE OR REPLACE TRIGGER user_preferences_embedding_truncate
AFTER TRUNCATE ON user_preferences
FOR EACH STATEMENT EXECUTE FUNCTION user_preferences_dequeue_deleted();
