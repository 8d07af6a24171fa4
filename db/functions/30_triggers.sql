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
                       THEN jobmatch_text_hash(jobmatch_job_profile_text(n))
                            IS DISTINCT FROM n.job_embedding_hash
                       ELSE jobmatch_job_profile_text(n)
                            IS DISTINCT FROM jobmatch_job_profile_text(o) END));
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
                       THEN jobmatch_text_hash(jobmatch_user_profile_text(n))
                            IS DISTINCT FROM n.embedding_hash
                       ELSE jobmatch_user_profile_text(n)
                            IS DISTINCT FROM jobmatch_user_profile_text(o) END));
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

-- Vectors and their bookkeeping (hash, text, model, timestamps, the xmin
-- stamp, version) are written by jobmatch alone: the write-back and the
-- refresh's sweep, which run as the owner inside the definer functions. The
-- enqueue triggers above trust a row whose vector columns a statement wrote
-- to be checked by its stored hash; a role that writes jobs or preferences
-- could otherwise store a new text with the new text's hash (md5 of a public
-- formula) and keep the old vector, never queued, or write any vector at all
-- with no text change (any job in front of every seeker). Such a write by
-- anyone without the table owner's rights is refused. Invoker's rights (the
-- check is of who writes), search_path pinned (nothing of the caller's is
-- resolved). It fires only for statements naming these columns (UPDATE
-- OF; an INSERT only with one of them set), so bulk loads and ordinary edits
-- never call it; an UPDATE that names them but leaves them as they were is
-- let through. The comparison is in the body, not a WHEN clause: vector
-- equality is pgvector's operator in public, which a trigger's WHEN would
-- resolve through the session's search_path, and pg_restore (search_path
-- empty) could not recreate the trigger.
CREATE OR REPLACE FUNCTION jobmatch_guard_vector_columns()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    IF pg_catalog.pg_has_role(
           current_user,
           (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = TG_RELID),
           'USAGE') THEN
        RETURN NEW;
    END IF;
    -- nested: an expression naming the other table's columns fails when
    -- it is prepared, so each is reached only for its own table
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'canonical_jobs' THEN
        IF (OLD.job_embedding, OLD.job_role_embedding, OLD.job_occupation, OLD.job_embedding_text,
            OLD.job_embedding_hash, OLD.job_embedding_model, OLD.job_embedding_updated_at,
            OLD.job_embedding_xmin, OLD.embedding_version)
           IS NOT DISTINCT FROM
           (NEW.job_embedding, NEW.job_role_embedding, NEW.job_occupation, NEW.job_embedding_text,
            NEW.job_embedding_hash, NEW.job_embedding_model, NEW.job_embedding_updated_at,
            NEW.job_embedding_xmin, NEW.embedding_version) THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF (OLD.user_embedding, OLD.user_role_embedding, OLD.user_occupation, OLD.embedding_text,
            OLD.embedding_hash, OLD.embedding_model, OLD.embedding_updated_at,
            OLD.embedding_xmin, OLD.embedding_version)
           IS NOT DISTINCT FROM
           (NEW.user_embedding, NEW.user_role_embedding, NEW.user_occupation, NEW.embedding_text,
            NEW.embedding_hash, NEW.embedding_model, NEW.embedding_updated_at,
            NEW.embedding_xmin, NEW.embedding_version) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '%: only jobmatch writes the vector columns (vectors, occupation, their hash, text, model, stamps)',
        TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Write the profile fields: the change is queued and the worker embeds it.';
END
$$;

CREATE OR REPLACE TRIGGER canonical_jobs_vector_columns_insert
BEFORE INSERT ON canonical_jobs
FOR EACH ROW
WHEN (num_nonnulls(
    new.job_embedding, new.job_role_embedding, new.job_occupation, new.job_embedding_text,
    new.job_embedding_hash, new.job_embedding_model,
    new.job_embedding_updated_at, new.job_embedding_xmin,
    new.embedding_version
) > 0)
EXECUTE FUNCTION jobmatch_guard_vector_columns();

CREATE OR REPLACE TRIGGER canonical_jobs_vector_columns_update
BEFORE UPDATE OF job_embedding, job_role_embedding, job_occupation, job_embedding_text,
job_embedding_hash, job_embedding_model, job_embedding_updated_at, job_embedding_xmin,
embedding_version
ON canonical_jobs
FOR EACH ROW
EXECUTE FUNCTION jobmatch_guard_vector_columns();

CREATE OR REPLACE TRIGGER user_preferences_vector_columns_insert
BEFORE INSERT ON user_preferences
FOR EACH ROW
WHEN (num_nonnulls(
    new.user_embedding, new.user_role_embedding, new.user_occupation, new.embedding_text,
    new.embedding_hash, new.embedding_model, new.embedding_updated_at,
    new.embedding_xmin, new.embedding_version
) > 0)
EXECUTE FUNCTION jobmatch_guard_vector_columns();

CREATE OR REPLACE TRIGGER user_preferences_vector_columns_update
BEFORE UPDATE OF user_embedding, user_role_embedding, user_occupation, embedding_text,
embedding_hash, embedding_model, embedding_updated_at, embedding_xmin, embedding_version
ON user_preferences
FOR EACH ROW
EXECUTE FUNCTION jobmatch_guard_vector_columns();
