-- Drift: what `jobmatch health` warns about, one row per vector index of
-- the active model (or recorded for another model, or missing):
-- * an ivfflat index built on far fewer rows than the table now holds
--   (rows_now > p_growth_ratio x rows_at_build): its lists were trained and
--   sized for a smaller table, so recall or latency slide; rebuild it.
--   HNSW grows its graph with every insert and is not flagged for growth.
-- * a sampled recall below target: for p_recall_sample seekers, match_jobs'
--   nearest-neighbour scan as the planner runs it (settings from
--   embedding_models; its pool of max(p_k, match_candidates) jobs that fit
--   the seeker's hard filters) against an exact scan with the same window,
--   filters and threshold (job index only); flagged when even the mean plus
--   two standard errors is below p_recall_target.
-- * a job index that covers jobs posted since posted_since: when the window
--   now starts before that (match_window_days raised), match_jobs cannot use
--   it and scans exactly; when it still holds more than a window's length of
--   jobs that left the window, its scans carry them. Rebuild either way.
-- * an index recorded for another model, one that was dropped, or a table
--   with enough vectors and no index at all.
-- One helper per check; vector_index_drift runs them per recorded index.

-- The rows of the model a table's index holds now (a job index: those
-- posted since its posted_since).
CREATE OR REPLACE FUNCTION jobmatch_drift_rows_now(
    p_table text, p_model_column text, p_column text, p_model text,
    p_posted_since timestamptz
)
RETURNS bigint
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_rows bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I WHERE %I = $1 AND %I IS NOT NULL%s',
                   p_table, p_model_column, p_column,
                   CASE WHEN p_posted_since IS NOT NULL
                        THEN ' AND posted_date >= $2' ELSE '' END)
        INTO v_rows USING p_model, p_posted_since;
    RETURN v_rows;
END
$$;

-- Whether the recorded index is the one to check: none recorded (worth a
-- word only once exact scans get big: match_jobs searches jobs, match_users
-- and the alerts seekers), recorded and dropped, or built for another
-- model. NULL: it is, and the checks below apply.
CREATE OR REPLACE FUNCTION jobmatch_drift_unusable(
    p_index text, p_present boolean, p_built_model text, p_active_model text,
    p_table text, p_entity text, p_rows_now bigint
)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN p_index IS NULL THEN
            CASE WHEN p_rows_now >= 10000 THEN format(
                '%s has %s vectors and no vector index: match scans are exact; '
                'build one with `jobmatch index rebuild --table %s`',
                p_table, p_rows_now, p_entity) END
        WHEN NOT p_present THEN format(
            'index %s was recorded but no longer exists; rebuild with '
            '`jobmatch index rebuild --table %s`', p_index, p_entity)
        WHEN p_built_model IS DISTINCT FROM p_active_model THEN format(
            'index %s was built for %s, the active model is %s; rebuild with '
            '`jobmatch index rebuild --table %s`', p_index, p_built_model, p_active_model,
            p_entity)
    END
$$;

-- A job index against the window: one starting before its posted_since,
-- or more than a window's length of jobs that left it.
CREATE OR REPLACE FUNCTION jobmatch_drift_window(
    p_index text, p_posted_since timestamptz, p_start timestamptz, p_window_days integer
)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN p_posted_since > p_start THEN format(
            'index %s covers jobs posted since %s, the %s-day window starts %s: '
            'match_jobs cannot use it and scans exactly; rebuild with '
            '`jobmatch index rebuild --table job`', p_index,
            p_posted_since::date, p_window_days, p_start::date)
        WHEN p_start - p_posted_since > make_interval(days => p_window_days) THEN format(
            'index %s still holds jobs posted since %s, more than a window before '
            'the window (%s): its scans carry them; rebuild it weekly with '
            '`jobmatch index rebuild --table job`', p_index,
            p_posted_since::date, p_start::date)
    END
$$;

-- An ivfflat index on more than p_growth_ratio x the rows it was built on.
CREATE OR REPLACE FUNCTION jobmatch_drift_growth(
    p_index text, p_method text, p_rows_at_build bigint, p_rows_now bigint,
    p_growth double precision, p_growth_ratio double precision, p_entity text
)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN p_method = 'ivfflat' AND p_growth > p_growth_ratio THEN format(
        'ivfflat index %s was built on %s rows, the table now has %s (x%s): '
        'its lists no longer fit; rebuild with `jobmatch index rebuild --table %s`',
        p_index, p_rows_at_build, p_rows_now, round(p_growth::numeric, 1), p_entity) END
$$;

