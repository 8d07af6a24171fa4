-- Vector indexes, one per table for the active model: a partial expression
-- index, because the columns hold vectors of any dimension and only the
-- active model's are ever compared. Method (ivfflat or HNSW) and precision
-- (vector or halfvec) are the DBA's choice, per model in embedding_models.

-- The indexed expression, e.g. job_embedding::halfvec(1536). match_jobs
-- builds its ORDER BY from the same function, so the two always agree.
-- p_normalized: the unit-length variant `jobmatch index tune` builds its
-- candidate ivfflat indexes on (cosine distance is scale-free).
CREATE OR REPLACE FUNCTION jobmatch_vector_search_expression(
    p_column text, p_dimensions integer, p_halfvec boolean, p_normalized boolean DEFAULT FALSE
)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT format(CASE WHEN p_normalized THEN '(l2_normalize(%1$I::%2$s(%3$s))::%2$s(%3$s))'
                       ELSE '%1$I::%2$s(%3$s)' END,
                  p_column, CASE WHEN p_halfvec THEN 'halfvec' ELSE 'vector' END, p_dimensions)
$$;

-- match_jobs' nearest-neighbour search as query text, one definition for
-- match_jobs and the drift check: (id, distance) of the $3 jobs of the model
-- nearest to $1, posted since $2 (and not more than a day ahead:
-- jobmatch_latest_posted), that fit seeker $4's stated constraints
-- ($5 places, $6 employment types; filtered inside the scan, so an iterative
-- index scan keeps going until it has enough). The model and expression are
-- literals, so the planner can use the per-model partial expression index.
-- The index expression (halfvec or not) only orders the scan: distance is
-- the stored vectors', as an exact search computes it, read with the row the
-- scan fetches anyway. p_exact orders by distance + 0, which no index can serve.
CREATE OR REPLACE FUNCTION jobmatch_nearest_jobs_sql(
    p_model embedding_models, p_halfvec boolean, p_exact boolean DEFAULT FALSE,
    p_normalized boolean DEFAULT FALSE
)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT format($q$
        SELECT j.id, j.job_embedding <=> $1 AS distance
        FROM canonical_jobs AS j
        WHERE j.job_embedding_model = %3$L
          AND j.posted_date >= $2 AND j.posted_date <= jobmatch_latest_posted()
          AND jobmatch_fits($4, $5, $6, j)
        ORDER BY (%1$s <=> $1::%2$s)%4$s
        LIMIT $3 $q$,
        jobmatch_vector_search_expression('job_embedding', p_model.dimensions, p_halfvec,
                                          p_normalized),
        CASE WHEN p_halfvec THEN 'halfvec' ELSE 'vector' END || '(' || p_model.dimensions || ')',
        p_model.model,
        CASE WHEN p_exact THEN ' + 0' ELSE '' END)
$$;

-- The seeker's hard filters as match_jobs applies them inside the scan:
-- places and employment types, lower-cased ($5 and $6 of the search), or
-- NULL when match_hard_filters is off.
CREATE OR REPLACE FUNCTION jobmatch_seeker_filters(u user_preferences)
RETURNS TABLE (places text[], types text[])
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN s.match_hard_filters THEN jobmatch_lower_set(u.preferred_locations) END,
           CASE WHEN s.match_hard_filters THEN jobmatch_lower_set(u.employment_types) END
    FROM jobmatch_settings AS s
$$;

-- The nearest-neighbour search itself (jobmatch_nearest_jobs_sql) for
-- seeker p_user_id: the pool of p_pool jobs match_jobs re-ranks, as
-- `jobmatch index tune` measures it. The caller sets the index knobs
-- (jobmatch_set_search_knobs) first.
CREATE OR REPLACE FUNCTION jobmatch_nearest_jobs(
    p_user_id bigint, p_pool integer, p_halfvec boolean,
    p_exact boolean DEFAULT FALSE, p_normalized boolean DEFAULT FALSE
)
RETURNS TABLE (id bigint, distance double precision)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    m embedding_models := active_embedding_model();
    u user_preferences;
    f record;
BEGIN
    SELECT * INTO u FROM user_preferences AS p WHERE p.user_id = p_user_id;
    IF NOT FOUND OR u.user_embedding IS NULL OR u.embedding_model IS DISTINCT FROM m.model THEN
        RETURN;
    END IF;
    SELECT * INTO f FROM jobmatch_seeker_filters(u);
    RETURN QUERY EXECUTE jobmatch_nearest_jobs_sql(m, p_halfvec, p_exact, p_normalized)
        USING u.user_embedding,
              (SELECT current_date - s.match_window_days FROM jobmatch_settings AS s)::timestamptz,
              p_pool, u, f.places, f.types;
END
$$;

-- How the planner runs that search for seeker p_user_id (EXPLAIN): whether
-- it walks the vector index (`jobmatch index tune` reports it).
CREATE OR REPLACE FUNCTION jobmatch_nearest_jobs_plan(
    p_user_id bigint, p_pool integer, p_halfvec boolean
)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE  -- EXPLAIN is not allowed in a STABLE function
AS $$
DECLARE
    u user_preferences;
    f record;
