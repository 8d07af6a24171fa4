-- Vector indexes, one per table for the active model: a partial expression
-- index, because the columns hold vectors of any dimension and only the
-- active model's are ever compared. Method (ivfflat or HNSW) and precision
-- (vector or halfvec) are the DBA's choice, per model in embedding_models.

-- The indexed expression, e.g. job_embedding::halfvec(1536). match_jobs
-- builds its ORDER BY from the same function, so the two always agree.
CREATE OR REPLACE FUNCTION vector_search_expression(
    p_column text, p_dimensions integer, p_halfvec boolean
)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT format('%I::%s(%s)', p_column,
                  CASE WHEN p_halfvec THEN 'halfvec' ELSE 'vector' END, p_dimensions)
$$;

-- lists = rows / 1000 up to 1M rows, sqrt(rows) above (pgvector's advice).
CREATE OR REPLACE FUNCTION ivfflat_lists_for(p_rows bigint)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_rows > 1000000 THEN ceil(sqrt(p_rows))::integer
                ELSE greatest(1, (p_rows / 1000)::integer) END
$$;

-- The DDL for a table's vector index, sized from the rows that have a
-- vector of the active model. An ivfflat index is refused when there is too
-- little data: trained on a few rows it clusters badly and stays bad.
-- The CLI runs this DDL CONCURRENTLY; build_vector_index runs it in place.
CREATE OR REPLACE FUNCTION vector_index_ddl(
    p_entity_type text,
    p_lists integer DEFAULT NULL,
    p_min_rows bigint DEFAULT 10000,
    p_index_name text DEFAULT NULL,
    p_method text DEFAULT NULL,
    p_halfvec boolean DEFAULT NULL,
    p_hnsw_m integer DEFAULT 16,
    p_hnsw_ef_construction integer DEFAULT 64
)
RETURNS TABLE (
    index_name text, table_name text, method text, is_halfvec boolean,
    lists integer, row_count bigint, ddl text
)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_model embedding_models := active_embedding_model();
    v_column text;
    v_model_column text;
    v_needed bigint;
BEGIN
    IF v_model.model IS NULL THEN
        RAISE EXCEPTION 'no embedding model configured; run `jobmatch migrate` first'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF p_entity_type = 'job' THEN
        table_name := 'canonical_jobs'; v_column := 'job_embedding';
        v_model_column := 'job_embedding_model';
    ELSIF p_entity_type = 'user' THEN
        table_name := 'user_preferences'; v_column := 'user_embedding';
        v_model_column := 'embedding_model';
    ELSE
        RAISE EXCEPTION 'entity type must be ''job'' or ''user'', got %', p_entity_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    method := coalesce(p_method, v_model.index_method);
    is_halfvec := coalesce(p_halfvec, v_model.index_halfvec);
    IF method NOT IN ('ivfflat', 'hnsw') THEN
        RAISE EXCEPTION 'index method must be ivfflat or hnsw, got %', method
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_lists IS NOT NULL AND p_lists < 1 THEN
        RAISE EXCEPTION 'lists must be at least 1, got %', p_lists
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- pgvector indexes vector up to 2,000 dimensions and halfvec up to 4,000
    IF v_model.dimensions > (CASE WHEN is_halfvec THEN 4000 ELSE 2000 END) THEN
        RAISE EXCEPTION 'cannot index % dimensions as %', v_model.dimensions,
            CASE WHEN is_halfvec THEN 'halfvec' ELSE 'vector' END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Index as halfvec (up to 4,000 dimensions) or use fewer dimensions.';
    END IF;
    EXECUTE format('SELECT count(*) FROM %I WHERE %I = $1 AND %I IS NOT NULL',
                   table_name, v_model_column, v_column)
        INTO row_count USING v_model.model;
    index_name := coalesce(p_index_name, table_name || '_' || v_column || '_ann');
    IF method = 'ivfflat' THEN
        lists := coalesce(p_lists, ivfflat_lists_for(row_count));
        v_needed := greatest(p_min_rows, lists::bigint * 39);
        IF row_count < v_needed THEN
            RAISE EXCEPTION 'refusing to build an ivfflat index on % with % embedded rows (need at least %)',
                table_name, row_count, v_needed
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Below that an exact scan is as fast; build once the vectors are filled.';
        END IF;
    END IF;
    ddl := format('CREATE INDEX %I ON %I USING %s ((%s) %s) WITH (%s) WHERE %I = %L',
                  index_name, table_name, method,
                  vector_search_expression(v_column, v_model.dimensions, is_halfvec),
                  CASE WHEN is_halfvec THEN 'halfvec_cosine_ops' ELSE 'vector_cosine_ops' END,
                  CASE WHEN method = 'ivfflat' THEN format('lists = %s', lists)
                       ELSE format('m = %s, ef_construction = %s', p_hnsw_m,
                                   p_hnsw_ef_construction) END,
                  v_model_column, v_model.model);
    RETURN NEXT;
END
$$;

-- Records a finished build so `jobmatch health` can report drift. A job
-- index's method and precision become the model's: match_jobs searches with
-- the expression the index was built on, or it could not use it.
CREATE OR REPLACE FUNCTION record_vector_index_build(
    p_index_name text, p_table_name text, p_method text, p_halfvec boolean,
    p_lists integer, p_rows bigint,
    p_hnsw_m integer DEFAULT NULL, p_hnsw_ef_construction integer DEFAULT NULL
)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO vector_index_builds AS b (index_name, table_name, model, method, halfvec,
                                          lists, rows_at_build, hnsw_m, hnsw_ef_construction)
    VALUES (p_index_name, p_table_name, (active_embedding_model()).model, p_method, p_halfvec,
            p_lists, p_rows, p_hnsw_m, p_hnsw_ef_construction)
    ON CONFLICT (index_name) DO UPDATE
        SET table_name = excluded.table_name, model = excluded.model,
            method = excluded.method, halfvec = excluded.halfvec, lists = excluded.lists,
            rows_at_build = excluded.rows_at_build, hnsw_m = excluded.hnsw_m,
            hnsw_ef_construction = excluded.hnsw_ef_construction, built_at = now();
    UPDATE embedding_models
    SET index_method = p_method, index_halfvec = p_halfvec
    WHERE is_active AND p_table_name = 'canonical_jobs'
      AND (index_method, index_halfvec) IS DISTINCT FROM (p_method, p_halfvec);
$$;

-- Builds (or rebuilds) the index inside the current transaction. Blocks
-- writes to the table while it runs; `jobmatch index rebuild` builds
-- concurrently instead.
CREATE OR REPLACE FUNCTION build_vector_index(
    p_entity_type text,
    p_lists integer DEFAULT NULL,
    p_min_rows bigint DEFAULT 10000,
    p_method text DEFAULT NULL,
    p_halfvec boolean DEFAULT NULL
)
RETURNS TABLE (index_name text, method text, lists integer, row_count bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    d record;
BEGIN
    SELECT * INTO d FROM vector_index_ddl(p_entity_type, p_lists, p_min_rows, NULL,
                                          p_method, p_halfvec);
    EXECUTE format('DROP INDEX IF EXISTS %I', d.index_name);
    EXECUTE d.ddl;
    PERFORM record_vector_index_build(d.index_name, d.table_name, d.method, d.is_halfvec,
                                      d.lists, d.row_count,
                                      CASE WHEN d.method = 'hnsw' THEN 16 END,
                                      CASE WHEN d.method = 'hnsw' THEN 64 END);
    index_name := d.index_name; method := d.method;
    lists := d.lists; row_count := d.row_count;
    RETURN NEXT;
END
$$;

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
--   filters and threshold (job index only).
-- * an index recorded for another model, one that was dropped, or a table
--   with enough vectors and no index at all.
CREATE OR REPLACE FUNCTION vector_index_drift(
    p_growth_ratio double precision DEFAULT 2,
    p_recall_sample integer DEFAULT 10,
    p_recall_target double precision DEFAULT 0.95,
    p_k integer DEFAULT 10
)
RETURNS TABLE (
    index_name text, table_name text, method text, is_halfvec boolean,
    lists integer, rows_at_build bigint, rows_now bigint, growth double precision,
    built_at timestamptz, sampled_recall double precision, warning text
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_model embedding_models := active_embedding_model();
    v_settings jobmatch_settings;
    b record;
    v_entity text;
    v_column text;
    v_model_column text;
    v_expr text;
    v_exact_expr text;
    v_type text;
    v_search text;
    v_start timestamptz;
    v_seeker user_preferences;
    v_pool integer;
    v_places text[];
    v_types text[];
    v_exact bigint[];
    v_ann bigint[];
    v_sum double precision;
    v_n integer;
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
        v_entity := b.entity; v_column := b.col; v_model_column := b.model_col;
        index_name := b.built_name; table_name := b.tbl; method := b.method;
        is_halfvec := b.halfvec; lists := b.lists; rows_at_build := b.rows_at_build;
        built_at := b.built_at; sampled_recall := NULL; v_warnings := '{}';
        EXECUTE format('SELECT count(*) FROM %I WHERE %I = $1 AND %I IS NOT NULL',
                       b.tbl, b.model_col, b.col)
            INTO rows_now USING v_model.model;
        growth := CASE WHEN b.rows_at_build > 0
                       THEN rows_now::double precision / b.rows_at_build END;
        IF b.built_name IS NULL THEN
            -- no index recorded: only worth a word once exact scans get big,
            -- and only for jobs (match_jobs searches jobs; no query searches
            -- seekers by vector)
            IF rows_now >= 10000 AND b.entity = 'job' THEN
                v_warnings := v_warnings || format(
                    '%s has %s vectors and no vector index: match scans are exact; '
                    'build one with `jobmatch index rebuild --table %s`',
                    b.tbl, rows_now, b.entity);
            END IF;
        ELSIF NOT b.present THEN
            v_warnings := v_warnings || format(
                'index %s was recorded but no longer exists; rebuild with '
                '`jobmatch index rebuild --table %s`', b.built_name, b.entity);
        ELSIF b.model IS DISTINCT FROM v_model.model THEN
            v_warnings := v_warnings || format(
                'index %s was built for %s, the active model is %s; rebuild with '
                '`jobmatch index rebuild --table %s`', b.built_name, b.model, v_model.model,
                b.entity);
        ELSE
            IF b.method = 'ivfflat' AND growth > p_growth_ratio THEN
                v_warnings := v_warnings || format(
                    'ivfflat index %s was built on %s rows, the table now has %s (x%s): '
                    'its lists no longer fit; rebuild with `jobmatch index rebuild --table %s`',
                    b.built_name, b.rows_at_build, rows_now, round(growth::numeric, 1),
                    b.entity);
            END IF;
            IF b.entity = 'job' AND coalesce(p_recall_sample, 0) > 0 THEN
                v_type := CASE WHEN v_model.index_halfvec THEN 'halfvec' ELSE 'vector' END
                          || '(' || v_model.dimensions || ')';
                v_expr := vector_search_expression('job_embedding', v_model.dimensions,
                                                   v_model.index_halfvec);
                v_exact_expr := vector_search_expression('job_embedding', v_model.dimensions,
                                                         false);
                -- match_jobs' search: the nearest rows in the window that fit the
                -- seeker's hard filters, a pool of max(k, match_candidates), then
                -- the threshold. The exact one orders by distance + 0, which no
                -- index can serve.
                v_search := $q$
                    SELECT coalesce(array_agg(n.id ORDER BY n.distance, n.id), '{}')
                    FROM (SELECT j.id, j.%1$s <=> $1::%2$s AS distance
                          FROM canonical_jobs AS j
                          WHERE j.job_embedding_model = %3$L AND j.posted_date >= $2
                            AND jobmatch_job_fits($5, $6.willing_to_relocate, $7,
                                  $6.salary_min, $6.salary_max, $6.salary_currency,
                                  j.ai_city, j.ai_state, j.ai_country, j.ai_remote_allowed,
                                  j.ai_work_arrangement, j.ai_employment_type,
                                  j.ai_salary_min, j.ai_salary_max, j.ai_salary_currency)
                          ORDER BY (j.%1$s <=> $1::%2$s)%4$s
                          LIMIT $3) AS n
                    WHERE 1 - n.distance >= $4
                $q$;
                v_pool := greatest(p_k, v_settings.match_candidates);
                PERFORM set_config('ivfflat.probes', v_model.ivfflat_probes::text, true);
                PERFORM set_config('ivfflat.max_probes',
                                   coalesce(v_model.ivfflat_max_probes, 32768)::text, true);
                PERFORM set_config('hnsw.ef_search', v_model.hnsw_ef_search::text, true);
                PERFORM set_config('hnsw.max_scan_tuples',
                                   v_model.hnsw_max_scan_tuples::text, true);
                v_sum := 0; v_n := 0;
                FOR v_seeker IN
                    SELECT u.* FROM user_preferences AS u
                    WHERE u.embedding_model = v_model.model AND u.user_embedding IS NOT NULL
                    ORDER BY md5(u.user_id::text)
                    LIMIT p_recall_sample
                LOOP
                    v_places := NULL; v_types := NULL;
                    IF v_settings.match_hard_filters THEN
                        v_places := jobmatch_lower_set(v_seeker.preferred_locations);
                        v_types := jobmatch_lower_set(v_seeker.employment_types);
                    END IF;
                    EXECUTE format(v_search, v_exact_expr,
                                   'vector(' || v_model.dimensions || ')', v_model.model, ' + 0')
                        INTO v_exact USING v_seeker.user_embedding, v_start, v_pool,
                                           v_model.similarity_threshold, v_places, v_seeker,
                                           v_types;
                    EXECUTE format(v_search, v_expr, v_type, v_model.model, '')
                        INTO v_ann USING v_seeker.user_embedding, v_start, v_pool,
                                         v_model.similarity_threshold, v_places, v_seeker,
                                         v_types;
                    IF cardinality(v_exact) > 0 THEN
                        v_sum := v_sum + (SELECT count(*) FROM unnest(v_ann) AS a
                                          WHERE a = ANY (v_exact))::double precision
                                         / cardinality(v_exact);
                        v_n := v_n + 1;
                    END IF;
                END LOOP;
                IF v_n > 0 THEN
                    sampled_recall := v_sum / v_n;
                    IF sampled_recall < p_recall_target THEN
                        v_warnings := v_warnings || format(
                            'sampled recall@%s of match_jobs is %s on %s seekers, below %s: '
                            'run `jobmatch index tune --apply`%s', v_pool,
                            round(sampled_recall::numeric, 3), v_n, p_recall_target,
                            CASE WHEN b.method = 'ivfflat'
                                 THEN ' or `jobmatch index rebuild --table job`' ELSE '' END);
                    END IF;
                END IF;
            END IF;
        END IF;
        warning := nullif(array_to_string(v_warnings, '; '), '');
        IF b.built_name IS NOT NULL OR warning IS NOT NULL THEN
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- The knobs set inside end with the call.
ALTER FUNCTION vector_index_drift(double precision, integer, double precision, integer)
SET "ivfflat.iterative_scan" = 'relaxed_order';
ALTER FUNCTION vector_index_drift(double precision, integer, double precision, integer)
SET "hnsw.iterative_scan" = 'relaxed_order';
ALTER FUNCTION vector_index_drift(double precision, integer, double precision, integer)
SET "ivfflat.probes" = 10;
ALTER FUNCTION vector_index_drift(double precision, integer, double precision, integer)
SET "ivfflat.max_probes" = 32768;
ALTER FUNCTION vector_index_drift(double precision, integer, double precision, integer)
SET "hnsw.ef_search" = 40;
ALTER FUNCTION vector_index_drift(double precision, integer, double precision, integer)
SET "hnsw.max_scan_tuples" = 20000;
REVOKE ALL ON FUNCTION vector_index_drift(double precision, integer, double precision, integer)
FROM public;

-- The planner's estimate of the jobs posted since p_start: a plan, no scan
-- (~0.1 ms), from the same statistics the planner uses for match_jobs.
CREATE OR REPLACE FUNCTION jobmatch_window_rows(p_start timestamptz)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM canonical_jobs WHERE posted_date >= $1'
        INTO v_plan USING p_start;
    RETURN (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::bigint;
END
$$;

-- Whether match_jobs should walk the vector index for a window starting at
-- p_start: when the window holds more than the model's exact_scan_max_rows
-- jobs (NULL: 800,000 / dimensions). Below that the planner chooses, and
-- picks an exact scan via canonical_jobs_posted_date_idx for a small window.
CREATE OR REPLACE FUNCTION vector_index_walk(p_model embedding_models, p_start timestamptz)
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT jobmatch_window_rows(p_start)
           > coalesce(p_model.exact_scan_max_rows, 800000 / p_model.dimensions)
$$;

REVOKE ALL ON FUNCTION jobmatch_window_rows(timestamptz) FROM public;
REVOKE ALL ON FUNCTION vector_index_walk(embedding_models, timestamptz) FROM public;