-- match_jobs' search (jobmatch_nearest_jobs) against an exact one for
-- p_sample seekers: its pool of max(k, match_candidates), then the
-- threshold. Sets the model's search knobs for the transaction: called by
-- vector_index_drift, whose SET clauses restore them when it returns.
CREATE OR REPLACE FUNCTION jobmatch_drift_recall(
    p_model embedding_models, p_pool integer, p_sample integer,
    p_recall_target double precision, p_method text,
    OUT recall double precision, OUT warning text
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_seeker user_preferences;
    v_exact bigint[];
    v_ann bigint[];
    v_sum double precision := 0;
    v_sum_sq double precision := 0;
    v_one double precision;
    v_n integer := 0;
BEGIN
    PERFORM jobmatch_set_search_knobs(p_model);
    FOR v_seeker IN
        SELECT u.* FROM user_preferences AS u
        WHERE u.embedding_model = p_model.model AND u.user_embedding IS NOT NULL
        ORDER BY md5(u.user_id::text)
        LIMIT p_sample
    LOOP
        SELECT coalesce(array_agg(n.id ORDER BY n.distance, n.id), '{}') INTO v_exact
        FROM jobmatch_nearest_jobs(v_seeker.user_id, p_pool, false, true) AS n
        WHERE 1 - n.distance >= p_model.similarity_threshold;
        SELECT coalesce(array_agg(n.id ORDER BY n.distance, n.id), '{}') INTO v_ann
        FROM jobmatch_nearest_jobs(v_seeker.user_id, p_pool, p_model.index_halfvec) AS n
        WHERE 1 - n.distance >= p_model.similarity_threshold;
        IF cardinality(v_exact) > 0 THEN
            v_one := (SELECT count(*) FROM unnest(v_ann) AS a
                      WHERE a = ANY (v_exact))::double precision
                     / cardinality(v_exact);
            v_sum := v_sum + v_one;
            v_sum_sq := v_sum_sq + v_one * v_one;
            v_n := v_n + 1;
        END IF;
    END LOOP;
    IF v_n > 0 THEN
        recall := v_sum / v_n;
        -- A few seekers are a noisy sample (some are hard): warn only when
        -- even mean + 2 standard errors misses the target.
        IF recall + 2 * sqrt(greatest(v_sum_sq / v_n - recall ^ 2, 0)
                             / greatest(v_n - 1, 1)) < p_recall_target THEN
            warning := format(
                'sampled recall@%s of match_jobs is %s on %s seekers, below %s: '
                'run `jobmatch index tune --apply`%s', p_pool,
                round(recall::numeric, 3), v_n, p_recall_target,
                CASE WHEN p_method = 'ivfflat'
                     THEN ' or `jobmatch index rebuild --table job`' ELSE '' END);
        END IF;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION vector_index_drift(
    p_growth_ratio double precision DEFAULT 2,
    p_recall_sample integer DEFAULT 10,
    p_recall_target double precision DEFAULT 0.95,
    p_k integer DEFAULT 10
)
RETURNS TABLE (
    index_name text, table_name text, method text, is_halfvec boolean,
    lists integer, rows_at_build bigint, rows_now bigint, growth double precision,
    built_at timestamptz, posted_since timestamptz, sampled_recall double precision,
    warning text
)
LANGUAGE plpgsql
-- the knobs set inside end with the call
SET "ivfflat.iterative_scan" = 'relaxed_order'
SET "hnsw.iterative_scan" = 'relaxed_order'
SET "ivfflat.probes" = 10
SET "ivfflat.max_probes" = 32768
SET "hnsw.ef_search" = 40
SET "hnsw.max_scan_tuples" = 20000
AS $$
DECLARE
    v_model embedding_models := active_embedding_model();
    v_settings jobmatch_settings;
    b record;
    v_start timestamptz;
    v_recall_warning text;
    v_warnings text[];
BEGIN
    IF v_model.model IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO v_settings FROM jobmatch_settings;
    v_start := current_date - v_settings.match_window_days;
    FOR b IN
        SELECT x.entity, x.tbl, x.col, x.model_col, vb.index_name AS built_name, vb.method,
               vb.halfvec, vb.lists, vb.rows_at_build, vb.built_at, vb.model,
               vb.posted_since,
               c.oid IS NOT NULL AS present
        FROM (VALUES ('job', 'canonical_jobs', 'job_embedding', 'job_embedding_model'),
                     ('user', 'user_preferences', 'user_embedding', 'embedding_model'))
             AS x (entity, tbl, col, model_col)
        LEFT JOIN vector_index_builds AS vb ON vb.table_name = x.tbl
        LEFT JOIN pg_class AS c
            ON c.relname = vb.index_name AND c.relkind = 'i'
               AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
        ORDER BY x.entity, vb.index_name
    LOOP
        index_name := b.built_name; table_name := b.tbl; method := b.method;
        is_halfvec := b.halfvec; lists := b.lists; rows_at_build := b.rows_at_build;
        built_at := b.built_at; posted_since := b.posted_since; sampled_recall := NULL;
        rows_now := jobmatch_drift_rows_now(b.tbl, b.model_col, b.col, v_model.model,
                                            b.posted_since);
        growth := CASE WHEN b.rows_at_build > 0
                       THEN rows_now::double precision / b.rows_at_build END;
        IF b.built_name IS NULL OR NOT b.present OR b.model IS DISTINCT FROM v_model.model THEN
            v_warnings := ARRAY[jobmatch_drift_unusable(b.built_name, b.present, b.model,
                                                        v_model.model, b.tbl, b.entity,
                                                        rows_now)];
        ELSE
            v_warnings := ARRAY[
                jobmatch_drift_window(b.built_name, b.posted_since, v_start,
                                      v_settings.match_window_days),
                jobmatch_drift_growth(b.built_name, b.method, b.rows_at_build, rows_now,
                                      growth, p_growth_ratio, b.entity)];
            IF b.entity = 'job' AND coalesce(p_recall_sample, 0) > 0 THEN
                SELECT r.recall, r.warning INTO sampled_recall, v_recall_warning
                FROM jobmatch_drift_recall(v_model,
                                           greatest(p_k, v_settings.match_candidates),
                                           p_recall_sample, p_recall_target, b.method) AS r;
                v_warnings := v_warnings || v_recall_warning;
            END IF;
        END IF;
        warning := nullif(array_to_string(v_warnings, '; '), '');
        IF b.built_name IS NOT NULL OR warning IS NOT NULL THEN
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