BEGIN
    SELECT * INTO u FROM user_preferences AS p WHERE p.user_id = p_user_id;
    SELECT * INTO f FROM jobmatch_seeker_filters(u);
    RETURN QUERY EXECUTE 'EXPLAIN ' || jobmatch_nearest_jobs_sql(active_embedding_model(),
                                                                  p_halfvec)
        USING u.user_embedding,
              (SELECT current_date - s.match_window_days FROM jobmatch_settings AS s)::timestamptz,
              p_pool, u, f.places, f.types;
END
$$;

-- The index knobs a search runs with, transaction-local: iterative scans
-- (so filters never leave an answer short), their bounds, and probes
-- (ivfflat) or ef_search (HNSW) from the model's row, or p_value for
-- p_method when a sweep tries one. match_jobs, the drift check and
-- `jobmatch index tune` all set them here.
CREATE OR REPLACE FUNCTION jobmatch_set_search_knobs(
    p_model embedding_models, p_method text DEFAULT NULL, p_value integer DEFAULT NULL
)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    SELECT set_config('ivfflat.iterative_scan', 'relaxed_order', true),
           set_config('hnsw.iterative_scan', 'relaxed_order', true),
           set_config('ivfflat.probes', coalesce(CASE WHEN p_method = 'ivfflat' THEN p_value END,
                                                 p_model.ivfflat_probes)::text, true),
           set_config('ivfflat.max_probes', coalesce(p_model.ivfflat_max_probes, 32768)::text,
                      true),
           set_config('hnsw.ef_search', coalesce(CASE WHEN p_method = 'hnsw' THEN p_value END,
                                                 p_model.hnsw_ef_search)::text, true),
           set_config('hnsw.max_scan_tuples', p_model.hnsw_max_scan_tuples::text, true)
$$;

