-- A model switch without downtime (blue/green, issue #15). The active
-- model keeps serving from the entity rows' columns while a target model
-- (add_embedding_model) is embedded into embedding_vectors by the same
-- workers, behind fresh work (28_target_queue.sql). Once the target covers
-- enough rows, promote_embedding_model swaps the two in one transaction:
-- match_jobs, match_users and the alerts read the serving columns and the
-- active model's row only, so every caller sees all of one model or all of
-- the other. The previous model becomes the target (its vectors kept, and
-- fresh edits embedded for it too) so promoting it back is a rollback;
-- drop_embedding_model ends that.

-- Registers p_model as the target: recorded like set_embedding_model's
-- (a `model@dims` name for fewer dimensions), and every job that can still
-- be matched and every seeker queued for it at low priority (1), except
-- rows it has a vector of the current profile-text version for already (a
-- previous model added again). Run again after a profile-text version
-- change during a switch: the triggers do not see one.
-- Returns the rows queued. Refused while another model is the target, for
-- the active model, and with no active model (`jobmatch migrate` first).
CREATE OR REPLACE FUNCTION add_embedding_model(
    p_model text,
    p_provider text,
    p_dimensions integer,
    p_similarity_threshold double precision DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_active embedding_models := active_embedding_model();
    v_target embedding_models;
    v_count integer;
    v_users integer;
BEGIN
    LOCK TABLE embedding_models IN SHARE ROW EXCLUSIVE MODE;
    v_target := jobmatch_target_model();
    IF p_model IS NULL OR btrim(p_model) = '' OR p_dimensions IS NULL THEN
        RAISE EXCEPTION 'add_embedding_model: model and dimensions are required'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF v_active.model IS NULL THEN
        RAISE EXCEPTION 'no active model to switch from'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run `jobmatch migrate` first: its model is the active one.';
    END IF;
    IF v_active.model = p_model THEN
        RAISE EXCEPTION '% is the active model already', p_model
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_target.model IS NOT NULL AND v_target.model <> p_model THEN
        RAISE EXCEPTION '% is the target model already', v_target.model
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Promote it, or drop it (`jobmatch model drop '
                         || v_target.model || '`), first.';
    END IF;
    PERFORM jobmatch_record_model(p_model, p_provider, p_dimensions, p_similarity_threshold);
    UPDATE embedding_models SET is_target = true WHERE model = p_model;
    INSERT INTO embedding_target_queue (model, entity_type, entity_id)
    SELECT p_model, 'job', j.id
    FROM canonical_jobs AS j, jobmatch_settings AS s
    -- jobmatch_worth_embedding's rule for jobs, as the refresh applies it
    WHERE j.posted_date >= current_date - s.match_window_days - s.embed_margin_days
      AND NOT EXISTS (SELECT 1 FROM embedding_vectors AS v
                      WHERE v.model = p_model AND v.entity_type = 'job'
                        AND v.entity_id = j.id AND v.version = s.profile_text_version)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO embedding_target_queue (model, entity_type, entity_id)
    SELECT p_model, 'user', u.user_id
    FROM user_preferences AS u, jobmatch_settings AS s
    WHERE u.user_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM embedding_vectors AS v
                      WHERE v.model = p_model AND v.entity_type = 'user'
                        AND v.entity_id = u.user_id AND v.version = s.profile_text_version)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_users = ROW_COUNT;
    PERFORM pg_notify('jobmatch_embedding_queue', 'target');
    RETURN v_count + v_users;
END
$$;

-- Makes p_model the active model, in one transaction, once it covers at
-- least p_min_coverage percent (jobmatch_model_coverage's lower figure);
-- below, refused with the figures. The active model's vectors move to
-- embedding_vectors and p_model's into the serving columns, where the
-- entity's text still hashes to theirs (others wait for the worker, queued
-- by the refresh); the previous model becomes the target, so promoting it
-- back is a rollback. Concurrent readers see one model or the other, never
-- a mix (MVCC); writers of a row wait for the swap of that row. Returns the
-- rows now served by p_model.
CREATE OR REPLACE FUNCTION promote_embedding_model(
    p_model text,
    p_min_coverage numeric DEFAULT 99
)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_old embedding_models;
    v_new embedding_models;
    c record;
    v_jobs bigint;
    v_users bigint;
    v_index text;
BEGIN
    LOCK TABLE embedding_models IN SHARE ROW EXCLUSIVE MODE;
    v_old := active_embedding_model();
    SELECT * INTO v_new FROM embedding_models AS m WHERE m.model = p_model;
    IF v_new.model IS NULL THEN
        RAISE EXCEPTION 'no embedding model %', p_model
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Register it with `jobmatch model add`.';
    END IF;
    IF v_new.is_active THEN
        RAISE EXCEPTION '% is the active model already', p_model
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO c FROM jobmatch_model_coverage(p_model);
    IF c.coverage_pct < coalesce(p_min_coverage, 99) THEN
        RAISE EXCEPTION 'refusing to promote %: it covers % (jobs % of %, seekers % of %), below the floor of %',
            p_model, c.coverage_pct || '%', c.jobs_covered, c.jobs_total, c.users_covered,
            c.users_total, coalesce(p_min_coverage, 99) || '%'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Let the worker fill it (`jobmatch health`), or lower --min-coverage.';
    END IF;

    -- the serving vectors of the active model, kept for a rollback
    INSERT INTO embedding_vectors AS v (model, entity_type, entity_id, text_hash, embedding,
                                        role_embedding, version, updated_at)
    SELECT v_old.model, 'job', j.id, j.job_embedding_hash, j.job_embedding,
           j.job_role_embedding, j.embedding_version, j.job_embedding_updated_at
    FROM canonical_jobs AS j
    WHERE j.job_embedding_model = v_old.model AND j.job_embedding_hash IS NOT NULL
      AND j.embedding_version IS NOT NULL
    UNION ALL
    SELECT v_old.model, 'user', u.user_id, u.embedding_hash, u.user_embedding,
           u.user_role_embedding, u.embedding_version, u.embedding_updated_at
    FROM user_preferences AS u
    WHERE u.embedding_model = v_old.model AND u.embedding_hash IS NOT NULL
      AND u.embedding_version IS NOT NULL
    ON CONFLICT (model, entity_type, entity_id) DO UPDATE
        SET text_hash = excluded.text_hash, embedding = excluded.embedding,
            role_embedding = excluded.role_embedding, version = excluded.version,
            updated_at = excluded.updated_at;

    -- p_model's vectors into the serving columns, as the write-back writes
    -- them (jobmatch_write_vectors), where the text is still theirs
    UPDATE canonical_jobs AS j
    SET job_embedding = v.embedding,
        job_role_embedding = v.role_embedding,
        job_occupation = jobmatch_nearest_occupation(p_model, v.role_embedding, v.embedding),
        job_embedding_text = jobmatch_job_profile_text(j),
        job_embedding_hash = v.text_hash,
        job_embedding_model = p_model,
        job_embedding_updated_at = v.updated_at,
        job_embedding_xmin = pg_current_xact_id()::xid,
        embedding_version = v.version
    FROM embedding_vectors AS v
    WHERE v.model = p_model AND v.entity_type = 'job' AND v.entity_id = j.id
      AND jobmatch_text_hash(jobmatch_job_profile_text(j)) = v.text_hash;
    GET DIAGNOSTICS v_jobs = ROW_COUNT;
    UPDATE user_preferences AS u
    SET user_embedding = v.embedding,
        user_role_embedding = v.role_embedding,
        user_occupation = jobmatch_nearest_occupation(p_model, v.role_embedding, v.embedding),
        embedding_text = jobmatch_user_profile_text(u),
        embedding_hash = v.text_hash,
        embedding_model = p_model,
        embedding_updated_at = v.updated_at,
        embedding_xmin = pg_current_xact_id()::xid,
        embedding_version = v.version
    FROM embedding_vectors AS v
    WHERE v.model = p_model AND v.entity_type = 'user' AND v.entity_id = u.user_id
      AND jobmatch_text_hash(jobmatch_user_profile_text(u)) = v.text_hash;
    GET DIAGNOSTICS v_users = ROW_COUNT;
    -- the serving columns hold them now; its queue is the main one's
    DELETE FROM embedding_vectors AS v WHERE v.model = p_model;
    DELETE FROM embedding_target_queue AS q WHERE q.model = p_model;

    UPDATE embedding_models SET is_active = false, is_target = false
    WHERE is_active OR is_target;
    UPDATE embedding_models SET is_active = true WHERE model = p_model;
    UPDATE embedding_models SET is_target = true WHERE model = v_old.model;
    -- p_model's vector indexes, built before (`jobmatch index rebuild
    -- --model`, *_ann_next), filled by the swap above, take the serving
    -- names, and the old model's take theirs for a rollback (renames take
    -- no lock the bot or the writers wait for)
    FOR v_index IN SELECT x FROM unnest(ARRAY['canonical_jobs_job_embedding_ann',
                                              'user_preferences_user_embedding_ann']) AS x
    LOOP
        CONTINUE WHEN to_regclass(v_index || '_next') IS NULL;
        IF to_regclass(v_index) IS NOT NULL THEN
            EXECUTE format('ALTER INDEX %I RENAME TO %I', v_index, v_index || '_swap');
        END IF;
        EXECUTE format('ALTER INDEX %I RENAME TO %I', v_index || '_next', v_index);
        IF to_regclass(v_index || '_swap') IS NOT NULL THEN
            EXECUTE format('ALTER INDEX %I RENAME TO %I', v_index || '_swap', v_index || '_next');
        END IF;
        UPDATE vector_index_builds AS b
        SET model = p_model, method = v_new.index_method, halfvec = v_new.index_halfvec,
            lists = NULL, built_at = now(),
            rows_at_build = CASE WHEN b.table_name = 'canonical_jobs' THEN v_jobs
                                 ELSE v_users END
        WHERE b.index_name = v_index;
    END LOOP;
    -- rows p_model had no vector of its row's text for (the last percent)
    PERFORM enqueue_stale_embeddings(NULL, 1);
    PERFORM pg_notify('jobmatch_embedding_queue', 'promote');
    RETURN v_jobs + v_users;
END
$$;

-- Removes model p_model's vectors (embedding_vectors, and serving columns
-- still holding them: rows the active model has not re-embedded yet,
-- matched by keywords meanwhile either way) and its target queue; it is
-- the target no more. The active model is refused: promote another first.
-- Returns the vectors removed.
CREATE OR REPLACE FUNCTION drop_embedding_model(p_model text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_model embedding_models;
    v_side bigint;
    v_jobs bigint;
    v_users bigint;
BEGIN
    LOCK TABLE embedding_models IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO v_model FROM embedding_models AS m WHERE m.model = p_model;
    IF v_model.model IS NULL THEN
        RAISE EXCEPTION 'no embedding model %', p_model
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_model.is_active THEN
        RAISE EXCEPTION 'refusing to drop %: it is the active model, serving match_jobs', p_model
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Promote another model first (`jobmatch model promote NAME`).';
    END IF;
    DELETE FROM embedding_vectors AS v WHERE v.model = p_model;
    GET DIAGNOSTICS v_side = ROW_COUNT;
    DELETE FROM embedding_target_queue AS q WHERE q.model = p_model;
    UPDATE canonical_jobs
    SET job_embedding = NULL, job_role_embedding = NULL, job_occupation = NULL
    WHERE job_embedding_model = p_model AND job_embedding IS NOT NULL;
    GET DIAGNOSTICS v_jobs = ROW_COUNT;
    UPDATE user_preferences
    SET user_embedding = NULL, user_role_embedding = NULL, user_occupation = NULL
    WHERE embedding_model = p_model AND user_embedding IS NOT NULL;
    GET DIAGNOSTICS v_users = ROW_COUNT;
    UPDATE embedding_models SET is_target = false WHERE model = p_model;
    -- its vector indexes (the *_ann_next ones are the non-active model's)
    DROP INDEX IF EXISTS canonical_jobs_job_embedding_ann_next;
    DROP INDEX IF EXISTS user_preferences_user_embedding_ann_next;
    RETURN v_side + v_jobs + v_users;
END
$$;