-- lists = rows / 1000 up to 1M rows, sqrt(rows) above (pgvector's advice).
CREATE OR REPLACE FUNCTION jobmatch_ivfflat_lists_for(p_rows bigint)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_rows > 1000000 THEN ceil(sqrt(p_rows))::integer
                ELSE greatest(1, (p_rows / 1000)::integer) END
$$;

-- The DDL for a table's vector index, sized from the rows that have a
-- vector of the active model. An ivfflat index is refused when there is too
-- little data: trained on a few rows it clusters badly and stays bad.
-- The job index is partial: jobs posted since the window's start less
-- jobmatch_settings.index_margin_days (posted_since; NULL margin: the whole
-- table). match_jobs needs no change for it: its window start is a value
-- when the query is planned, and the planner proves that a window starting
-- after posted_since lies inside the index.
-- The CLI runs this DDL CONCURRENTLY; jobmatch_build_vector_index runs it in place.
-- For any model's rows: the active one's (jobmatch_vector_index_ddl, below), or a
-- model switch's target (`jobmatch index rebuild --model`), whose
-- index is built before promotion: partial on the target's name, it holds
-- no row until promote_embedding_model moves the target's vectors into the
-- serving columns, and takes each one in as it does, so the first query
-- after the switch finds it. Sized from the target's vectors beside;
-- HNSW only (ivfflat learns its lists from the rows it indexes: none yet).
CREATE OR REPLACE FUNCTION jobmatch_vector_index_ddl(
    p_model embedding_models,
    p_entity_type text,
    p_lists integer,
    p_min_rows bigint,
    p_index_name text,
    p_method text,
    p_halfvec boolean,
    p_hnsw_m integer,
    p_hnsw_ef_construction integer
)
RETURNS TABLE (
    index_name text, table_name text, method text, is_halfvec boolean,
    lists integer, row_count bigint, posted_since timestamptz, ddl text
)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_model embedding_models := p_model;
    v_column text;
    v_model_column text;
    v_needed bigint;
    v_scope text;
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
    IF p_entity_type = 'job' THEN
        SELECT (current_date - s.match_window_days - s.index_margin_days)::timestamptz
        INTO posted_since FROM jobmatch_settings AS s;
    END IF;
    v_scope := format('%I = %L', v_model_column, v_model.model)
               || CASE WHEN posted_since IS NOT NULL
                       THEN format(' AND posted_date >= %L::timestamptz', posted_since)
                       ELSE '' END;
    IF v_model.is_active THEN
        EXECUTE format('SELECT count(*) FROM %I WHERE %s AND %I IS NOT NULL',
                       table_name, v_scope, v_column)
            INTO row_count;
    ELSE
        IF method <> 'hnsw' THEN
            RAISE EXCEPTION 'an ivfflat index of % cannot be built before it is promoted',
                v_model.model
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'ivfflat learns its lists from the rows it indexes: build HNSW'
                             || ' (--method hnsw) before promotion, or ivfflat after it.';
        END IF;
        SELECT count(*) INTO row_count
        FROM embedding_vectors AS v
        LEFT JOIN canonical_jobs AS j ON v.entity_type = 'job' AND j.id = v.entity_id
        WHERE v.model = v_model.model AND v.entity_type = p_entity_type
          AND v.embedding IS NOT NULL
          AND (posted_since IS NULL OR j.posted_date >= posted_since);
    END IF;
    index_name := coalesce(p_index_name, table_name || '_' || v_column || '_ann');
    IF method = 'ivfflat' THEN
        lists := coalesce(p_lists, jobmatch_ivfflat_lists_for(row_count));
        v_needed := greatest(p_min_rows, lists::bigint * 39);
        IF row_count < v_needed THEN
            RAISE EXCEPTION 'refusing to build an ivfflat index on % with % embedded rows (need at least %)',
                table_name, row_count, v_needed
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Below that an exact scan is as fast; build once the vectors are filled.';
        END IF;
    END IF;
    ddl := format('CREATE INDEX %I ON %I USING %s ((%s) %s) WITH (%s) WHERE %s',
                  index_name, table_name, method,
                  jobmatch_vector_search_expression(v_column, v_model.dimensions, is_halfvec),
                  CASE WHEN is_halfvec THEN 'halfvec_cosine_ops' ELSE 'vector_cosine_ops' END,
                  CASE WHEN method = 'ivfflat' THEN format('lists = %s', lists)
                       ELSE format('m = %s, ef_construction = %s', p_hnsw_m,
                                   p_hnsw_ef_construction) END,
                  v_scope);
    RETURN NEXT;
END
$$;

-- The active model's index (jobmatch_vector_index_ddl, above).
CREATE OR REPLACE FUNCTION jobmatch_vector_index_ddl(
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
    lists integer, row_count bigint, posted_since timestamptz, ddl text
)
LANGUAGE sql STABLE
AS $$
    SELECT * FROM jobmatch_vector_index_ddl(active_embedding_model(), p_entity_type, p_lists,
                                            p_min_rows, p_index_name, p_method, p_halfvec,
                                            p_hnsw_m, p_hnsw_ef_construction)
$$;

-- Records a finished build so `jobmatch health` can report drift. A job
-- index's method and precision become the model's: match_jobs searches with
-- the expression the index was built on, or it could not use it.
CREATE OR REPLACE FUNCTION jobmatch_record_vector_index_build(
    p_index_name text, p_table_name text, p_method text, p_halfvec boolean,
    p_lists integer, p_rows bigint,
    p_hnsw_m integer DEFAULT NULL, p_hnsw_ef_construction integer DEFAULT NULL,
    p_posted_since timestamptz DEFAULT NULL
)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO vector_index_builds AS b (index_name, table_name, model, method, halfvec,
                                          lists, rows_at_build, hnsw_m, hnsw_ef_construction,
                                          posted_since)
    VALUES (p_index_name, p_table_name, (active_embedding_model()).model, p_method, p_halfvec,
            p_lists, p_rows, p_hnsw_m, p_hnsw_ef_construction, p_posted_since)
    ON CONFLICT (index_name) DO UPDATE
        SET table_name = excluded.table_name, model = excluded.model,
            method = excluded.method, halfvec = excluded.halfvec, lists = excluded.lists,
            rows_at_build = excluded.rows_at_build, hnsw_m = excluded.hnsw_m,
            hnsw_ef_construction = excluded.hnsw_ef_construction,
            posted_since = excluded.posted_since, built_at = now();
    UPDATE embedding_models
    SET index_method = p_method, index_halfvec = p_halfvec
    WHERE is_active AND p_table_name = 'canonical_jobs'
      AND (index_method, index_halfvec) IS DISTINCT FROM (p_method, p_halfvec);
$$;

-- Builds (or rebuilds) the index inside the current transaction. Blocks
-- writes to the table while it runs; `jobmatch index rebuild` builds
-- concurrently instead.
CREATE OR REPLACE FUNCTION jobmatch_build_vector_index(
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
    SELECT * INTO d FROM jobmatch_vector_index_ddl(p_entity_type, p_lists, p_min_rows, NULL,
                                          p_method, p_halfvec);
    EXECUTE format('DROP INDEX IF EXISTS %I', d.index_name);
    EXECUTE d.ddl;
    PERFORM jobmatch_record_vector_index_build(d.index_name, d.table_name, d.method, d.is_halfvec,
                                      d.lists, d.row_count,
                                      CASE WHEN d.method = 'hnsw' THEN 16 END,
                                      CASE WHEN d.method = 'hnsw' THEN 64 END,
                                      d.posted_since);
    index_name := d.index_name; method := d.method;
    lists := d.lists; row_count := d.row_count;
    RETURN NEXT;
END
$$;

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
CREATE OR REPLACE FUNCTION jobmatch_vector_index_walk(p_model embedding_models, p_start timestamptz)
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT jobmatch_window_rows(p_start)
           > coalesce(p_model.exact_scan_max_rows, 800000 / p_model.dimensions)
$$;
